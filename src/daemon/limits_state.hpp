// LimitsState: what the daemon keeps for `[limits]` budgets, caps and alerts (docs/limits.md):
// the BudgetBook and its CounterStore, the cap index, the address alert, the on_limit runner and
// the counters `status` shows. Private to src/daemon; the Daemon's limits.cpp drives it.
// Thread-safety: loop thread only (the CounterStore has its own worker).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/limits_config.hpp"
#include "daemon/budget_book.hpp"
#include "daemon/limit_command.hpp"
#include "daemon/permit_caps.hpp"
#include "store/counter_store.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"

namespace rp::daemon {

// Refusals and alerts per kind, as `status --json` shows them under "limits".
struct LimitCounters {
    std::uint64_t recipients = 0;          // RCPT requests answered with `action`
    std::uint64_t messages = 0;            // END-OF-MESSAGE requests answered with `action`
    std::uint64_t addresses_per_user = 0;  // grants refused by the per-user cap
    std::uint64_t permits_per_prefix = 0;  // grants refused by a prefix cap
    std::uint64_t replaced = 0;            // permits revoked by replace_oldest
    std::uint64_t alerts = 0;              // alert_addresses lines
};

struct LimitsState {
    config::LimitsConfig cfg;
    BudgetBook book;
    CapSettings caps;
    CapIndex index;
    bool index_dirty = true;
    std::chrono::steady_clock::time_point index_built{};
    std::optional<AddressAlert> alert;
    std::unique_ptr<LimitCommand> on_limit;
    std::vector<std::string> on_limit_argv;  // what on_limit runs (a reload keeps an equal one)
    std::unique_ptr<store::CounterStore> counters;
    util::EventLoop* loop = nullptr;  // the daemon's (spend() is const: it only arms a timer)
    util::EventLoop::TimerId flush_timer = 0;
    LimitCounters n;
    // Budget refusals: one log line per refusal up to a burst, and on_limit once per key and
    // period (a refused client retries every few minutes for days).
    util::RateLimitedLog refusal_log{20, std::chrono::seconds(60)};
    std::unordered_map<std::string, core::Time> announced;
    std::string last_cap_refusal;  // for the control socket's `allow` answer
};

}  // namespace rp::daemon
