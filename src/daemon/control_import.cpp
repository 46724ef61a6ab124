// The control socket's `import` (a batch of permits read from an older system by `relaypermit
// import`) and `list` with "static" (the static allow list and where each entry came from).
//
// Every import entry goes through the same PermitPolicy as any login (ignore, max_ttl,
// ipv6_prefix); what each entry's time means (imports::EntryTime):
//   none     a login now: now + ttl (or the request's ttl_ms)
//   login    a login at that time: time + ttl; one whose permit would be over is "expired"
//            (the policy's `stale`); a time in the future counts as now
//   expires  kept as it is when in the future, but never beyond now + max_ttl; one at or before
//            now is "expired"
// With dry_run nothing is granted and the reply lists each entry's outcome. Otherwise one grant
// call takes the batch (one store transaction), each grant is logged as any other, and one
// summary line names the importing uid.
// Security: the entries come from a permitted local user (SO_PEERCRED) and were type-checked by
// the control codec; the policy is applied here whatever the CLI already did.
#include <algorithm>

#include "config/allow_file.hpp"
#include "daemon/daemon_impl.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

struct ImportCounts {
    std::uint64_t imported = 0, expired = 0, refused = 0, unchanged = 0;
    std::map<std::string, std::uint64_t> refusals;  // by reason: the policy's, and max_permits
};

nlohmann::json counts_json(const ImportCounts& c) {
    return {{"imported", c.imported}, {"expired", c.expired}, {"refused", c.refused},
            {"unchanged", c.unchanged}, {"refusals", c.refusals}};
}

// Counts what the store did with the granted permits: imported (unchanged ones too), or refused
// because the table is full (max_permits).
void count_grants(const std::vector<store::GrantOutcome>& outcomes, ImportCounts& counts) {
    for (const auto& o : outcomes) {
        if (o.change == store::GrantOutcome::Change::refused) {
            ++counts.refused;
            ++counts.refusals["max_permits"];
        } else {
            ++counts.imported;
            if (o.change == store::GrantOutcome::Change::unchanged) ++counts.unchanged;
        }
    }
}

}  // namespace

ControlReply Daemon::control_import(const ControlRequest& req, const ControlPeer& peer) {
    return {encode_control_reply(import_json(req, peer)), nullptr};
}

nlohmann::json Daemon::import_json(const ControlRequest& req, const ControlPeer& peer) {
    const auto now = clock_.now();
    const std::string source = "import:" + req.format;
    ImportCounts counts;
    auto results = nlohmann::json::array();
    std::vector<core::Permit> permits;
    auto outcome = [&](const core::Address& ip, std::string what, std::string detail) {
        if (req.dry_run) results.push_back({{"ip", ip.to_string()}, {"outcome", std::move(what)}, {"detail", std::move(detail)}});
    };
    for (const auto& entry : req.entries) {
        core::LoginEvent e{entry.ip, entry.user, req.format, source, now, core::TimeOrigin::push, false};
        std::optional<core::Duration> ttl = req.ttl;
        if (entry.kind == imports::EntryTime::login) e.time = entry.time;
        if (entry.kind == imports::EntryTime::expires) {
            if (entry.time <= now) {
                ++counts.expired;
                outcome(entry.ip, "expired", "expired at " + core::format_time(entry.time));
                continue;
            }
            ttl = std::min<core::Duration>(entry.time - now, grant_policy_.settings().max_ttl);
        }
        auto d = grant_policy_.decide(e, ttl, now);
        if (!d.granted()) {
            count_refusal(e, d);
            if (d.refusal == Refusal::stale) {
                ++counts.expired;
                outcome(entry.ip, "expired", d.reason);
            } else {
                ++counts.refused;
                ++counts.refusals[std::string(refusal_name(d.refusal))];
                outcome(entry.ip, "refused", d.reason);
            }
            continue;
        }
        outcome(entry.ip, "import", d.permit->network.to_string() + " until " + core::format_time(d.permit->expires));
        permits.push_back(std::move(*d.permit));
    }
    if (req.dry_run) {
        counts.imported = permits.size();
        auto r = counts_json(counts);
        r.update({{"ok", true}, {"dry_run", true}, {"results", results}});
        return r;
    }
    if (!permits.empty()) {
        auto res = grant(std::move(permits), {}, {}, static_cast<long>(peer.uid));
        if (!res) return {{"ok", false}, {"error", res.error().message}};
        count_grants(*res, counts);
    }
    log(Level::info, "import format={} entries={} imported={} expired={} refused={} by=uid:{}", req.format,
        req.entries.size(), counts.imported, counts.expired, counts.refused, static_cast<long>(peer.uid));
    auto r = counts_json(counts);
    r["ok"] = true;
    return r;
}

nlohmann::json Daemon::static_allow_json() const {
    auto arr = nlohmann::json::array();
    for (const auto& e : config::static_allow_list(cfg_)) arr.push_back({{"network", e.network.to_string()}, {"from", e.from}});
    return {{"ok", true}, {"static", arr}};
}

}  // namespace rp::daemon
