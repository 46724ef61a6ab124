// Fuzz target for core::parse_duration, the config and CLI duration syntax ("90s", "1h30m",
// "250ms", a bare number of seconds; ttl, max_ttl, `allow --ttl`, `import --ttl`). Checks: a
// parsed duration is never negative nor over 2^40 ms (a sum of parts included), is a whole
// number of milliseconds, and format_duration's text parses back to the same duration (so what
// `config check` and `list` print is what the daemon uses).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto d = rp::core::parse_duration(text);
    if (!d) {
        if (d.error().message.empty()) std::abort();
        return 0;
    }
    if (d->count() < 0 || d->count() % 1000 != 0 || d->count() > (std::int64_t{1} << 40) * 1000) std::abort();
    const auto back = rp::core::parse_duration(rp::core::format_duration(*d));
    if (!back || *back != *d) std::abort();
    return 0;
}
