// The Daemon as LoginSink and PermitOracle: every grant through the PermitPolicy (log lines,
// the auth-policy source, the spool; control `allow` in control_commands.cpp), the expiry timer,
// the export timer, and the counters' stats line.
#include <algorithm>

#include "daemon/login_spool.hpp"

#include "daemon/daemon_impl.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

// The audit line's fields: "ip=... user=... [server=...] source=... expires=...".
std::string permit_text(const core::Permit& p, std::string_view server) {
    return fmt::format("ip={} user={}{} source={} expires={}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user),
                       server.empty() ? "" : " server=" + util::escape_value(server), util::esc(p.source),
                       core::format_time(p.expires));
}

}  // namespace

frontends::Verdict Daemon::check(const core::Address& client) const {
    frontends::Verdict v;
    for (const auto& c : cfg_.allow) {
        if (c.contains(client)) {
            v.kind = frontends::Verdict::Kind::static_allow;
            v.user = c.to_string();
            return v;
        }
    }
    if (!store_->available() && cfg_.store_outage == config::StoreOutage::dunno) {
        ++outage_answers_;  // a shared store is unreachable: answer as if there were no permit
        return v;
    }
    if (auto p = store_->find(client, clock_.now())) {
        v.kind = frontends::Verdict::Kind::permit;
        v.expires = p->expires;
        v.user = p->user;
    }
    return v;
}

core::Result<std::size_t> Daemon::revoke(const core::Address& a, std::string_view source) {
    auto gone = store_->revoke(a);
    if (!gone) return gone.error();
    for (const auto& p : *gone) {
        ++revoked_;
        log(Level::info, "revoke ip={} user={} by={}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user),
            util::escape_value(source));
    }
    end_revoked_sessions(*gone, std::nullopt);  // a revoke is final for the sessions behind it
    if (!gone->empty()) reschedule_expiry();
    return gone->size();
}

core::Result<std::vector<store::GrantOutcome>> Daemon::grant(std::vector<core::Permit> permits,
                                                             std::span<const core::Checkpoint> cps,
                                                             const std::vector<std::string>& servers_in, long by_uid) {
    // [limits] caps (permit_caps.hpp): refused permits leave the batch; their outcome is
    // `refused`, in its own place: outcomes are in the order of `permits`.
    const std::size_t n = permits.size();
    std::vector<std::string> servers = servers_in;
    servers.resize(n);
    std::vector<core::Permit> capped;
    std::vector<bool> kept(n, true);
    auto kept_servers = servers;
    apply_caps(permits, kept_servers, capped, kept);
    auto stored = store_->grant(permits, cps, clock_.now());
    if (!stored) return stored;
    std::vector<store::GrantOutcome> res;
    res.reserve(n);
    for (std::size_t i = 0, s = 0, c = 0; i < n; ++i)
        res.push_back(kept[i] ? std::move((*stored)[s++])
                              : store::GrantOutcome{store::GrantOutcome::Change::refused, std::move(capped[c++])});
    for (std::size_t i = 0; i < res.size(); ++i) {
        const auto& o = res[i];
        if (o.change == store::GrantOutcome::Change::unchanged) continue;
        if (o.change == store::GrantOutcome::Change::refused) continue;  // caps, max_permits: logged and counted
        const bool created = o.change == store::GrantOutcome::Change::created;
        (created ? grants_ : extends_)++;
        ++grants_by_server_[{o.permit.source, servers[i]}];
        observe_grant(o.permit);
        log(Level::info, "{} {}{}", created ? "grant" : "extend", permit_text(o.permit, servers[i]),
            by_uid >= 0 ? fmt::format(" by=uid:{}", by_uid) : std::string());
    }
    reschedule_expiry();
    return res;
}

core::Status Daemon::deliver(std::span<const core::LoginEvent> events, const core::Checkpoint& checkpoint) {
    const auto now = clock_.now();
    std::vector<core::Permit> permits;
    std::vector<std::string> servers;
    std::vector<std::size_t> session_at;  // permits[session_at[k]] is session_logins[k]'s
    std::vector<std::pair<core::LoginEvent, core::Permit>> session_logins;
    for (const auto& e : events) {
        if (e.time_origin == core::TimeOrigin::line)  // how far behind the source reads (status, metrics)
            lag_by_source_[e.source] = std::chrono::duration<double>(now - e.time).count();
        if (e.kind == core::LoginKind::session_end) {  // sessions.cpp
            end_session(e, now, permits, servers);
            continue;
        }
        auto d = grant_policy_.decide(e, std::nullopt, now);
        if (!d.granted()) {
            count_refusal(e, d);
            continue;
        }
        if (grant_policy_.opens_session(e)) {
            session_at.push_back(permits.size());
            session_logins.emplace_back(e, *d.permit);
        }
        permits.push_back(std::move(*d.permit));
        servers.push_back(e.server);
    }
    const std::span<const core::Checkpoint> cps(&checkpoint, checkpoint.key.empty() ? 0 : 1);
    auto res = grant(std::move(permits), cps, servers);
    if (!res) {
        util::log(Level::error, "cannot record logins from {}: {}", checkpoint.key, res.error().message);
        return res.error();
    }
    // Only a login whose permit was taken opens its session: one the caps or max_permits
    // refused must never be extended by a session later.
    std::vector<store::GrantOutcome> outcomes;
    for (auto i : session_at) outcomes.push_back((*res)[i]);
    if (!session_logins.empty()) open_sessions(session_logins, outcomes);
    return core::ok();
}

