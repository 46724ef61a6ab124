#include "daemon/permit_policy.hpp"

#include <algorithm>

namespace rp::daemon {

std::string_view refusal_name(Refusal r) {
    switch (r) {
        case Refusal::ignored: return "ignored";
        case Refusal::stale: return "stale";
        case Refusal::untimed_backlog: return "untimed_backlog";
        case Refusal::ttl_out_of_bounds: return "ttl_out_of_bounds";
    }
    return "unknown";
}

core::Cidr PermitPolicy::network_for(const core::Address& a) const {
    return a.is_v4() ? core::Cidr::host(a) : core::Cidr(a, s_.ipv6_prefix);
}

std::optional<core::Cidr> PermitPolicy::find_ignore(const core::Address& a) const {
    const auto it = std::find_if(s_.ignore.begin(), s_.ignore.end(), [&](const core::Cidr& c) { return c.contains(a); });
    if (it == s_.ignore.end()) return std::nullopt;
    return *it;
}

PolicyDecision PermitPolicy::decide(const core::LoginEvent& login, std::optional<core::Duration> ttl,
                                    core::Time now) const {
    auto refuse = [](Refusal r, std::string reason) {
        PolicyDecision d;
        d.refusal = r;
        d.reason = std::move(reason);
        return d;
    };
    const core::Duration life = ttl.value_or(s_.ttl);
    if (life <= core::Duration::zero() || life > s_.max_ttl)
        return refuse(Refusal::ttl_out_of_bounds,
                      "a ttl must be positive and at most max_ttl (" + core::format_duration(s_.max_ttl) +
                          "), not " + core::format_duration(life));
    if (const auto net = find_ignore(login.ip))
        return refuse(Refusal::ignored, login.ip.to_string() + " is in ignore (" + net->to_string() + ")");
    if (login.time_origin == core::TimeOrigin::reading && login.backlog)
        return refuse(Refusal::untimed_backlog,
                      "the login was read from a backlog and its line has no time that could be read");
    // A time in the future counts as now: nothing is granted beyond now + max_ttl.
    const core::Time at = std::min(login.time, now);
    // `life` <= max_ttl (at most years) and `at` <= now, so the sum cannot overflow.
    const core::Time expires = at + life;
    if (expires <= now)
        return refuse(Refusal::stale, "the login at " + core::format_time(at) + " is older than its ttl (" +
                                          core::format_duration(life) + ")");
    PolicyDecision d;
    d.permit = core::Permit{network_for(login.ip), login.user, login.source, at, expires};
    return d;
}

// --- Session-aware lifetime -------------------------------------------------------------------

core::Time PermitPolicy::session_cap(core::Time login, core::Time now) const {
    return std::min(login, now) + s_.max_lifetime;
}

core::Time PermitPolicy::session_expiry(core::Time at, core::Time cap, core::Time now) const {
    return std::min(std::min(at, now) + s_.ttl, cap);
}

core::Time PermitPolicy::session_due(core::Time expires, core::Time cap) const {
    return expires >= cap ? cap : expires - s_.ttl / 2;
}

std::optional<core::Permit> PermitPolicy::session_permit(const core::Cidr& net, const std::string& user,
                                                         const std::string& source, core::Time at, core::Time cap,
                                                         core::Time now) const {
    const auto expires = session_expiry(at, cap, now);
    if (expires <= now) return std::nullopt;
    return core::Permit{net, user, source, std::min(at, now), expires};
}

}  // namespace rp::daemon
