#include "config/limits_config.hpp"

#include <charconv>

#include "config/limits_toml.hpp"

namespace rp::config {
namespace {

template <typename Int>
bool whole_number(std::string_view s, Int& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

// A Postfix access(5) action as the policy service sends it: one line of printable ASCII.
bool valid_action(std::string_view a) {
    if (a.empty() || a.size() > 400) return false;
    for (unsigned char c : a)
        if (c < 0x20 || c > 0x7e) return false;
    return a.front() != ' ';
}

core::Result<std::optional<Rate>> rate_value(const toml::node& n) {
    auto s = n.as_string();
    if (!s) return core::make_error("expected a string such as \"100/1h\"");
    auto r = parse_rate(s->get());
    if (!r) return r.error();
    return std::optional<Rate>(*r);
}

std::string set_list(const toml::node& n, std::vector<std::string>& out) {
    out.clear();
    if (auto s = n.as_string()) {
        out.push_back(s->get());
        return {};
    }
    auto a = n.as_array();
    if (!a) return "expected a string or a list of strings";
    for (const auto& e : *a) {
        auto s = e.as_string();
        if (!s) return "expected a list of strings";
        out.push_back(s->get());
    }
    return {};
}

}  // namespace

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

bool parse_limits_key(LimitsConfig& out, std::string_view key, const toml::node& n, std::string& error) {
    auto fail = [&](const std::string& why) { error = why; };
    if (key == "recipients" || key == "messages" || key == "alert_addresses") {
        auto r = rate_value(n);
        if (!r) fail(r.error().message);
        else (key == "recipients" ? out.recipients : key == "messages" ? out.messages : out.alert_addresses) = *r;
    } else if (key == "window") {
        auto s = n.as_string();
        if (!s || (s->get() != "sliding" && s->get() != "fixed")) fail("expected \"sliding\" or \"fixed\"");
        else out.window = s->get();
    } else if (key == "action") {
        auto s = n.as_string();
        if (!s || !valid_action(s->get())) fail("expected a Postfix action on one line, e.g. \"DEFER_IF_PERMIT 4.7.1 ...\"");
        else out.action = s->get();
    } else if (key == "addresses_per_user") {
        auto i = n.as_integer();
        if (!i || i->get() < 0 || i->get() > 1'000'000) fail("expected an integer from 0 (no cap) to 1000000");
        else out.addresses_per_user = static_cast<std::size_t>(i->get());
    } else if (key == "replace_oldest") {
        auto b = n.as_boolean();
        if (!b) fail("expected true or false");
        else out.replace_oldest = b->get();
    } else if (key == "permits_per_prefix") {
        std::vector<std::string> list;
        if (auto e = set_list(n, list); !e.empty()) return fail(e), true;
        out.permits_per_prefix.clear();
        for (const auto& s : list) {
            auto c = parse_prefix_cap(s);
            if (!c) return fail("\"" + s + "\": " + c.error().message), true;
            out.permits_per_prefix.push_back(*c);
        }
    } else if (key == "on_limit") {
        if (auto e = set_list(n, out.on_limit); !e.empty()) fail(e);
        else if (!out.on_limit.empty() && out.on_limit.front().empty()) fail("the program must not be empty");
    } else {
        return false;
    }
    return true;
}

}  // namespace rp::config
