// CounterStore: where the budget counters (daemon/budget_book.hpp) are kept, next to the
// permits: with the embedded store in `state_dir/budgets.db` (SQLite), with a shared store in the
// same engine (Redis INCRBY with PEXPIREAT; PostgreSQL/MySQL upsert, store/sql_counters.hpp), so several
// SMTP hosts spend one budget.
// An interface of its own beside PermitStore (the permit interface is unchanged).
//
// The loop thread never waits for it: the daemon counts in its BudgetBook at once and hands the
// deltas to push(); a worker thread (WorkerThread) adds them to the stored totals and posts the
// totals back (take_totals(), when event_fd() is readable), which the BudgetBook merges. At
// start the worker reads a snapshot of the live rows (also posted as totals), so counts survive
// a restart. While the engine is unreachable the deltas wait (coalesced per key and window, at
// most max_pending rows; past it new rows are dropped and counted) and each host counts alone:
// docs/limits.md gives the bound on overshoot this allows.
// Thread-safety: push/take_totals/status on the loop thread; the backend on the worker only.
// Security: keys are built by the daemon from permits it granted; engine errors never carry
// credentials (the backends redact them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "store/worker_thread.hpp"

namespace rp::store {

struct StoreUrl;
struct StoreOptions;
class SharedBackend;

// One counter row: `count` of `key` in window number `window`; added (a delta) or the total.
struct CounterRow {
    std::string key;
    std::int64_t window = 0;
    std::uint64_t count = 0;
    core::Time expires{};  // the row may be deleted from then on
    bool operator==(const CounterRow&) const = default;
};

// The blocking side, used by the worker thread only.
class CounterBackend {
public:
    virtual ~CounterBackend() = default;
    virtual core::Status connect() = 0;
    virtual void disconnect() = 0;
    // Adds each delta to its row (created when missing); returns the rows' totals afterwards,
    // in the same order. Atomic per row against other daemons.
    virtual core::Result<std::vector<CounterRow>> add(std::span<const CounterRow> deltas) = 0;
    virtual core::Result<std::vector<CounterRow>> snapshot(core::Time now) = 0;  // rows with now < expires
    virtual core::Status purge(core::Time now) = 0;
    virtual std::string describe() const = 0;
};

// The counters for the store `opts` names: budgets.db under state_dir with the embedded store,
// else the shared engine's (make_shared_counters).
core::Result<std::unique_ptr<CounterBackend>> open_counter_backend(const StoreOptions& opts);
// budgets.db under the embedded store's state_dir.
core::Result<std::unique_ptr<CounterBackend>> make_sqlite_counters(const std::string& path);
// A second connection to the shared engine of `store = URL` (SharedBackend's counter methods).
core::Result<std::unique_ptr<CounterBackend>> make_shared_counters(const StoreUrl& url);

struct CounterStatus {
    bool available = false;
    std::uint64_t pushed = 0;    // deltas added to the stored totals
    std::uint64_t failures = 0;  // failed connects or writes (retried with back-off)
    std::uint64_t dropped = 0;   // deltas dropped: max_pending rows were waiting
    std::uint64_t pending = 0;   // rows waiting for the worker
    std::string last_error;
};

class CounterStore {
public:
    static core::Result<std::unique_ptr<CounterStore>> start(std::unique_ptr<CounterBackend> backend,
                                                             std::size_t max_pending = 100'000);
    ~CounterStore();  // writes what is pending (one attempt), then stops the worker
    CounterStore(const CounterStore&) = delete;
    CounterStore& operator=(const CounterStore&) = delete;

    void push(std::vector<CounterRow> deltas);
    int event_fd() const { return worker_.loop_fd(); }
    std::vector<CounterRow> take_totals();
    CounterStatus status();
    std::string describe() const { return describe_; }

private:
    explicit CounterStore(std::unique_ptr<CounterBackend> b, std::size_t max_pending);
    void worker_main();
    bool write_pending();  // worker: one attempt; false on error (connection dropped)

    std::unique_ptr<CounterBackend> backend_;
    std::string describe_;
    std::size_t max_pending_;
    // under worker_.mutex()
    std::map<std::pair<std::string, std::int64_t>, CounterRow> pending_;
    std::vector<CounterRow> totals_;
    CounterStatus st_;
    WorkerThread worker_;
};

}  // namespace rp::store
