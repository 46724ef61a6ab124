#include "sources/relay_ctrl_codec.hpp"

namespace rp::sources {

std::optional<core::Address> parse_relay_ctrl_datagram(std::string_view datagram) {
    constexpr std::string_view k_trailing(" \t\r\n\0", 5);
    const auto end = datagram.find_last_not_of(k_trailing);
    if (end == std::string_view::npos || end >= 64) return std::nullopt;  // empty, or longer than any address
    const auto text = datagram.substr(0, end + 1);
    if (text.find_first_of(k_trailing) != std::string_view::npos) return std::nullopt;
    return core::Address::parse(text);
}

}  // namespace rp::sources
