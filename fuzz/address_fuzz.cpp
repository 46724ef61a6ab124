// Fuzz target: Address::parse / Cidr::parse. A parsed address must print canonically and
// parse back to itself; a parsed network must contain its own network address and print as
// text that parses back to itself. Text with a NUL byte is never an address (the whole text must
// be the address; inet_pton alone would stop at the NUL). Dotted quads, which Address::parse
// reads by hand, must be read exactly as glibc's inet_pton(AF_INET) reads them.
#include <arpa/inet.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool has_nul = text.find('\0') != std::string_view::npos;
    if (!has_nul && text.find(':') == std::string_view::npos && !(text.starts_with('[') && text.ends_with(']'))) {
        const std::string z(text);
        unsigned char b[4];
        const bool glibc = inet_pton(AF_INET, z.c_str(), b) == 1;
        const auto a = rp::core::Address::parse(text);
        if (a.has_value() != glibc) std::abort();
        if (a && (!a->is_v4() || std::memcmp(a->bytes().data(), b, 4) != 0)) std::abort();
    }
    if (auto a = rp::core::Address::parse(text)) {
        if (has_nul) std::abort();
        auto b = rp::core::Address::parse(a->to_string());
        if (!b || *b != *a) std::abort();
        auto c = rp::core::Address::parse(a->to_full_string());
        if (!c || *c != *a) std::abort();
    }
    if (auto n = rp::core::Cidr::parse(text)) {
        if (has_nul || !n->contains(n->network())) std::abort();
        auto m = rp::core::Cidr::parse(n->to_string());
        if (!m || *m != *n) std::abort();
    }
    return 0;
}
