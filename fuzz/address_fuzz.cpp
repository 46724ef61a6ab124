// Fuzz target: Address::parse / Cidr::parse. A parsed address must print canonically and
// parse back to itself; a parsed network must contain its own network address.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto a = rp::core::Address::parse(text)) {
        auto b = rp::core::Address::parse(a->to_string());
        if (!b || *b != *a) std::abort();
        auto c = rp::core::Address::parse(a->to_full_string());
        if (!c || *c != *a) std::abort();
    }
    if (auto n = rp::core::Cidr::parse(text)) {
        if (!n->contains(n->network())) std::abort();
    }
    return 0;
}
