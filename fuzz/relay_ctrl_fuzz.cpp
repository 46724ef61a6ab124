// Fuzz target for relay-ctrl-send's datagram (sources/relay_ctrl_codec.hpp): any bytes give
// nothing or an address whose text form parses back to the same address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sources/relay_ctrl_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (const auto a = rp::sources::parse_relay_ctrl_datagram(in)) {
        const auto back = rp::core::Address::parse(a->to_string());
        if (!back || *back != *a) std::abort();
    }
    return 0;
}
