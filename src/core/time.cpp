#include "core/time.hpp"

#include <charconv>
#include <ctime>

namespace rp::core {

Result<Duration> parse_duration(std::string_view text) {
    const std::string original(text);
    if (text.empty()) return make_error("empty duration");
    std::int64_t total_ms = 0;
    bool any = false;
    while (!text.empty()) {
        std::int64_t n = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || n < 0)
            return make_error("bad duration '" + original + "' (use e.g. 90s, 30m, 2h, 1d)");
        text.remove_prefix(static_cast<std::size_t>(p - text.data()));
        std::int64_t unit_ms = 1000;  // a bare number means seconds
        if (text.starts_with("ms")) { unit_ms = 1; text.remove_prefix(2); }
        else if (text.starts_with("s")) { text.remove_prefix(1); }
        else if (text.starts_with("m")) { unit_ms = 60'000; text.remove_prefix(1); }
        else if (text.starts_with("h")) { unit_ms = 3'600'000; text.remove_prefix(1); }
        else if (text.starts_with("d")) { unit_ms = 86'400'000; text.remove_prefix(1); }
        else if (!text.empty() || any)
            return make_error("bad duration '" + original + "' (use e.g. 90s, 30m, 2h, 1d)");
        // Each part and the sum stay within 2^40 ms (~35 years): a long enough "1099511627775ms..."
        // chain would otherwise overflow the sum (undefined behaviour).
        if (n > (std::int64_t{1} << 40) / unit_ms || total_ms > (std::int64_t{1} << 40) - n * unit_ms)
            return make_error("duration too long: '" + original.substr(0, 64) + "'");
        total_ms += n * unit_ms;
        any = true;
    }
    return Duration(total_ms * 1000);
}

std::string format_duration(Duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms == 0) return "0s";
    if (ms % 1000 != 0) return std::to_string(ms) + "ms";
    std::int64_t s = ms / 1000;
    std::string out;
    const std::pair<std::int64_t, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    for (const auto& [len, name] : units) {
        if (s >= len) {
            out += std::to_string(s / len) + name;
            s %= len;
        }
    }
    return out;
}

std::string format_time(Time t) {
    const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace rp::core
