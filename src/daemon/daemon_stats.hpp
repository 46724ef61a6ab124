// DaemonStats: every counter and state the daemon reports, collected once (Daemon::collect_stats)
// and rendered three ways by pure functions: the `status` reply (status_json), the Prometheus page
// (metrics_text.hpp) and the health verdict (assess_health). One collection, so `relaypermit
// status`, /metrics and /health can never disagree about what a counter means.
//
// Thread-safety: plain values; the functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/permit_policy.hpp"
#include "exports/export_scheduler.hpp"
#include "frontends/permit_oracle.hpp"
#include "sources/source.hpp"
#include "store/permit_store.hpp"

namespace rp::daemon {

struct SourceStats {
    std::string name;
    sources::SourceCounters counters;
    std::uint64_t grants = 0;  // permits created or extended from this source (every server)
    // Seconds between the time written in the newest login line and when it was read; nullopt
    // until a login with its own time arrived.
    std::optional<double> lag_seconds;
    std::string problem;  // Source::problem(): why it is not working now; "" when well
};

struct FrontendStats {
    std::string name;
    frontends::FrontendCounters counters;
    bool listening = true;  // it holds at least one listener
};

struct DaemonStats {
    std::string version;
    std::int64_t uptime_s = 0;
    std::string store_name;  // PermitStore::describe(): credentials masked
    store::StoreStatus store;
    std::uint64_t outage_answers = 0;  // lookups answered "no permit" because the store was down
    std::size_t permits = 0;           // live permits
    std::uint64_t grants = 0, extends = 0, expired = 0, revoked = 0;
    std::array<std::uint64_t, k_refusal_kinds> refused{};  // by Refusal
    std::vector<SourceStats> sources;
    std::vector<FrontendStats> frontends;
    // Permits created or extended, by (source, server); server "" for grants without a pattern
    // set (control socket, spool, auth policy).
    std::map<std::pair<std::string, std::string>, std::uint64_t> grants_by_server;
    std::vector<exports::ExportStatus> exports;
    std::vector<std::string> missing_frontends;  // configured with endpoints but not listening
};

// The `status` command's reply (control_protocol.hpp's "ok": true object).
nlohmann::json status_json(const DaemonStats& s);

// /health: well when the store is available and writing, no source reports a problem, every
// configured frontend listens and no export is failing. `reasons` says what is not well.
struct Health {
    bool ok = true;
    std::vector<std::string> reasons;
};
Health assess_health(const DaemonStats& s);
// {"status":"ok"} or {"status":"unavailable","reasons":[...]}, one line.
std::string health_json(const Health& h);

}  // namespace rp::daemon
