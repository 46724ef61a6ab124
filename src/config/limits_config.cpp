#include "config/limits_config.hpp"

#include <charconv>


namespace rp::config {
namespace {

template <typename Int>
bool whole_number(std::string_view s, Int& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

bool valid_action(std::string_view a) {
    if (a.empty() || a.size() > 400) return false;
    for (unsigned char c : a)
        if (c < 0x20 || c > 0x7e) return false;
    return a.front() != ' ';
}

core::Result<Rate> parse_rate(std::string_view text) {
    const std::string whole(text);
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return core::make_error("expected \"N/period\" such as \"100/1h\"");
    Rate r;
    if (!whole_number(text.substr(0, slash), r.limit) || r.limit == 0)
        return core::make_error("the count before '/' must be a positive integer");
    std::string period(text.substr(slash + 1));
    if (period.size() == 1 && std::string_view("smhd").find(period[0]) != std::string_view::npos) period = "1" + period;
    auto d = core::parse_duration(period);
    if (!d) return core::make_error("the period after '/': " + d.error().message);
    if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24 * 366))
        return core::make_error("the period must be between 1s and 366d");
    r.period = *d;
    return r;
}

std::string format_rate(const Rate& r) { return std::to_string(r.limit) + "/" + core::format_duration(r.period); }

core::Result<PrefixCap> parse_prefix_cap(std::string_view text) {
    auto bad = [](std::string why) { return core::make_error(why + " (use \"/24:N\", \"/64:N\", \"ipv4/L:N\" or \"ipv6/L:N\")"); };
    PrefixCap c;
    std::optional<bool> family;
    if (text.starts_with("ipv4/")) family = false, text.remove_prefix(4);
    else if (text.starts_with("ipv6/")) family = true, text.remove_prefix(4);
    if (!text.starts_with('/')) return bad("expected '/' and a prefix length");
    text.remove_prefix(1);
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) return bad("expected ':' and a count");
    if (!whole_number(text.substr(0, colon), c.length)) return bad("bad prefix length");
    if (!whole_number(text.substr(colon + 1), c.max) || c.max == 0) return bad("the count must be a positive integer");
    c.v6 = family.value_or(c.length > 32);
    if (c.length < 1 || c.length > (c.v6 ? 128 : 32)) return bad("prefix length out of range");
    return c;
}

std::string format_prefix_cap(const PrefixCap& c) {
    return std::string(c.v6 ? "ipv6" : "ipv4") + "/" + std::to_string(c.length) + ":" + std::to_string(c.max);
}

}  // namespace rp::config
