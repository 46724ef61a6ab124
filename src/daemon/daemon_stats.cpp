// The pure renderings of DaemonStats: the `status` reply and the health verdict.
#include "daemon/daemon_stats.hpp"

#include "exports/export_status_json.hpp"

namespace rp::daemon {
namespace {

nlohmann::json store_json(const store::StoreStatus& s, std::uint64_t outage_answers) {
    nlohmann::json j = {{"shared", s.shared}, {"available", s.available}};
    if (s.shared)
        j.update({{"queued", s.queued}, {"pushed", s.pushed}, {"remote_changes", s.remote_changes},
                  {"connects", s.connects}, {"outages", s.outages}, {"outage_answers", outage_answers},
                  {"last_error", s.last_error}});
    else  // the embedded store's writer thread
        j.update({{"queued", s.queued}, {"written", s.written}, {"write_failures", s.write_failures},
                  {"queue_full", s.queue_full}, {"last_error", s.last_error}});
    j["refused"] = s.refused;  // max_permits
    return j;
}

std::uint64_t refused(const DaemonStats& s, Refusal r) { return s.refused[static_cast<std::size_t>(r)]; }

}  // namespace

nlohmann::json status_json(const DaemonStats& s) {
    auto srcs = nlohmann::json::array();
    for (const auto& src : s.sources) {
        const auto& c = src.counters;
        nlohmann::json j = {{"name", src.name}, {"lines", c.lines}, {"matches", c.matches}, {"malformed", c.malformed},
                            {"untrusted", c.untrusted}, {"dropped", c.dropped}, {"filtered", c.filtered},
                            {"grants", src.grants}};
        if (src.lag_seconds) j["lag_s"] = *src.lag_seconds;
        if (c.unread_bytes >= 0) j["unread_bytes"] = c.unread_bytes;
        if (!src.problem.empty()) j["problem"] = src.problem;
        srcs.push_back(std::move(j));
    }
    auto fes = nlohmann::json::array();
    for (const auto& fe : s.frontends) {
        const auto& c = fe.counters;
        fes.push_back({{"name", fe.name}, {"connections", c.connections}, {"requests", c.requests},
                       {"permitted", c.permitted}, {"malformed", c.malformed}, {"active", c.active},
                       {"refused", c.refused}});
    }
    auto by_reason = nlohmann::json::object();
    for (auto r : {Refusal::ignored, Refusal::stale, Refusal::untimed_backlog, Refusal::ttl_out_of_bounds})
        by_reason[std::string(refusal_name(r))] = refused(s, r);
    return {{"ok", true},
            {"version", s.version},
            {"uptime_s", s.uptime_s},
            {"store", s.store_name},
            {"store_status", store_json(s.store, s.outage_answers)},
            {"permits", s.permits},
            {"grants", s.grants}, {"extends", s.extends}, {"ignored", refused(s, Refusal::ignored)},
            {"stale", refused(s, Refusal::stale)}, {"untimed", refused(s, Refusal::untimed_backlog)},
            {"refused", by_reason},
            {"expired", s.expired}, {"revoked", s.revoked},
            {"sources", srcs}, {"frontends", fes},
            {"exports", exports::export_status_json(s.exports)}};
}

Health assess_health(const DaemonStats& s) {
    Health h;
    auto bad = [&h](std::string why) {
        h.ok = false;
        h.reasons.push_back(std::move(why));
    };
    if (s.store.shared && !s.store.available)
        bad("shared store unavailable" + (s.store.last_error.empty() ? std::string() : ": " + s.store.last_error));
    if (!s.store.shared && !s.store.last_error.empty()) bad("store writes failing: " + s.store.last_error);
    for (const auto& src : s.sources)
        if (!src.problem.empty()) bad("source " + src.name + ": " + src.problem);
    for (const auto& fe : s.frontends)
        if (!fe.listening) bad("frontend " + fe.name + " is not listening");
    for (const auto& name : s.missing_frontends) bad("frontend " + name + " is not listening");
    for (const auto& e : s.exports)
        if (e.failing) bad("export " + e.name + " write failing" + (e.last_error.empty() ? std::string() : ": " + e.last_error));
    return h;
}

std::string health_json(const Health& h) {
    nlohmann::json j = {{"status", h.ok ? "ok" : "unavailable"}};
    if (!h.ok) j["reasons"] = h.reasons;
    // Reasons can quote paths or server messages: replace invalid UTF-8 rather than throw.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace rp::daemon
