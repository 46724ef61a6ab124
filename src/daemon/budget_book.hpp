// BudgetBook: how many recipients and messages each permitted address may relay per period
// (`[limits] recipients = "N/period"`, `messages = "N/period"`; docs/limits.md).
//
// Pure: no I/O, no clock of its own (every call takes `now`), so tests drive it with ManualClock.
// The Postfix policy service asks it through the daemon's PermitOracle: a RCPT request from a
// permit's address spends one recipient, an END-OF-MESSAGE request one message; a request that
// would go past the budget is refused and NOT counted (the MTA defers it, nothing was relayed).
//
// Windows. Time is cut into fixed windows of one period, numbered floor(now / period) since the
// epoch, so every host (and a shared store) names the same window the same way. `fixed` counts
// the current window only (a burst of 2N across a window boundary is possible); `sliding` (the
// default) weighs the previous window by the part of it still inside the last period:
//     used = current + previous * (period - elapsed_in_current) / period
// which is the usual sliding-window counter: within 1/period of exact, two numbers per key.
//
// State per key (budget kind + the permit's network, e.g. "r|192.0.2.7"): the current and the
// previous window's counts, plus what was counted here and not yet handed to the store
// (`unsent`, per key and window, so nothing is lost when a window ends). take_deltas()
// hands the unsent counts out (the daemon queues them for the counter store, off the loop
// thread); merge() takes a total back from the store and keeps the larger of it and ours, so
// counts only ever grow within a window and another host's spending shows up here.
// Memory is bounded: past max_keys, keys whose windows are over are dropped first; if every key
// is live the least recently spent is dropped (its address then starts from what the store says).
// Thread-safety: not thread-safe; the daemon uses it on the loop thread only.
// Security: keys come from permits (addresses the daemon itself granted), never from requests.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "config/limits_config.hpp"
#include "core/time.hpp"
#include "store/counter_store.hpp"

namespace rp::daemon {

using config::Rate;

enum class BudgetKind : std::uint8_t { recipients, messages };
std::string_view budget_kind_name(BudgetKind k);  // "recipients", "messages"
enum class WindowKind : std::uint8_t { fixed, sliding };

struct BudgetSettings {
    std::optional<Rate> recipients;
    std::optional<Rate> messages;
    WindowKind window = WindowKind::sliding;
    std::size_t max_keys = 200'000;
};

// One count for the counter store (store/counter_store.hpp): added (take_deltas) or the total
// (merge) of a key's window; `expires` = the end of the window after it (the sliding rule still
// reads a window during the next one).
using store::CounterRow;

// What `relaypermit list` shows: spent so far in the period and the budget.
struct BudgetUse {
    std::uint64_t used = 0;
    std::uint64_t limit = 0;
};

class BudgetBook {
public:
    explicit BudgetBook(BudgetSettings s = {}) : s_(std::move(s)) {}

    bool enabled() const { return s_.recipients || s_.messages; }
    const BudgetSettings& settings() const { return s_; }
    // Keeps the counts (a reload that changes a period starts new windows for it).
    void set_settings(BudgetSettings s) { s_ = std::move(s); }

    // Spends `n` of `network`'s `kind` budget at `now` when that fits; false (nothing counted)
    // when it would go past the budget. Always true when that kind has no budget.
    bool spend(BudgetKind kind, std::string_view network, std::uint64_t n, core::Time now);
    // The use at `now`, or nothing when that kind has no budget.
    std::optional<BudgetUse> use(BudgetKind kind, std::string_view network, core::Time now) const;

    // Counts made here since the last call, for the counter store.
    std::vector<CounterRow> take_deltas();
    // A total from the counter store (its snapshot at start, or its answer to our deltas).
    void merge(const CounterRow& total, core::Time now);

    std::size_t size() const { return keys_.size(); }
    static std::string key_for(BudgetKind kind, std::string_view network);

private:
    struct Window {
        std::int64_t number = 0;
        std::uint64_t count = 0;  // confirmed by the store or counted here
    };
    struct Entry {
        Window cur, prev;
        std::list<std::string>::iterator lru;
    };
    struct Unsent {
        std::uint64_t count = 0;
        core::Time expires{};
    };
    const std::optional<Rate>& rate_for(BudgetKind k) const {
        return k == BudgetKind::recipients ? s_.recipients : s_.messages;
    }
    std::optional<Rate> rate_for_key(std::string_view key) const;
    std::uint64_t used(const Entry& e, const Rate& r, core::Time now) const;
    // The entry for `key`, its windows moved on to `now`'s (created when missing).
    Entry& entry(const std::string& key, const Rate& r, core::Time now);
    void make_room(core::Time now);

    BudgetSettings s_;
    std::unordered_map<std::string, Entry> keys_;
    std::list<std::string> lru_;  // front: most recently spent
    std::map<std::pair<std::string, std::int64_t>, Unsent> unsent_;  // (key, window): not yet handed out
};

}  // namespace rp::daemon
