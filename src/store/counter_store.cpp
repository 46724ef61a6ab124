#include "store/counter_store.hpp"

#include <sqlite3.h>

#include <algorithm>

#include "store/shared_backend.hpp"
#include "store/shared_store.hpp"
#include "store/sqlite_stmt.hpp"

namespace rp::store {
namespace {

using namespace std::chrono_literals;

// budgets.db: one row per key and window; the worker is its only writer.
class SqliteCounters final : public CounterBackend {
public:
    explicit SqliteCounters(std::string path) : path_(std::move(path)) {}
    ~SqliteCounters() override { disconnect(); }

    core::Status connect() override {
        disconnect();
        if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK) {
            auto e = core::make_error("cannot open " + path_ + ": " + sqlite3_errmsg(db_));
            disconnect();
            return e;
        }
        sqlite3_busy_timeout(db_, 200);
        return sqlite_exec(db_,
                           "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           "CREATE TABLE IF NOT EXISTS budget_counters(key TEXT NOT NULL, win INTEGER NOT NULL,"
                           " count INTEGER NOT NULL, expires_us INTEGER NOT NULL, PRIMARY KEY(key, win))",
                           path_);
    }
    void disconnect() override {
        if (db_) sqlite3_close_v2(db_);
        db_ = nullptr;
    }

    core::Result<std::vector<CounterRow>> add(std::span<const CounterRow> deltas) override {
        if (auto st = sqlite_exec(db_, "BEGIN IMMEDIATE", path_); !st) return st.error();
        std::vector<CounterRow> out;
        Stmt up(db_,
                "INSERT INTO budget_counters(key,win,count,expires_us) VALUES(?1,?2,?3,?4) ON CONFLICT(key,win) DO "
                "UPDATE SET count = count + excluded.count, expires_us = max(expires_us, excluded.expires_us) "
                "RETURNING count");
        bool ok = up.ok();
        for (const auto& d : deltas) {
            if (!ok) break;
            up.text(1, d.key);
            up.i64(2, d.window);
            up.i64(3, static_cast<std::int64_t>(d.count));
            up.i64(4, core::to_unix_micros(d.expires));
            ok = up.step() == SQLITE_ROW;
            if (ok) out.push_back({d.key, d.window, static_cast<std::uint64_t>(sqlite3_column_int64(up.get(), 0)), d.expires});
            while (ok && up.step() == SQLITE_ROW) {}
            up.reset();
        }
        if (!ok || !sqlite_exec(db_, "COMMIT", path_)) {
            auto e = core::make_error(path_ + ": " + sqlite3_errmsg(db_));
            (void)sqlite_exec(db_, "ROLLBACK", path_);
            return e;
        }
        return out;
    }

    core::Result<std::vector<CounterRow>> snapshot(core::Time now) override {
        Stmt q(db_, "SELECT key, win, count, expires_us FROM budget_counters WHERE expires_us > ?1");
        if (!q.ok()) return core::make_error(path_ + ": " + sqlite3_errmsg(db_));
        q.i64(1, core::to_unix_micros(now));
        std::vector<CounterRow> out;
        int rc;
        while ((rc = q.step()) == SQLITE_ROW)
            out.push_back({q.col_text(0), sqlite3_column_int64(q.get(), 1),
                           static_cast<std::uint64_t>(sqlite3_column_int64(q.get(), 2)),
                           core::from_unix_micros(sqlite3_column_int64(q.get(), 3))});
        if (rc != SQLITE_DONE) return core::make_error(path_ + ": " + sqlite3_errmsg(db_));
        return out;
    }

