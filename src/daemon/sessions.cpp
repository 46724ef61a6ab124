// The Daemon's session-aware lifetime (`max_lifetime`, docs/limits.md): logins that name a
// session open it (SessionTable), the refresh timer extends the permits of open sessions before
// they run out, end lines close them with ttl more, and the table is saved in the state dir.
// Every expiry comes from PermitPolicy's session functions; every change goes through grant().
#include <algorithm>
#include <set>

#include "daemon/daemon_impl.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

// Networks refreshed per timer run: a mass refresh is spread over loop iterations.
constexpr std::size_t k_refresh_slice = 1024;

std::string session_text(const Session& s) {
    return fmt::format("ip={} user={} server={} session={}", s.network.to_string(), util::esc(s.user.empty() ? "-" : s.user),
                       util::esc(s.server), util::esc(s.id));
}

}  // namespace

core::Status Daemon::restore_sessions() {
    if (!grant_policy_.sessions_enabled()) return core::ok();
    const auto path = cfg_.state_dir + "/" + k_session_file;
    auto saved = read_session_file(path);
    if (!saved) {  // refused (a link, another owner, writable by others, too big): no session
        log(Level::error, "sessions: {}; starting without saved sessions (their permits run out ttl after the login)",
            saved.error().message);
        saved = DecodedSessions{};
    }
    const auto now = clock_.now();
    std::size_t kept = 0;
    for (auto& s : saved->sessions) {
        // Saved under a longer max_lifetime? The cap is the smaller of the two.
        s.cap = std::min(s.cap, grant_policy_.session_cap(s.login, now));
        // A session never revives a permit: one whose permit ended while we were stopped is over.
        const auto live = store_->find(s.network.network(), now);
        if (s.cap <= now || !live) continue;
        const auto due = grant_policy_.session_due(live->expires, s.cap);
        sessions_.open(std::move(s), due);
        ++kept;
    }
    if (!saved->sessions.empty() || saved->malformed)
        log(Level::notice, "sessions: {} open session(s) restored from {} ({} over, {} malformed line(s))", kept, path,
            saved->sessions.size() - kept, saved->malformed);
    session_writer_.start(path);
    schedule_session_refresh();
    return core::ok();
}

void Daemon::open_sessions(std::span<const std::pair<core::LoginEvent, core::Permit>> logins,
                           std::span<const store::GrantOutcome> outcomes) {
    const auto dropped = sessions_.dropped();
    const auto opened = open_granted_sessions(sessions_, grant_policy_, logins, outcomes);
    for (std::size_t i = 0; i < logins.size() && i < outcomes.size(); ++i) {
        const auto& [e, granted] = logins[i];
        log(Level::debug, "session {} ip={} user={} server={} session={}",
            outcomes[i].change == store::GrantOutcome::Change::refused ? "refused" : "open", granted.network.to_string(),
            util::esc(e.user.empty() ? "-" : e.user), util::esc(e.server), util::esc(e.session));
    }
    if (sessions_.dropped() != dropped)
        log(Level::warning, "sessions: {} open sessions held (the limit): the oldest dropped ({} so far)",
            sessions_.limit(), sessions_.dropped());
    if (opened == 0) return;
    sessions_opened_ += opened;
    save_sessions_soon();
    schedule_session_refresh();
}

void Daemon::end_session(const core::LoginEvent& e, core::Time now, std::vector<core::Permit>& permits,
                         std::vector<std::string>& servers) {
    std::vector<Session> ended;
    if (!e.session.empty()) {
        if (auto s = sessions_.end(e.server, e.session, e.source)) ended.push_back(std::move(*s));
    } else {  // a push's logout by address: that source's sessions only
        ended = sessions_.end_network(grant_policy_.network_for(e.ip), std::string_view(e.source));
    }
    for (const auto& s : ended) {
        ++sessions_ended_;
        log(Level::debug, "session end {}", session_text(s));
        const bool live = store_->find(s.network.network(), now).has_value();
        auto p = close_session(sessions_, grant_policy_, s, live, e.time, now);
        if (!p) continue;
        permits.push_back(std::move(*p));
        servers.push_back(s.server);
    }
    if (!ended.empty()) save_sessions_soon();
}

std::size_t Daemon::end_revoked_sessions(const std::vector<core::Permit>& gone, const std::optional<std::string>& user) {
    std::size_t n = 0;
    if (user) n += sessions_.end_user(*user).size();
    for (const auto& p : gone) n += sessions_.end_network(p.network).size();
    for (const auto& p : gone) sessions_.mark_closed(p.network, clock_.now());
    if (n) {
        sessions_ended_ += n;
        save_sessions_soon();
    }
    return n;
}

