// PermitPolicy: the one rule that turns a login into a permit, or refuses it with a reason.
//
// Every grant path asks it: logins from log lines and from the dovecot-auth-policy source
// (Daemon::deliver), the control socket's `allow` (`relaypermit allow`, `allow --chain`) and
// logins spooled while the daemon was stopped. So `ignore`, `ipv6_prefix` and the ttl bounds mean
// the same whichever way a login arrives; issue 12 item 2 was a push path that skipped `ignore`.
//
// It is pure: no I/O, no clock of its own (the caller passes `now`), no counters (the caller
// counts refusals in a RefusalCounters, which `status` shows). Tests drive it with ManualClock.
//
// Rules, in this order (the first that applies refuses):
//   ttl_out_of_bounds  a requested ttl is not in (0, max_ttl]
//   ignored            the address is in `ignore`
//   untimed_backlog    time_origin == reading and backlog: an old line whose time is unknown
//                      (issue 12 item 1's contract): it never grants
//   stale              login time (clamped to `now`) + ttl <= now: the permit would already be over
// A login time in the future (a clock step, a hand-edited spool file) counts as `now`, so nothing
// can extend a permit beyond now + max_ttl.
// Thread-safety: const methods may be called from any thread; RefusalCounters is not thread-safe.
// Security: the request fields come from log lines and local pushers (untrusted); every field is
// checked here, whatever the transport already checked.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/time.hpp"

namespace rp::daemon {

enum class Refusal : std::uint8_t { ignored, stale, untimed_backlog, ttl_out_of_bounds };
inline constexpr std::size_t k_refusal_kinds = 4;

// "ignored", "stale", "untimed_backlog", "ttl_out_of_bounds": the keys in `status --json`.
std::string_view refusal_name(Refusal r);

struct PolicySettings {
    std::vector<core::Cidr> ignore;
    core::Duration ttl = std::chrono::minutes(30);       // REQUIRES: 0 < ttl <= max_ttl
    core::Duration max_ttl = std::chrono::hours(24);
    int ipv6_prefix = 128;                               // REQUIRES: 32..128
    // Session-aware lifetime (docs/limits.md); zero = off. REQUIRES: ttl <= max_lifetime <= max_ttl.
    core::Duration max_lifetime{0};
};

struct PolicyDecision {
    std::optional<core::Permit> permit;  // set when granted
    Refusal refusal = Refusal::ignored;  // meaningful only when !permit
    std::string reason;                  // for a refusal: one human sentence, e.g.
                                         // "127.0.0.1 is in ignore (127.0.0.0/8)"
    bool granted() const { return permit.has_value(); }
};

class PermitPolicy {
public:
    PermitPolicy() = default;
    explicit PermitPolicy(PolicySettings settings) : s_(std::move(settings)) {}

    // The permit `login` earns at `now`, or why it earns none. `ttl`: a lifetime the pusher
    // asked for (`relaypermit allow --ttl`); nullopt means the configured ttl. The permit's
    // source is login.source, its user login.user, granted = the (clamped) login time.
    PolicyDecision decide(const core::LoginEvent& login, std::optional<core::Duration> ttl, core::Time now) const;

    // The network a permit for `a` covers: a host route, or for IPv6 the /ipv6_prefix network.
    core::Cidr network_for(const core::Address& a) const;
    // The `ignore` entry containing `a`, if any.
    std::optional<core::Cidr> find_ignore(const core::Address& a) const;
    const PolicySettings& settings() const { return s_; }

    // --- Session-aware lifetime (session_table.hpp, docs/limits.md) ---------------------------
    // A login opens a session when max_lifetime is set and the login names one (LoginEvent::
    // session); its permit itself is decide()'s. Then, pure like decide():
    //   cap     = login + max_lifetime (login clamped to now): no expiry of the session beyond it;
    //   expiry  = min(at + ttl, cap) with `at` = now while the session is open (a refresh), or
    //             the end line's time (clamped to now) when it ends.
    // A session_permit() whose expiry is not after `now` is nullopt (nothing to extend).
    bool sessions_enabled() const { return s_.max_lifetime > core::Duration::zero(); }
    bool opens_session(const core::LoginEvent& login) const {
        return sessions_enabled() && login.kind == core::LoginKind::login && !login.session.empty();
    }
    core::Time session_cap(core::Time login, core::Time now) const;
    core::Time session_expiry(core::Time at, core::Time cap, core::Time now) const;
    // When a session's permit that lasts until `expires` wants extending: half the ttl before,
    // or at `cap` once the cap is reached (then the session is over: its end line was lost).
    core::Time session_due(core::Time expires, core::Time cap) const;
    std::optional<core::Permit> session_permit(const core::Cidr& net, const std::string& user, const std::string& source,
                                               core::Time at, core::Time cap, core::Time now) const;

private:
    PolicySettings s_;
};

// Refusals counted per reason (the daemon keeps one; `status` prints it).
class RefusalCounters {
public:
    void count(Refusal r) { ++n_[static_cast<std::size_t>(r)]; }
    std::uint64_t operator[](Refusal r) const { return n_[static_cast<std::size_t>(r)]; }

private:
    std::array<std::uint64_t, k_refusal_kinds> n_{};
};

}  // namespace rp::daemon