    core::Status purge(core::Time now) override {
        Stmt d(db_, "DELETE FROM budget_counters WHERE expires_us <= ?1");
        d.i64(1, core::to_unix_micros(now));
        if (!d.ok() || d.step() != SQLITE_DONE) return core::make_error(path_ + ": " + sqlite3_errmsg(db_));
        return core::ok();
    }
    std::string describe() const override { return "embedded:" + path_; }

private:
    std::string path_;
    sqlite3* db_ = nullptr;
};

// The counter methods of a SharedBackend, on a connection of their own.
class SharedCounters final : public CounterBackend {
public:
    explicit SharedCounters(std::unique_ptr<SharedBackend> b) : b_(std::move(b)) {}
    core::Status connect() override { return b_->connect_counters(); }
    void disconnect() override { b_->disconnect(); }
    core::Result<std::vector<CounterRow>> add(std::span<const CounterRow> deltas) override {
        return b_->add_counters(deltas);
    }
    core::Result<std::vector<CounterRow>> snapshot(core::Time now) override { return b_->counter_snapshot(now); }
    core::Status purge(core::Time now) override { return b_->purge_counters(now); }
    std::string describe() const override { return b_->describe(); }

private:
    std::unique_ptr<SharedBackend> b_;
};

}  // namespace

core::Result<std::unique_ptr<CounterBackend>> make_sqlite_counters(const std::string& path) {
    return std::unique_ptr<CounterBackend>(std::make_unique<SqliteCounters>(path));
}

core::Result<std::unique_ptr<CounterBackend>> open_counter_backend(const StoreOptions& opts) {
    if (opts.url.empty() || opts.url == "embedded" || opts.url.starts_with("embedded:"))
        return make_sqlite_counters(opts.state_dir + "/budgets.db");
    auto url = resolve_store_url(opts);
    if (!url) return url.error();
    return make_shared_counters(*url);
}

core::Result<std::unique_ptr<CounterBackend>> make_shared_counters(const StoreUrl& url) {
    auto b = make_backend(url);
    if (!b) return b.error();
    return std::unique_ptr<CounterBackend>(std::make_unique<SharedCounters>(std::move(*b)));
}

CounterStore::CounterStore(std::unique_ptr<CounterBackend> b, std::size_t max_pending)
    : backend_(std::move(b)), describe_(backend_->describe()), max_pending_(max_pending) {}

core::Result<std::unique_ptr<CounterStore>> CounterStore::start(std::unique_ptr<CounterBackend> backend,
                                                                std::size_t max_pending) {
    std::unique_ptr<CounterStore> s(new CounterStore(std::move(backend), max_pending));
    if (auto st = s->worker_.start([p = s.get()] { p->worker_main(); }); !st) return st.error();
    return s;
}

CounterStore::~CounterStore() { worker_.stop(); }

void CounterStore::push(std::vector<CounterRow> deltas) {
    if (deltas.empty()) return;
    {
        std::lock_guard lock(worker_.mutex());
        for (auto& d : deltas) {
            auto it = pending_.find({d.key, d.window});
            if (it != pending_.end()) {
                it->second.count += d.count;
                it->second.expires = std::max(it->second.expires, d.expires);
            } else if (pending_.size() >= max_pending_) {
                st_.dropped += d.count;
            } else {
                auto key = std::make_pair(d.key, d.window);
                pending_.emplace(std::move(key), std::move(d));
            }
        }
    }
    worker_.wake();
}

std::vector<CounterRow> CounterStore::take_totals() {
    worker_.drain_loop_fd();
    std::lock_guard lock(worker_.mutex());
    return std::exchange(totals_, {});
}

CounterStatus CounterStore::status() {
    std::lock_guard lock(worker_.mutex());
    auto s = st_;
    s.pending = pending_.size();
    return s;
}

bool CounterStore::write_pending() {
    std::vector<CounterRow> batch;
    {
        std::lock_guard lock(worker_.mutex());
        for (auto& [k, row] : pending_) batch.push_back(std::move(row));
        pending_.clear();
    }
    if (batch.empty()) return true;
    auto totals = backend_->add(batch);
    std::lock_guard lock(worker_.mutex());
    if (!totals) {
        ++st_.failures;
        st_.last_error = totals.error().message;
        for (auto& d : batch) {  // keep them for the next attempt, merged with what came meanwhile
            auto& row = pending_[{d.key, d.window}];
            if (row.key.empty()) row = d;
            else row.count += d.count;
        }
        return false;
    }
    for (const auto& d : batch) st_.pushed += d.count;
    totals_.insert(totals_.end(), totals->begin(), totals->end());
    worker_.notify_loop();
    return true;
}

void CounterStore::worker_main() {
    bool connected = false;
    auto backoff = 100ms;
    auto last_purge = std::chrono::steady_clock::time_point{};
    auto set_up = [this](bool up, const std::string& error) {
        std::lock_guard lock(worker_.mutex());
        st_.available = up;
        if (!error.empty()) ++st_.failures, st_.last_error = error;
    };
    while (!worker_.stopping()) {
        if (!connected) {
            auto st = backend_->connect();
            auto snap = st ? backend_->snapshot(core::SystemClock().now()) : core::Result<std::vector<CounterRow>>(st.error());
            if (!snap) {
                backend_->disconnect();
                set_up(false, snap.error().message);
                if (!worker_.pause(backoff)) break;
                backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10s);
                continue;
            }
            connected = true;
            backoff = 100ms;
            set_up(true, {});
            std::lock_guard lock(worker_.mutex());
            totals_.insert(totals_.end(), snap->begin(), snap->end());
            worker_.notify_loop();
        }
        if (!write_pending()) {
            backend_->disconnect();
            connected = false;
            set_up(false, {});  // write_pending counted the failure
            continue;
        }
        if (std::chrono::steady_clock::now() - last_purge > 60s) {
            (void)backend_->purge(core::SystemClock().now());
            last_purge = std::chrono::steady_clock::now();
        }
        if (!worker_.wait(1000ms)) break;
    }
    if (connected) (void)write_pending();  // what the loop counted last
    backend_->disconnect();
}

}  // namespace rp::store
