// The daemon's own service tables: [metrics] (Prometheus and health over HTTP, docs/metrics.md)
// and [limits] (budgets, caps and alerts, docs/limits.md). One ServiceRow each; the value
// syntaxes of [limits] are parsed by the pure helpers of limits_config.hpp.
#include "config/tables.hpp"

namespace rp::config {
namespace {

core::Status set_metrics_listen(MetricsConfig& m, const Ctx& c, const toml::node& n, const std::string& key) {
    auto l = get_strings(c, n, key);
    if (!l) return l.error();
    if (auto st = check_endpoints(c, n, key, *l, false, false); !st) return st;
    m.listen = *l;
    return core::ok();
}

const KeyRow<MetricsConfig> k_metrics_keys[] = {
    {{"listen", "endpoints", "where GET /metrics and GET /health are served; empty = off"}, set_metrics_listen,
     show_member<&MetricsConfig::listen>},
    {{"allow_from", "networks", "peers allowed; empty = loopback only"}, set_cidrs<&MetricsConfig::allow_from>,
     show_member<&MetricsConfig::allow_from>},
};

// "N/period" (parse_rate) into an optional Rate.
template <auto M>
core::Status set_rate(LimitsConfig& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = n.as_string();
    if (!s) return c.err(n, key, "expected a string such as \"100/1h\"");
    auto r = parse_rate(s->get());
    if (!r) return c.err(n, key, r.error().message);
    l.*M = *r;
    return core::ok();
}

// Unset is shown as nothing (a comment in `config show`).
template <auto M>
std::string show_rate(const LimitsConfig& l) {
    return (l.*M) ? toml_quote(format_rate(*(l.*M))) : std::string();
}

core::Status set_window(LimitsConfig& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = n.as_string();
    auto w = s ? from_string<LimitWindow>(s->get()) : std::nullopt;
    if (!w) return c.err(n, key, "expected \"sliding\" or \"fixed\"");
    l.window = *w;
    return core::ok();
}

core::Status set_action(LimitsConfig& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = n.as_string();
    if (!s || !valid_action(s->get()))
        return c.err(n, key, "expected a Postfix action on one line, e.g. \"DEFER_IF_PERMIT 4.7.1 ...\"");
    l.action = s->get();
    return core::ok();
}

core::Status set_prefix_caps(LimitsConfig& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto list = get_strings(c, n, key);
    if (!list) return list.error();
    std::vector<PrefixCap> caps;
    for (const auto& s : *list) {
        auto cap = parse_prefix_cap(s);
        if (!cap) return c.err(n, key, "\"" + s + "\": " + cap.error().message);
        caps.push_back(*cap);
    }
    l.permits_per_prefix = std::move(caps);
    return core::ok();
}

std::string show_prefix_caps(const LimitsConfig& l) {
    std::vector<std::string> out;
    for (const auto& cap : l.permits_per_prefix) out.push_back(format_prefix_cap(cap));
    return toml_value(out);
}

// An argv list run without a shell; [] means none.
core::Status set_on_limit(LimitsConfig& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto argv = get_strings(c, n, key);
    if (!argv) return argv.error();
    if (!argv->empty() && argv->front().empty()) return c.err(n, key, "the program must not be empty");
    l.on_limit = std::move(*argv);
    return core::ok();
}

const KeyRow<LimitsConfig> k_limits_keys[] = {
    {{"recipients", "rate", "recipients a permitted client may send per period (\"100/1h\"); unset = no budget"},
     set_rate<&LimitsConfig::recipients>, show_rate<&LimitsConfig::recipients>},
    {{"messages", "rate", "messages per period (\"20/1h\"), counted at END-OF-MESSAGE; unset = no budget"},
     set_rate<&LimitsConfig::messages>, show_rate<&LimitsConfig::messages>},
    {{"window", "string", "sliding or fixed: how a budget's period is counted"}, set_window,
     show_member<&LimitsConfig::window>},
    {{"action", "string", "the policy answer once a budget is spent"}, set_action, show_member<&LimitsConfig::action>},
    {{"addresses_per_user", "integer", "permits one user may hold at once; 0 = no cap"},
     set_int<&LimitsConfig::addresses_per_user, 0, 1'000'000>, show_member<&LimitsConfig::addresses_per_user>},
    {{"replace_oldest", "boolean", "past addresses_per_user, the user's oldest permit gives way"},
     set_bool<&LimitsConfig::replace_oldest>, show_member<&LimitsConfig::replace_oldest>},
    {{"permits_per_prefix", "strings", "at most N permits in one network: \"/24:N\", \"/64:N\", \"ipv4/L:N\""},
     set_prefix_caps, show_prefix_caps},
    {{"alert_addresses", "rate", "alert when one user logs in from K addresses in M (\"5/10m\")"},
     set_rate<&LimitsConfig::alert_addresses>, show_rate<&LimitsConfig::alert_addresses>},
    {{"on_limit", "argv", "a program and its arguments run (no shell) when a limit is hit"}, set_on_limit,
     show_member<&LimitsConfig::on_limit>},
};

template <auto Member, const auto& Rows>
void parse_service(Config& cfg, const Ctx& c, const toml::node& n, const std::string& name) {
    parse_sub_table<Member>(cfg, c, n, name, std::span<const KeyRow<typename MemberOf<Member>::Value>>(Rows));
}

void parse_metrics(Config& cfg, const Ctx& c, const toml::node& n) {
    parse_service<&Config::metrics, k_metrics_keys>(cfg, c, n, "metrics");
}
void parse_limits(Config& cfg, const Ctx& c, const toml::node& n) {
    parse_service<&Config::limits, k_limits_keys>(cfg, c, n, "limits");
}

template <auto Member, const auto& Rows>
std::vector<ShownRow> show_service(const Config& cfg) {
    return show_rows(std::span<const KeyRow<typename MemberOf<Member>::Value>>(Rows), cfg.*Member);
}

const std::vector<std::string>* metrics_listen(const Config& cfg) { return &cfg.metrics.listen; }

const ServiceRow k_services[] = {
    {"metrics", "Prometheus text and health checks over HTTP", parse_metrics,
     show_service<&Config::metrics, k_metrics_keys>, metrics_listen},
    {"limits", "budgets, caps and alerts", parse_limits, show_service<&Config::limits, k_limits_keys>, nullptr},
};

}  // namespace

std::span<const ServiceRow> service_rows() { return k_services; }

}  // namespace rp::config
