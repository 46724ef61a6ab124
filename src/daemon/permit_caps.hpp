// PermitCaps: the per-user and per-network caps of the grant policy, and the alert rule
// (`[limits] addresses_per_user`, `replace_oldest`, `permits_per_prefix`, `alert_addresses`;
// docs/limits.md). The second half of the pure grant step: PermitPolicy (permit_policy.hpp)
// turns a login into a permit, check_caps() decides whether that permit may be added to what is
// held now; Daemon::grant, which every grant path goes through, asks both.
//
// Rules (an extension of a network already held is never refused: the caps bound how many
// addresses, not how often a user logs in):
//   addresses_per_user = N  a user holding N permits gets no further network (refuse_user), or
//                           with replace_oldest = true the user's permit granted earliest is
//                           revoked to make room (grant + replace)
//   permits_per_prefix      "/24:N" (IPv4: lengths up to 32), "/64:N" (IPv6: longer than 32),
//                           "ipv4/L:N" / "ipv6/L:N" to be explicit: at most N permits inside
//                           one such network (refuse_prefix); a list may hold several
// check_caps is pure (the caller passes what is held); CapIndex is the daemon's in-memory view
// of what is held per user and per prefix, checked against the store before use (a stale entry
// is dropped, so expiry and revokes need no bookkeeping here).
// AddressAlert: "one user logged in from more than K addresses in M" (`alert_addresses = "K/M"`).
// Thread-safety: not thread-safe (loop thread); check_caps is a pure function.
// Security: user names and addresses come from logs and pushes (untrusted); they are only keys.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/limits_config.hpp"
#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::daemon {

using config::PrefixCap;

struct CapSettings {
    std::size_t addresses_per_user = 0;  // 0: no cap
    bool replace_oldest = false;
    std::vector<PrefixCap> prefix_caps;
    bool enabled() const { return addresses_per_user > 0 || !prefix_caps.empty(); }
    bool operator==(const CapSettings&) const = default;
};

// A permit held now, as the cap check sees it.
struct HeldPermit {
    core::Cidr network;
    core::Time granted;
};

struct CapDecision {
    enum class Kind : std::uint8_t { grant, refuse_user, refuse_prefix };
    Kind kind = Kind::grant;
    std::vector<core::Cidr> replace;  // grant with replace_oldest: revoke these first
    std::string reason;               // refusals and replacements: one sentence for the log
    bool granted() const { return kind == Kind::grant; }
};

// The prefix a cap counts `net` in ("192.0.2.0/24"), or nothing when the cap is for the other
// family or longer than the permit's own network.
std::optional<core::Cidr> cap_prefix(const PrefixCap& cap, const core::Cidr& net);

// `user_held`: the live permits of candidate.user (other networks and maybe candidate's own);
// `in_prefix[i]`: live permits inside cap_prefix(prefix_caps[i], candidate.network), other than
// candidate's own network; `held`: candidate.network is already held (an extension).
CapDecision check_caps(const CapSettings& s, const core::Permit& candidate, std::span<const HeldPermit> user_held,
                       std::span<const std::size_t> in_prefix, bool held);

// What is held per user and per cap prefix. `live(net, user)` says whether the store still
// holds `net` (for `user`, when not empty); entries it denies are dropped when met.
class CapIndex {
public:
    using Live = std::function<std::optional<core::Permit>(const core::Cidr& net)>;

    void clear() { users_.clear(), prefixes_.clear(); }
    void add(const core::Permit& p, const CapSettings& s);
    void remove(const core::Cidr& net);  // revoked by the cap itself
    // The live permits of `user`, and per cap the live count in candidate's prefix.
    std::vector<HeldPermit> user_held(const std::string& user, const Live& live);
    std::vector<std::size_t> in_prefix(const core::Cidr& candidate, const CapSettings& s, const Live& live);

private:
    std::unordered_map<std::string, std::map<std::string, HeldPermit>> users_;  // user -> network text -> held
    std::unordered_map<std::string, std::set<std::string>> prefixes_;          // prefix text -> networks
};

// "More than K distinct addresses for one user within M": true once per user and period.
class AddressAlert {
public:
    AddressAlert(std::size_t k, core::Duration m, std::size_t max_users = 100'000)
        : k_(k), m_(m), max_users_(max_users) {}
    // A login of `user` from `net` at `now`; true when it raises the alert (the caller logs).
    bool observe(const std::string& user, const std::string& net, core::Time now);
    std::size_t distinct(const std::string& user) const;

private:
    struct Seen {
        std::list<std::pair<std::string, core::Time>> recent;  // newest first, distinct networks
        std::optional<core::Time> alerted;
        std::list<std::string>::iterator lru;
    };
    std::size_t k_;
    core::Duration m_;
    std::size_t max_users_;
    std::unordered_map<std::string, Seen> users_;
    std::list<std::string> lru_;
};

}  // namespace rp::daemon
