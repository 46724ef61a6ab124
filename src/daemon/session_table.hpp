// SessionTable: the open POP3/IMAP sessions behind permits, for the session-aware lifetime
// (`max_lifetime`, docs/limits.md).
//
// A login that carries a session id (Dovecot's session=<...>) opens a session on its permit's
// network; the server's end line (LoginEvent::kind == session_end, same server and id) closes it.
// While a network has an open session the daemon keeps its permit alive by extending it before
// it runs out (refresh, due when half the ttl is left); the end line extends it once more to
// ttl after the end. Every expiry comes from PermitPolicy::session_expiry: never beyond the
// login + max_lifetime (the session's `cap`), so a lost end line costs at most max_lifetime.
// Extending only (never shortening) is what every store already does, shared stores included,
// so sessions need nothing from the stores: a permit is only ever made longer, never revived
// (the daemon drops a session whose permit is gone) and never cut short.
//
// Bounded: at most `limit` open sessions; opening one more drops the oldest first (dropped()
// counts them; their permits then end ttl after the last extension). Closed marks (for `list`)
// are bounded by the same limit. No clock: callers pass `now`. Tests: test_sessions.cpp.
// Thread-safety: not thread-safe; the daemon owns it on its loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/time.hpp"
#include "daemon/permit_policy.hpp"
#include "store/permit_store.hpp"

namespace rp::daemon {

struct Session {
    std::string server;  // pattern set ("dovecot") or push source kind; with `id`, the key
    std::string id;      // the server's session id
    core::Cidr network;  // the permit it keeps alive
    std::string user, source;
    core::Time login{};  // the login's (clamped) time
    core::Time cap{};    // login + max_lifetime: no permit of this session lasts longer
    bool operator==(const Session&) const = default;
};

// What `relaypermit list` shows per permit.
enum class SessionState : std::uint8_t { none, open, closed };
std::string_view session_state_name(SessionState s);  // "none", "open", "closed"

class SessionTable {
public:
    static constexpr std::size_t k_default_limit = 100'000;

    explicit SessionTable(std::size_t limit = k_default_limit) : limit_(limit == 0 ? 1 : limit) {}

    // Records an open session (replacing one with the same server and id). `due`: when its
    // network's permit next wants extending; the network keeps the earliest due of its sessions.
    void open(Session s, core::Time due);
    // Closes the session (server, id) that `source` opened and returns it; nullopt when unknown
    // (never opened here, dropped, already ended) or opened by another source: an end line ends
    // only a session of its own source, so a source whose lines are easier to forge (a file,
    // a FIFO) cannot end one a trusted source (journald) opened.
    std::optional<Session> end(std::string_view server, std::string_view id, std::string_view source);
    // Closes every session of `user` (revoke --user) / on `net` (revoke; with `source`, a push's
    // logout, only that source's sessions).
    std::vector<Session> end_user(std::string_view user);
    std::vector<Session> end_network(const core::Cidr& net, std::optional<std::string_view> source = std::nullopt);
    // Closes the sessions on `net` whose login is before `t`: a revoke seen at `t` (another
    // host's, through the shared store) is final for every login before it; a later login's
    // session goes on.
    std::vector<Session> end_logged_in_before(const core::Cidr& net, core::Time t);
    // A new (smaller) max_lifetime, or restored sessions: every cap becomes
    // min(cap, login + max_lifetime) and a network whose earliest cap is before its refresh
    // time is rescheduled at that cap (the refresh then ends what is over).
    void tighten_caps(core::Duration max_lifetime);
    // Closes the sessions of `net` whose cap is <= now (their end line was lost).
    std::vector<Session> end_capped(const core::Cidr& net, core::Time now);

    // Networks due for a refresh at `now`, earliest first, at most `max`; each is taken off the
    // schedule until set_due() puts it back.
    std::vector<core::Cidr> take_due(core::Time now, std::size_t max);
    void set_due(const core::Cidr& net, core::Time due);
    std::optional<core::Time> next_due() const;

    // The open sessions on `net` (empty when none).
    std::vector<const Session*> on_network(const core::Cidr& net) const;
    bool has_open(const core::Cidr& net) const { return nets_.count(net) != 0; }

    // Marks `net` closed until `until` (its last session ended; shown by `list`).
    void mark_closed(const core::Cidr& net, core::Time until);
    SessionState state(const core::Cidr& net, core::Time now) const;

    std::vector<Session> all() const;  // in opening order (oldest first): what is saved
    std::size_t size() const { return sessions_.size(); }
    std::uint64_t dropped() const { return dropped_; }
    std::size_t limit() const { return limit_; }

private:
    struct Entry {
        Session s;
        std::uint64_t seq;
    };
    struct Net {
        std::set<std::string> keys;  // sessions on this network
        core::Time due{};
        bool scheduled = false;
    };
    static std::string key_of(std::string_view server, std::string_view id);
    Session remove(std::string key);  // by value: callers pass keys that live in the table
    void unschedule(const core::Cidr& net, Net& n);

    std::size_t limit_;
    std::uint64_t next_seq_ = 0, dropped_ = 0;
    std::unordered_map<std::string, Entry> sessions_;
    std::map<std::uint64_t, std::string> by_age_;
    std::map<core::Cidr, Net> nets_;
    std::set<std::pair<core::Time, core::Cidr>> due_;
    std::map<core::Cidr, core::Time> closed_;
};

// The daemon's session steps, pure (the daemon adds the store, the timer and the log lines;
// tests drive them with a PermitTable and a ManualClock). `permit_live`: whether the store holds
// a live permit for the network now; a session never revives a permit that is gone.

// Opens the session a granted login names (policy.opens_session(login)) on `granted`'s network.
// REQUIRES: the store took `granted` (created, extended or unchanged): a permit the caps or
// max_permits refused opens no session (open_granted_sessions checks it).
void open_session(SessionTable& t, const PermitPolicy& policy, const core::LoginEvent& login,
                  const core::Permit& granted);
// After a grant: opens the session of each login in `logins` whose permit `outcomes` (same
// order) says was taken; a refused one opens none. Returns how many were opened.
std::size_t open_granted_sessions(SessionTable& t, const PermitPolicy& policy,
                                  std::span<const std::pair<core::LoginEvent, core::Permit>> logins,
                                  std::span<const store::GrantOutcome> outcomes);

// One refresh of `net` (taken from take_due): sessions whose cap passed are closed (appended to
// `capped`: their end line was lost); if sessions remain and the permit is live, returns the
// extension and reschedules the network; otherwise its sessions are ended (appended to `ended`).
std::optional<core::Permit> refresh_network(SessionTable& t, const PermitPolicy& policy, const core::Cidr& net,
                                            bool permit_live, core::Time now, std::vector<Session>& capped,
                                            std::vector<Session>& ended);

// After session `s` ended at `end` (already taken out of the table): the permit for ttl after the
// end (never past its cap), or nullopt while another session keeps the network open, when the
// permit is gone, or when that time has passed. Marks the network closed.
std::optional<core::Permit> close_session(SessionTable& t, const PermitPolicy& policy, const Session& s,
                                          bool permit_live, core::Time end, core::Time now);

}  // namespace rp::daemon
