// Prometheus text format 0.0.4 (the format's own rules: one # HELP and # TYPE line per family,
// before its samples; label values escaped; counters end in _total).
#include "daemon/metrics_text.hpp"

#include <fmt/format.h>

#include <initializer_list>
#include <utility>

namespace rp::daemon {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

class Page {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    template <class V>
    void sample(std::string_view name, std::initializer_list<Label> labels, V value) {
        out_ += name;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [k, v] : labels) {
                fmt::format_to(std::back_inserter(out_), "{}{}=\"{}\"", first ? "" : ",", k, escape_label_value(v));
                first = false;
            }
            out_ += '}';
        }
        fmt::format_to(std::back_inserter(out_), " {}\n", value);
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

void daemon_families(Page& p, const DaemonStats& s) {
    p.family("relaypermit_build_info", "gauge", "relaypermit's version (the value is always 1).");
    p.sample("relaypermit_build_info", {{"version", s.version}}, 1);
    p.family("relaypermit_uptime_seconds", "gauge", "Seconds since the daemon started.");
    p.sample("relaypermit_uptime_seconds", {}, s.uptime_s);
    p.family("relaypermit_permits", "gauge", "Live relay permits.");
    p.sample("relaypermit_permits", {}, s.permits);
    p.family("relaypermit_grants_total", "counter", "Permits created or extended, by source and server (pattern set).");
    for (const auto& [key, n] : s.grants_by_server)
        p.sample("relaypermit_grants_total", {{"source", key.first}, {"server", key.second}}, n);
    p.family("relaypermit_permit_changes_total", "counter", "Permit changes: created, extended, expired, revoked.");
    p.sample("relaypermit_permit_changes_total", {{"change", "created"}}, s.grants);
    p.sample("relaypermit_permit_changes_total", {{"change", "extended"}}, s.extends);
    p.sample("relaypermit_permit_changes_total", {{"change", "expired"}}, s.expired);
    p.sample("relaypermit_permit_changes_total", {{"change", "revoked"}}, s.revoked);
    p.family("relaypermit_refused_total", "counter", "Logins that granted nothing, by reason (grant policy, max_permits).");
    for (auto r : {Refusal::ignored, Refusal::stale, Refusal::untimed_backlog, Refusal::ttl_out_of_bounds})
        p.sample("relaypermit_refused_total", {{"reason", refusal_name(r)}}, s.refused[static_cast<std::size_t>(r)]);
    p.sample("relaypermit_refused_total", {{"reason", "max_permits"}}, s.store.refused);
}

void frontend_families(Page& p, const DaemonStats& s) {
    p.family("relaypermit_lookups_total", "counter", "Lookups answered, by frontend and answer (permitted or not_permitted).");
    for (const auto& fe : s.frontends) {
        const auto& c = fe.counters;
        p.sample("relaypermit_lookups_total", {{"frontend", fe.name}, {"answer", "permitted"}}, c.permitted);
        p.sample("relaypermit_lookups_total", {{"frontend", fe.name}, {"answer", "not_permitted"}},
                 c.requests >= c.permitted ? c.requests - c.permitted : 0);
    }
    p.family("relaypermit_malformed_requests_total", "counter", "Requests rejected as malformed (connection closed).");
    for (const auto& fe : s.frontends) p.sample("relaypermit_malformed_requests_total", {{"frontend", fe.name}}, fe.counters.malformed);
    p.family("relaypermit_connections_total", "counter", "Connections accepted by a frontend.");
    for (const auto& fe : s.frontends) p.sample("relaypermit_connections_total", {{"frontend", fe.name}}, fe.counters.connections);
    p.family("relaypermit_open_connections", "gauge", "Connections open now.");
    for (const auto& fe : s.frontends) p.sample("relaypermit_open_connections", {{"frontend", fe.name}}, fe.counters.active);
    p.family("relaypermit_refused_connections_total", "counter",
             "Connections closed to make room (max_clients, per-peer cap) or refused by a filter.");
    for (const auto& fe : s.frontends) p.sample("relaypermit_refused_connections_total", {{"frontend", fe.name}}, fe.counters.refused);
}

void source_families(Page& p, const DaemonStats& s) {
    using Field = std::uint64_t sources::SourceCounters::*;
    static constexpr std::pair<std::string_view, Field> counters[] = {
        {"lines", &sources::SourceCounters::lines},         {"logins", &sources::SourceCounters::matches},
        {"malformed", &sources::SourceCounters::malformed}, {"untrusted", &sources::SourceCounters::untrusted},
        {"dropped", &sources::SourceCounters::dropped},     {"filtered", &sources::SourceCounters::filtered},
    };
    p.family("relaypermit_source_lines_total", "counter",
             "Source input by kind: lines read, logins recognised, malformed, untrusted sender, dropped, filtered.");
    for (const auto& src : s.sources)
        for (const auto& [kind, field] : counters)
            p.sample("relaypermit_source_lines_total", {{"source", src.name}, {"kind", kind}}, src.counters.*field);
    p.family("relaypermit_source_up", "gauge", "1 when the source works, 0 when it reports a problem (see /health).");
    for (const auto& src : s.sources) p.sample("relaypermit_source_up", {{"source", src.name}}, src.problem.empty() ? 1 : 0);
    p.family("relaypermit_source_lag_seconds", "gauge", "Age of the newest login line when it was read (sources with line times).");
    for (const auto& src : s.sources)
        if (src.lag_seconds) p.sample("relaypermit_source_lag_seconds", {{"source", src.name}}, *src.lag_seconds);
    p.family("relaypermit_source_unread_bytes", "gauge", "Bytes the followed files hold past the read position.");
    for (const auto& src : s.sources)
        if (src.counters.unread_bytes >= 0) p.sample("relaypermit_source_unread_bytes", {{"source", src.name}}, src.counters.unread_bytes);
}

void store_families(Page& p, const DaemonStats& s) {
    const auto& st = s.store;
    p.family("relaypermit_store_available", "gauge", "1 when the store is reachable and writing, 0 otherwise.");
    p.sample("relaypermit_store_available", {{"store", st.shared ? "shared" : "embedded"}},
             st.shared ? (st.available ? 1 : 0) : (st.last_error.empty() ? 1 : 0));
    p.family("relaypermit_store_queue_length", "gauge", "Changes waiting to be written (embedded: disk; shared: outbox).");
    p.sample("relaypermit_store_queue_length", {}, st.queued);
    p.family("relaypermit_store_failures_total", "counter", "Shared store outages, embedded store failed commits.");
    p.sample("relaypermit_store_failures_total", {}, st.shared ? st.outages : st.write_failures);
    p.family("relaypermit_store_outage_answers_total", "counter", "Lookups answered without a permit because the shared store was down.");
    p.sample("relaypermit_store_outage_answers_total", {}, s.outage_answers);
}

void export_families(Page& p, const DaemonStats& s) {
    p.family("relaypermit_export_writes_total", "counter", "Successful writes of an [[export]] file.");
    for (const auto& e : s.exports) p.sample("relaypermit_export_writes_total", {{"export", e.name}}, e.writes);
    p.family("relaypermit_export_failures_total", "counter", "Failed writes of an [[export]] file, retries included.");
    for (const auto& e : s.exports) p.sample("relaypermit_export_failures_total", {{"export", e.name}}, e.failures);
    p.family("relaypermit_export_failing", "gauge", "1 while the latest write of the export failed (a retry is scheduled).");
    for (const auto& e : s.exports) p.sample("relaypermit_export_failing", {{"export", e.name}}, e.failing ? 1 : 0);
    p.family("relaypermit_export_last_success_timestamp_seconds", "gauge", "When the export was last written successfully.");
    for (const auto& e : s.exports)
        if (e.last_success)
            p.sample("relaypermit_export_last_success_timestamp_seconds", {{"export", e.name}},
                     static_cast<double>(core::to_unix_micros(*e.last_success)) / 1e6);
}

}  // namespace

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_metrics(const DaemonStats& s) {
    Page p;
    daemon_families(p, s);
    frontend_families(p, s);
    source_families(p, s);
    store_families(p, s);
    export_families(p, s);
    return p.take();
}

}  // namespace rp::daemon
