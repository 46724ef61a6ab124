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
    if (!store_->available() && cfg_.store_outage == "dunno") {
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

core::Result<std::vector<store::GrantOutcome>> Daemon::grant(std::vector<core::Permit> permits,
                                                             std::span<const core::Checkpoint> cps,
                                                             const std::vector<std::string>& servers, long by_uid) {
    auto res = store_->grant(permits, cps, clock_.now());
    if (!res) return res;
    for (std::size_t i = 0; i < res->size(); ++i) {
        const auto& o = (*res)[i];
        if (o.change == store::GrantOutcome::Change::unchanged) continue;
        if (o.change == store::GrantOutcome::Change::refused) continue;  // max_permits: the store logs and counts
        const bool created = o.change == store::GrantOutcome::Change::created;
        (created ? grants_ : extends_)++;
        ++grants_by_source_[o.permit.source];
        log(Level::info, "{} {}{}", created ? "grant" : "extend",
            permit_text(o.permit, i < servers.size() ? std::string_view(servers[i]) : std::string_view()),
            by_uid >= 0 ? fmt::format(" by=uid:{}", by_uid) : std::string());
    }
    reschedule_expiry();
    return res;
}

core::Status Daemon::deliver(std::span<const core::LoginEvent> events, const core::Checkpoint& checkpoint) {
    const auto now = clock_.now();
    std::vector<core::Permit> permits;
    std::vector<std::string> servers;
    for (const auto& e : events) {
        if (e.kind == core::LoginKind::session_end) {  // sessions.cpp
            end_session(e, now, permits, servers);
            continue;
        }
        auto d = grant_policy_.decide(e, std::nullopt, now);
        if (!d.granted()) {
            count_refusal(e, d);
            continue;
        }
        if (grant_policy_.opens_session(e)) open_session(e, *d.permit);
        permits.push_back(std::move(*d.permit));
        servers.push_back(e.server);
    }
    const std::span<const core::Checkpoint> cps(&checkpoint, checkpoint.key.empty() ? 0 : 1);
    auto res = grant(std::move(permits), cps, servers);
    if (!res) {
        util::log(Level::error, "cannot record logins from {}: {}", checkpoint.key, res.error().message);
        return res.error();
    }
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

void Daemon::schedule_stats() {
    loop_.call_after(std::chrono::hours(1), [this] {
        log_stats();
        schedule_stats();
    });
}

void Daemon::log_stats() {
    for (const auto& s : sources_) {
        const auto c = s->counters();
        log(Level::info, "stats source={} lines={} matches={} grants={} untrusted={} malformed={} dropped={} filtered={}",
            s->name(), c.lines, c.matches, grants_by_source_[s->name()], c.untrusted, c.malformed, c.dropped, c.filtered);
    }
    for (const auto& fe : frontends_) {
        const auto c = fe->counters();
        log(Level::info, "stats frontend={} connections={} requests={} permitted={} malformed={} refused={}", fe->name(),
            c.connections, c.requests, c.permitted, c.malformed, c.refused);
    }
    if (grant_policy_.sessions_enabled())
        log(Level::info, "stats sessions open={} opened={} ended={} capped={} dropped={}", sessions_.size(),
            sessions_opened_, sessions_ended_, sessions_capped_, sessions_.dropped());
    const auto ss = store_->status();
    log(Level::info, "stats store={} permits={} grants={} extends={} expired={} revoked={}{}", store_->describe(),
        store_->size(), grants_, extends_, expired_, revoked_,
        ss.shared ? fmt::format(" available={} queued={} outages={} outage_answers={}", ss.available, ss.queued,
                                ss.outages, outage_answers_)
                  : std::string());
}

}  // namespace rp::daemon