void Daemon::count_refusal(const core::LoginEvent& e, const PolicyDecision& d) {
    refused_.count(d.refusal);
    if (d.refusal == Refusal::ignored)
        log(Level::debug, "ignored ip={} user={} server={} source={} (ignore list)", e.ip.to_string(), util::esc(e.user),
            util::esc(e.server), util::esc(e.source));
    else
        log(Level::debug, "refused ip={} user={} source={}: {}", e.ip.to_string(), util::esc(e.user), util::esc(e.source),
            d.reason);
}

void Daemon::drain_spool() {
    const auto dir = spool_dir_for(cfg_.state_dir);
    auto entries = read_spool(dir, 10000);
    if (!entries) {
        log(Level::error, "spool: {}", entries.error().message);
        return;
    }
    if (entries->empty()) return;
    const auto now = clock_.now();
    std::vector<core::Permit> permits;
    for (const auto& e : *entries) {
        if (!e.login) {
            log(Level::warning, "spool: {}/{}: {}; removed", dir, e.name, e.login.error().message);
            continue;
        }
        const core::LoginEvent ev{e.login->ip, e.login->user, "", "spool", e.login->time, core::TimeOrigin::push, false};
        auto d = grant_policy_.decide(ev, e.login->ttl, now);
        if (d.granted()) permits.push_back(std::move(*d.permit));
        else count_refusal(ev, d);
    }
    if (auto res = grant(std::move(permits), {}); !res) {
        log(Level::error, "spool: cannot record {} spooled login(s), keeping them: {}", entries->size(), res.error().message);
        return;
    }
    for (const auto& e : *entries)
        if (auto st = remove_spooled(dir, e.name); !st) log(Level::error, "spool: {}", st.error().message);
    log(Level::notice, "spool: {} login(s) pushed while the daemon was stopped taken from {}", entries->size(), dir);
}

void Daemon::schedule_spool_drain() {
    loop_.call_after(std::chrono::minutes(1), [this] {
        drain_spool();
        schedule_spool_drain();
    });
}

void Daemon::reschedule_expiry() {
    schedule_exports();
    if (expiry_timer_) loop_.cancel(expiry_timer_);
    expiry_timer_ = 0;
    auto next = store_->next_expiry();
    if (!next) return;
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_.now());
    if (delay < std::chrono::milliseconds(0)) delay = std::chrono::milliseconds(0);
    // Re-check at least once a minute: wall-clock jumps do not move a monotonic timer.
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::minutes(1));
    expiry_timer_ = loop_.call_after(delay, [this] {
        expiry_timer_ = 0;
        run_expiry();
    });
}

void Daemon::run_expiry() {
    auto gone = store_->expire(clock_.now());
    if (!gone) {
        log(Level::error, "expiry: {}", gone.error().message);
    } else {
        for (const auto& p : *gone) {
            ++expired_;
            log(Level::info, "expire ip={} user={}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user));
        }
    }
    reschedule_expiry();
}

void Daemon::schedule_exports() { exports_.changed(); }

exports::ExportScheduler::PieceCopy Daemon::export_copy(core::Time now) const {
    // 2048 records a turn: well under a millisecond of copying between two rounds of lookups.
    constexpr std::size_t k_export_piece = 2048;
    const auto& table = store_->table();
    return [&table, cursor = table.open_cursor(), now](std::vector<core::Permit>& out) {
        if (out.empty()) out.reserve(table.size());
        return table.scan(*cursor, now, k_export_piece, [&](const core::Permit& p) { out.push_back(p); });
    };
}

void Daemon::schedule_stats() {
    loop_.call_after(std::chrono::hours(1), [this] {
        log_stats();
        schedule_stats();
    });
}

void Daemon::log_stats() {
    const auto st = collect_stats();
    for (const auto& s : st.sources) {
        const auto& c = s.counters;
        log(Level::info, "stats source={} lines={} matches={} grants={} untrusted={} malformed={} dropped={} filtered={}",
            s.name, c.lines, c.matches, s.grants, c.untrusted, c.malformed, c.dropped, c.filtered);
    }
    for (const auto& fe : st.frontends) {
        const auto& c = fe.counters;
        log(Level::info, "stats frontend={} connections={} requests={} permitted={} malformed={} refused={}", fe.name,
            c.connections, c.requests, c.permitted, c.malformed, c.refused);
    }
    if (grant_policy_.sessions_enabled())
        log(Level::info, "stats sessions open={} opened={} ended={} capped={} dropped={}", sessions_.size(),
            sessions_opened_, sessions_ended_, sessions_capped_, sessions_.dropped());
    const auto& ss = st.store;
    log(Level::info, "stats store={} permits={} grants={} extends={} expired={} revoked={}{}", st.store_name, st.permits,
        st.grants, st.extends, st.expired, st.revoked,
        ss.shared ? fmt::format(" available={} queued={} outages={} outage_answers={}", ss.available, ss.queued,
                                ss.outages, st.outage_answers)
                  : std::string());
}

}  // namespace rp::daemon