void Daemon::end_removed_sessions(const std::vector<core::Permit>& removed) {
    const auto now = clock_.now();
    std::size_t n = 0;
    for (const auto& p : removed) {
        const auto ended = sessions_.end_logged_in_before(p.network, now);
        if (ended.empty()) continue;
        n += ended.size();
        for (const auto& s : ended) log(Level::info, "session end {}: its permit was revoked on another host", session_text(s));
        sessions_.mark_closed(p.network, now);
        // One of our refreshes may have crossed the revoke and written the permit again: remove
        // it once more (a no-op when it is gone; our outbox keeps the order: after that refresh).
        if (auto again = store_->revoke(p.network.network()); !again)
            log(Level::error, "sessions: cannot remove {} again after its revoke: {}", p.network.to_string(),
                again.error().message);
        else
            for (const auto& g : *again) {
                ++revoked_;
                log(Level::info, "revoke ip={} user={} by=revoked_elsewhere", g.network.to_string(),
                    util::esc(g.user.empty() ? "-" : g.user));
            }
    }
    if (n == 0) return;
    sessions_ended_ += n;
    save_sessions_soon();
    reschedule_expiry();
}

void Daemon::end_sessions_without_permit() {
    std::set<core::Cidr> seen;
    std::vector<core::Permit> gone;
    for (const auto& s : sessions_.all())
        if (seen.insert(s.network).second && !store_->table().find_exact(s.network))
            gone.push_back(core::Permit{s.network, {}, {}, {}, {}});
    log(Level::warning, "sessions: more removals than the store keeps at once; {} session network(s) without a permit "
        "are treated as revoked", gone.size());
    end_removed_sessions(gone);
}

void Daemon::tighten_session_caps() {
    if (grant_policy_.sessions_enabled()) {
        sessions_.tighten_caps(grant_policy_.settings().max_lifetime);
    } else if (sessions_.size() != 0) {
        // max_lifetime unset: no session keeps a permit any more; each runs out ttl after its
        // last extension, and the saved table is emptied.
        sessions_ended_ += sessions_.size();
        for (const auto& s : sessions_.all()) sessions_.end(s.server, s.id, s.source);
        if (session_writer_.running()) session_writer_.save({});
    }
    schedule_session_refresh();
}

void Daemon::refresh_sessions() {
    const auto now = clock_.now();
    std::vector<core::Permit> permits;
    std::vector<std::string> servers;
    for (const auto& net : sessions_.take_due(now, k_refresh_slice)) {
        std::vector<Session> capped, ended;
        // A reload may have turned sessions off or put the network in `ignore`: then its open
        // sessions end here instead of extending (the admin's mitigation takes effect at once).
        const bool allowed = grant_policy_.sessions_enabled() && !grant_policy_.find_ignore(net.network());
        const bool live = allowed && store_->find(net.network(), now).has_value();
        auto p = refresh_network(sessions_, grant_policy_, net, live, now, capped, ended);
        for (const auto& s : capped)
            log(Level::info, "session over {}: max_lifetime reached without its end line", session_text(s));
        sessions_capped_ += capped.size();
        sessions_ended_ += ended.size();
        if (!p) continue;
        servers.push_back(sessions_.on_network(net).front()->server);
        permits.push_back(std::move(*p));
    }
    if (!permits.empty())
        if (auto res = grant(std::move(permits), {}, servers); !res)
            log(Level::error, "sessions: cannot extend the permits of open sessions: {}", res.error().message);
    save_sessions_soon();
    schedule_session_refresh();
}

void Daemon::schedule_session_refresh() {
    if (session_timer_) loop_.cancel(session_timer_);
    session_timer_ = 0;
    const auto next = sessions_.next_due();
    if (!next) return;
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_.now());
    // At least once a minute: a monotonic timer does not follow wall-clock steps.
    delay = std::clamp<std::chrono::milliseconds>(delay, std::chrono::milliseconds(0), std::chrono::minutes(1));
    session_timer_ = loop_.call_after(delay, [this] {
        session_timer_ = 0;
        refresh_sessions();
    });
}

void Daemon::save_sessions_soon() {
    if (session_save_timer_ || !grant_policy_.sessions_enabled()) return;
    if (!session_writer_.running()) session_writer_.start(cfg_.state_dir + "/" + k_session_file);  // on at a reload
    // At most once a second: the writer thread encodes and writes a copy of the table.
    session_save_timer_ = loop_.call_after(std::chrono::seconds(1), [this] {
        session_save_timer_ = 0;
        session_writer_.save(sessions_.all());
    });
}

void Daemon::save_sessions_now() {
    if (!grant_policy_.sessions_enabled()) return;
    if (session_save_timer_) loop_.cancel(session_save_timer_);
    session_save_timer_ = 0;
    session_writer_.save(sessions_.all());
    session_writer_.stop();  // writes what is pending, then joins
}

nlohmann::json Daemon::sessions_status_json() const {
    return {{"enabled", grant_policy_.sessions_enabled()}, {"open", sessions_.size()},  {"limit", sessions_.limit()},
            {"opened", sessions_opened_},                    {"ended", sessions_ended_}, {"capped", sessions_capped_},
            {"dropped", sessions_.dropped()},                {"save_failures", session_writer_.failures()}};
}

}  // namespace rp::daemon
