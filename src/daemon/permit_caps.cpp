#include "daemon/permit_caps.hpp"

#include <algorithm>

namespace rp::daemon {

using config::format_prefix_cap;

std::optional<core::Cidr> cap_prefix(const PrefixCap& cap, const core::Cidr& net) {
    if (net.network().is_v4() == cap.v6 || cap.length > net.prefix()) return std::nullopt;
    return core::Cidr(net.network(), cap.length);
}

CapDecision check_caps(const CapSettings& s, const core::Permit& candidate, std::span<const HeldPermit> user_held,
                       std::span<const std::size_t> in_prefix, bool held) {
    CapDecision d;
    if (held) return d;  // an extension: caps bound addresses, not logins
    for (std::size_t i = 0; i < s.prefix_caps.size() && i < in_prefix.size(); ++i) {
        const auto prefix = cap_prefix(s.prefix_caps[i], candidate.network);
        if (!prefix || in_prefix[i] < s.prefix_caps[i].max) continue;
        d.kind = CapDecision::Kind::refuse_prefix;
        d.reason = std::to_string(in_prefix[i]) + " permits in " + prefix->to_string() +
                   " already (permits_per_prefix = " + format_prefix_cap(s.prefix_caps[i]) + ")";
        return d;
    }
    if (s.addresses_per_user == 0 || candidate.user.empty()) return d;
    std::vector<HeldPermit> others;
    for (const auto& h : user_held)
        if (!(h.network == candidate.network)) others.push_back(h);
    if (others.size() < s.addresses_per_user) return d;
    if (!s.replace_oldest) {
        d.kind = CapDecision::Kind::refuse_user;
        d.reason = "the user holds " + std::to_string(others.size()) + " addresses already (addresses_per_user = " +
                   std::to_string(s.addresses_per_user) + ")";
        return d;
    }
    std::sort(others.begin(), others.end(), [](const HeldPermit& a, const HeldPermit& b) {
        return a.granted != b.granted ? a.granted < b.granted : a.network.to_string() < b.network.to_string();
    });
    const std::size_t drop = others.size() - s.addresses_per_user + 1;
    for (std::size_t i = 0; i < drop; ++i) d.replace.push_back(others[i].network);
    d.reason = "replaces the user's oldest permit (addresses_per_user = " + std::to_string(s.addresses_per_user) +
               ", replace_oldest)";
    return d;
}

void CapIndex::add(const core::Permit& p, const CapSettings& s) {
    const auto net = p.network.to_string();
    if (!p.user.empty()) users_[p.user][net] = HeldPermit{p.network, p.granted};
    for (const auto& cap : s.prefix_caps)
        if (auto prefix = cap_prefix(cap, p.network)) prefixes_[format_prefix_cap(cap) + "@" + prefix->to_string()].insert(net);
}

void CapIndex::remove(const core::Cidr& net) {
    const auto text = net.to_string();
    for (auto& [user, held] : users_) held.erase(text);
    for (auto& [prefix, nets] : prefixes_) nets.erase(text);
}

std::vector<HeldPermit> CapIndex::user_held(const std::string& user, const Live& live) {
    std::vector<HeldPermit> out;
    auto it = users_.find(user);
    if (it == users_.end()) return out;
    auto& held = it->second;
    for (auto h = held.begin(); h != held.end();) {
        const auto p = live(h->second.network);
        if (!p || p->user != user) {
            h = held.erase(h);
            continue;
        }
        out.push_back(HeldPermit{p->network, p->granted});
        ++h;
    }
    if (held.empty()) users_.erase(it);
    return out;
}

std::vector<std::size_t> CapIndex::in_prefix(const core::Cidr& candidate, const CapSettings& s, const Live& live) {
    std::vector<std::size_t> out(s.prefix_caps.size(), 0);
    const auto own = candidate.to_string();
    for (std::size_t i = 0; i < s.prefix_caps.size(); ++i) {
        const auto prefix = cap_prefix(s.prefix_caps[i], candidate);
        if (!prefix) continue;
        auto it = prefixes_.find(format_prefix_cap(s.prefix_caps[i]) + "@" + prefix->to_string());
        if (it == prefixes_.end()) continue;
        for (auto n = it->second.begin(); n != it->second.end();) {
            auto net = core::Cidr::parse(*n);
            if (!net || !live(*net)) {
                n = it->second.erase(n);
                continue;
            }
            if (*n != own) ++out[i];
            ++n;
        }
    }
    return out;
}

bool AddressAlert::observe(const std::string& user, const std::string& net, core::Time now) {
    if (user.empty() || k_ == 0) return false;
    auto it = users_.find(user);
    if (it == users_.end()) {
        while (!lru_.empty() && users_.size() >= std::max<std::size_t>(max_users_, 1)) {
            users_.erase(lru_.back());
            lru_.pop_back();
        }
        lru_.push_front(user);
        it = users_.emplace(user, Seen{{}, std::nullopt, lru_.begin()}).first;
    } else {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    auto& seen = it->second;
    auto& recent = seen.recent;
    recent.remove_if([&](const auto& e) { return e.first == net || e.second + m_ <= now; });
    recent.emplace_front(net, now);
    while (recent.size() > k_ + 1) recent.pop_back();  // K+1 are enough to tell
    if (recent.size() <= k_) return false;
    if (seen.alerted && *seen.alerted + m_ > now) return false;  // once per period
    seen.alerted = now;
    return true;
}

std::size_t AddressAlert::distinct(const std::string& user) const {
    auto it = users_.find(user);
    return it == users_.end() ? 0 : it->second.recent.size();
}

}  // namespace rp::daemon
