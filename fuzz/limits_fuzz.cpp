// Fuzz target for the [limits] value syntaxes (config/limits_config.hpp): parse_rate ("N/period")
// and parse_prefix_cap ("/24:N", "ipv6/48:N"). The config is the admin's, but a typo must be an
// error value, never a crash or a silently different limit. Checks: a parsed value is within the
// documented bounds (count > 0, period 1s..366d; length 1..32 for IPv4, 1..128 for IPv6) and its
// formatted form (format_rate, format_prefix_cap) parses back to the same value.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/limits_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rp::config;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto r = parse_rate(text)) {
        if (r->limit == 0 || r->period < std::chrono::seconds(1) || r->period > std::chrono::hours(24 * 366)) std::abort();
        const auto back = parse_rate(format_rate(*r));
        if (!back || *back != *r) std::abort();
    }
    if (const auto c = parse_prefix_cap(text)) {
        if (c->max == 0 || c->length < 1 || c->length > (c->v6 ? 128 : 32)) std::abort();
        const auto back = parse_prefix_cap(format_prefix_cap(*c));
        if (!back || *back != *c) std::abort();
    }
    return 0;
}
