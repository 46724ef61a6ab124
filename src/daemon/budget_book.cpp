#include "daemon/budget_book.hpp"

#include <algorithm>

namespace rp::daemon {
namespace {

__extension__ typedef unsigned __int128 u128;  // prev * period can pass 2^64

std::int64_t window_of(core::Time t, const Rate& r) {
    const auto us = core::to_unix_micros(t);
    const auto p = r.period.count();
    return us >= 0 ? us / p : -((-us + p - 1) / p);
}

core::Time window_start(std::int64_t number, const Rate& r) { return core::from_unix_micros(number * r.period.count()); }

}  // namespace

std::string_view budget_kind_name(BudgetKind k) { return k == BudgetKind::recipients ? "recipients" : "messages"; }

std::string BudgetBook::key_for(BudgetKind kind, std::string_view network) {
    std::string k(kind == BudgetKind::recipients ? "r|" : "m|");
    k += network;
    return k;
}

std::optional<Rate> BudgetBook::rate_for_key(std::string_view key) const {
    if (key.starts_with("r|")) return s_.recipients;
    if (key.starts_with("m|")) return s_.messages;
    return std::nullopt;
}

std::uint64_t BudgetBook::used(const Entry& e, const Rate& r, core::Time now) const {
    const auto n = window_of(now, r);
    const std::uint64_t cur = e.cur.number == n ? e.cur.count : 0;
    const std::uint64_t prev = e.cur.number == n - 1 ? e.cur.count : (e.prev.number == n - 1 ? e.prev.count : 0);
    if (s_.window == WindowKind::fixed || prev == 0) return cur;
    // The share of the previous window still inside the last period, rounded up (never under).
    const auto period = static_cast<u128>(r.period.count());
    const auto left = period - static_cast<u128>((now - window_start(n, r)).count());
    const auto weighted = (static_cast<u128>(prev) * left + period - 1) / period;
    return cur + static_cast<std::uint64_t>(weighted);
}

BudgetBook::Entry& BudgetBook::entry(const std::string& key, const Rate& r, core::Time now) {
    const auto n = window_of(now, r);
    auto it = keys_.find(key);
    if (it == keys_.end()) {
        make_room(now);
        lru_.push_front(key);
        it = keys_.emplace(key, Entry{{n, 0}, {n - 1, 0}, lru_.begin()}).first;
    } else {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    Entry& e = it->second;
    if (e.cur.number < n) {
        e.prev = e.cur.number == n - 1 ? e.cur : Window{n - 1, 0};
        e.cur = Window{n, 0};
    }
    return e;
}

void BudgetBook::make_room(core::Time) {
    while (!lru_.empty() && keys_.size() >= std::max<std::size_t>(s_.max_keys, 1)) {
        keys_.erase(lru_.back());
        lru_.pop_back();
    }
}

bool BudgetBook::spend(BudgetKind kind, std::string_view network, std::uint64_t n, core::Time now) {
    const auto& rate = rate_for(kind);
    if (!rate) return true;
    const auto key = key_for(kind, network);
    Entry& e = entry(key, *rate, now);
    if (used(e, *rate, now) + n > rate->limit) return false;
    e.cur.count += n;
    auto& row = unsent_[{key, e.cur.number}];
    row.count += n;
    row.expires = window_start(e.cur.number + 2, *rate);
    return true;
}

std::optional<BudgetUse> BudgetBook::use(BudgetKind kind, std::string_view network, core::Time now) const {
    const auto& rate = rate_for(kind);
    if (!rate) return std::nullopt;
    BudgetUse u{0, rate->limit};
    if (auto it = keys_.find(key_for(kind, network)); it != keys_.end()) u.used = used(it->second, *rate, now);
    return u;
}

std::vector<CounterRow> BudgetBook::take_deltas() {
    std::vector<CounterRow> out;
    out.reserve(unsent_.size());
    for (auto& [k, row] : unsent_) out.push_back(CounterRow{k.first, k.second, row.count, row.expires});
    unsent_.clear();
    return out;
}

void BudgetBook::merge(const CounterRow& total, core::Time now) {
    const auto rate = rate_for_key(total.key);
    if (!rate) return;
    const auto n = window_of(now, *rate);
    if (total.window < n - 1 || total.window > n) return;  // over, or ahead of our clock
    Entry& e = entry(total.key, *rate, now);
    Window& w = total.window == n ? e.cur : e.prev;
    std::uint64_t unsent = 0;
    if (auto it = unsent_.find({total.key, total.window}); it != unsent_.end()) unsent = it->second.count;
    // The total holds what we sent; what we have not sent yet is ours on top of it.
    w.count = std::max(w.count, total.count + unsent);
}

}  // namespace rp::daemon
