#include "store/permit_table.hpp"

#include <algorithm>

namespace rp::store {

std::vector<std::pair<PermitTable::Change, core::Permit>> PermitTable::merge_all(std::span<const core::Permit> permits,
                                                                                core::Time now, Undo& undo) {
    std::vector<std::pair<Change, core::Permit>> out;
    out.reserve(permits.size());
    for (const auto& p : permits) {
        auto before = find_exact(p.network);
        out.push_back(merge(p, now));
        if (out.back().first != Change::unchanged) undo.before.emplace_back(p.network, std::move(before));
    }
    return out;
}

void PermitTable::rollback(const Undo& undo) {
    for (auto it = undo.before.rbegin(); it != undo.before.rend(); ++it) {
        erase(it->first);
        if (it->second) merge(*it->second, core::Time::min());
    }
}

std::pair<PermitTable::Change, core::Permit> PermitTable::merge(const core::Permit& p, core::Time now) {
    auto it = by_net_.find(p.network);
    if (it != by_net_.end()) {
        const bool stale = it->second.expires <= now;
        if (!stale && p.expires <= it->second.expires) return {Change::unchanged, it->second};
        erase(p.network);
        by_net_.emplace(p.network, p);
        by_expiry_.emplace(p.expires, p.network);
        (p.network.network().is_v4() ? v4_lengths_ : v6_lengths_)[p.network.prefix()]++;
        return {stale ? Change::created : Change::extended, p};
    }
    by_net_.emplace(p.network, p);
    by_expiry_.emplace(p.expires, p.network);
    (p.network.network().is_v4() ? v4_lengths_ : v6_lengths_)[p.network.prefix()]++;
    return {Change::created, p};
}

std::optional<core::Permit> PermitTable::find(const core::Address& a, core::Time now) const {
    const auto& lengths = a.is_v4() ? v4_lengths_ : v6_lengths_;
    for (auto l = lengths.rbegin(); l != lengths.rend(); ++l) {
        auto it = by_net_.find(core::Cidr(a, l->first));
        if (it != by_net_.end() && now < it->second.expires) return it->second;
    }
    return std::nullopt;
}

std::optional<core::Permit> PermitTable::find_exact(const core::Cidr& net) const {
    auto it = by_net_.find(net);
    if (it == by_net_.end()) return std::nullopt;
    return it->second;
}

void PermitTable::erase(const core::Cidr& net) {
    auto it = by_net_.find(net);
    if (it == by_net_.end()) return;
    auto [lo, hi] = by_expiry_.equal_range(it->second.expires);
    for (auto e = lo; e != hi; ++e) {
        if (e->second == net) {
            by_expiry_.erase(e);
            break;
        }
    }
    auto& lengths = net.network().is_v4() ? v4_lengths_ : v6_lengths_;
    if (--lengths[net.prefix()] == 0) lengths.erase(net.prefix());
    by_net_.erase(it);
}

std::vector<core::Permit> PermitTable::remove_covering(const core::Address& a) {
    std::vector<core::Permit> out;
    const auto lengths = a.is_v4() ? v4_lengths_ : v6_lengths_;  // copy: erase() edits it
    for (const auto& [len, count] : lengths) {
        auto it = by_net_.find(core::Cidr(a, len));
        if (it == by_net_.end()) continue;
        out.push_back(it->second);
        erase(it->first);
    }
    return out;
}

std::vector<core::Permit> PermitTable::remove_within(const core::Cidr& net) {
    std::vector<core::Permit> out;
    for (const auto& [key, p] : by_net_)
        if (key.prefix() >= net.prefix() && net.contains(key.network())) out.push_back(p);
    for (const auto& p : out) erase(p.network);
    return out;
}

std::vector<core::Permit> PermitTable::remove_user(std::string_view user) {
    std::vector<core::Permit> out;
    for (const auto& [key, p] : by_net_)
        if (p.user == user) out.push_back(p);
    for (const auto& p : out) erase(p.network);
    return out;
}

std::vector<core::Permit> PermitTable::remove_expired(core::Time now) {
    std::vector<core::Permit> out;
    while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
        const auto net = by_expiry_.begin()->second;
        out.push_back(by_net_.at(net));
        erase(net);
    }
    return out;
}

std::vector<core::Permit> PermitTable::live(core::Time now) const {
    std::vector<core::Permit> out;
    for (const auto& [key, p] : by_net_)
        if (now < p.expires) out.push_back(p);
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.network < y.network; });
    return out;
}

std::optional<core::Time> PermitTable::next_expiry() const {
    if (by_expiry_.empty()) return std::nullopt;
    return by_expiry_.begin()->first;
}

void PermitTable::clear() {
    by_net_.clear();
    by_expiry_.clear();
    v4_lengths_.clear();
    v6_lengths_.clear();
}

}  // namespace rp::store
