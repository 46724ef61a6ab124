#include "store/embedded_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "store/sqlite_stmt.hpp"
#include "util/log.hpp"

namespace rp::store {
namespace {

using core::make_error;

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS permits (
  network    TEXT PRIMARY KEY,     -- canonical address, or address/len for an IPv6 prefix
  user       TEXT NOT NULL,
  source     TEXT NOT NULL,
  granted_us INTEGER NOT NULL,     -- unix time in microseconds
  expires_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
)sql";

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

constexpr milliseconds k_backoff_min{100}, k_backoff_max{5000};
constexpr int k_writer_busy_timeout_ms = 200;    // the writer's own wait before a back-off
constexpr std::size_t k_max_ops_per_txn = 50'000;  // whole batches; keeps each commit short
constexpr std::chrono::seconds k_purge_every{10};  // expired rows are deleted in bulk, this often

}  // namespace

core::Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::open(const std::string& path, bool read_only,
                                                                   EmbeddedOptions opts) {
    sqlite3* db = nullptr;
    const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return make_error("cannot open permit store " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db, 2000);  // at open only; the writer uses its own back-off
    std::unique_ptr<EmbeddedStore> s(new EmbeddedStore(db, path, read_only, std::move(opts)));
    if (!read_only) {
        if (auto st = s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !st) return st.error();
        if (auto st = s->exec(k_schema); !st) return st.error();
    }
    if (auto st = s->load(); !st) return st.error();
    s->table_.set_limit(s->opts_.max_permits);  // after load: stored permits are never dropped
    if (read_only) return s;
    sqlite3_busy_timeout(db, k_writer_busy_timeout_ms);
    if (auto st = s->writer_.start([p = s.get()] { p->writer_main(); }); !st) return st.error();
    return s;
}

EmbeddedStore::EmbeddedStore(sqlite3* db, std::string path, bool read_only, EmbeddedOptions opts)
    : db_(db), path_(std::move(path)), read_only_(read_only), opts_(std::move(opts)) {}

EmbeddedStore::~EmbeddedStore() {
    writer_.stop();  // writes what is queued first (writer_main)
    sqlite3_close(db_);
}

core::Status EmbeddedStore::exec(const char* sql) {
    return sqlite_exec(db_, sql, "permit store " + path_);
}

core::Status EmbeddedStore::load() {
    // Reserve first (the records, indexes and names of the table grow once, not ~20 times).
    Stmt n(db_, "SELECT count(*) FROM permits");
    if (!n.ok() || n.step() != SQLITE_ROW) return make_error("permit store " + path_ + ": " + sqlite3_errmsg(db_));
    table_.begin_load(static_cast<std::size_t>(std::max<sqlite3_int64>(sqlite3_column_int64(n.get(), 0), 0)));
    Stmt q(db_, "SELECT network, user, source, granted_us, expires_us FROM permits");
    if (!q.ok()) {
        table_.end_load();
        return make_error("permit store " + path_ + ": " + sqlite3_errmsg(db_));
    }
    while (q.step() == SQLITE_ROW) {
        auto net = core::Cidr::parse(q.col_view(0));
        if (!net) continue;  // a row an admin edited by hand; ignore rather than refuse to start
        table_.load(*net, q.col_view(1), q.col_view(2), sqlite3_column_int64(q.get(), 3),
                    sqlite3_column_int64(q.get(), 4));
    }
    table_.end_load();
    if (!sqlite_get_checkpoints(db_, checkpoints_))
        return make_error("permit store " + path_ + ": " + sqlite3_errmsg(db_));
    return core::ok();
}

// ---- loop thread ----

void EmbeddedStore::enqueue(Batch b) {
    if (b.ops.empty() && b.checkpoints.empty()) return;
    {
        std::lock_guard lk(writer_.mutex());
        queued_ops_ += b.ops.size();
        queue_.push_back(std::move(b));
    }
    writer_.wake();
}

core::Result<std::vector<GrantOutcome>> EmbeddedStore::grant(std::span<const core::Permit> permits,
                                                             std::span<const Checkpoint> checkpoints,
                                                             core::Time now) {
    if (read_only_) return make_error("permit store opened read-only");
    if (!permits.empty()) {
        std::lock_guard lk(writer_.mutex());
        if (queued_ops_ > 0 && queued_ops_ + permits.size() > opts_.max_queued) {
            // Refuse the whole batch (memory unchanged): a file source offers it again later.
            ++queue_full_;
            static util::RateLimitedLog full_log;
            full_log.log(util::Level::error, "permit store {}: {} changes wait for the disk ({}); refusing new ones "
                         "until they are written", path_, queued_ops_, last_error_.empty() ? "writing" : last_error_);
            return make_error("permit store " + path_ + ": write queue full (" + std::to_string(queued_ops_) +
                              " changes wait for the disk" + (last_error_.empty() ? "" : ": " + last_error_) + ")");
        }
    }
    PermitTable::Undo undo;  // not needed: memory is never rolled back, the write is retried
    std::vector<GrantOutcome> out;
    Batch batch;
    for (auto& [change, stored] : table_.merge_all(permits, now, undo)) {
        if (change == PermitTable::Change::created || change == PermitTable::Change::extended)
            batch.ops.push_back({false, stored});
        out.push_back({static_cast<GrantOutcome::Change>(change), std::move(stored)});
    }
    batch.checkpoints.assign(checkpoints.begin(), checkpoints.end());
    remember_checkpoints(checkpoints);
    enqueue(std::move(batch));
    return out;
}

void EmbeddedStore::queue_removals(const std::vector<core::Permit>& gone) {
    Batch b;
    for (const auto& p : gone) b.ops.push_back({true, p});
    enqueue(std::move(b));
}

core::Result<std::vector<core::Permit>> EmbeddedStore::revoke(const core::Address& a) {
    if (read_only_) return make_error("permit store opened read-only");
    auto gone = table_.remove_covering(a);
    queue_removals(gone);
    return gone;
}

core::Result<std::vector<core::Permit>> EmbeddedStore::revoke_user(const std::string& user) {
    if (read_only_) return make_error("permit store opened read-only");
    auto gone = table_.remove_user(user);
    queue_removals(gone);
    return gone;
}

core::Result<std::vector<core::Permit>> EmbeddedStore::expire(core::Time now) {
    auto gone = table_.remove_expired(now, PermitTable::k_expire_slice);
    // On disk, expired rows are deleted in bulk by the writer (one DELETE ... WHERE expires_us
    // <= now every k_purge_every): they are never served meanwhile, and the next start skips them.
    if (!gone.empty() && !read_only_) {
        std::lock_guard lk(writer_.mutex());
        purge_before_ = std::max(purge_before_, now);
    }
    return gone;
}

std::size_t EmbeddedStore::process_events(core::Time) {
    writer_.drain_loop_fd();
    return 0;
}

StoreStatus EmbeddedStore::status() const {
    StoreStatus s;
    std::lock_guard lk(writer_.mutex());
    s.queued = queued_ops_;
    s.written = written_;
    s.write_failures = write_failures_;
    s.queue_full = queue_full_;
    s.last_error = last_error_;
    s.refused = table_.refused();
    return s;
}

// ---- writer thread ----

bool EmbeddedStore::write_ops(const std::vector<Batch>& batches) {
    Stmt up(db_,
            "INSERT INTO permits(network,user,source,granted_us,expires_us) VALUES(?1,?2,?3,?4,?5) "
            "ON CONFLICT(network) DO UPDATE SET user=?2, source=?3, granted_us=?4, expires_us=?5");
    Stmt del(db_, "DELETE FROM permits WHERE network = ?1");
    if (!up.ok() || !del.ok()) return false;
    for (const auto& b : batches) {
        for (const auto& op : b.ops) {
            auto& st = op.remove ? del : up;
            st.text(1, op.permit.network.to_string());
            if (!op.remove) {
                up.text(2, op.permit.user);
                up.text(3, op.permit.source);
                up.i64(4, core::to_unix_micros(op.permit.granted));
                up.i64(5, core::to_unix_micros(op.permit.expires));
            }
            const bool ok = st.step() == SQLITE_DONE;
            st.reset();
            if (!ok) return false;
        }
        // The batch's checkpoints after its permits, in the same transaction.
        if (!sqlite_put_checkpoints(db_, b.checkpoints)) return false;
    }
    return true;
}

EmbeddedStore::Commit EmbeddedStore::commit(const std::vector<Batch>& batches, std::optional<core::Time> purge,
                                            std::string& error) {
    if (auto st = exec("BEGIN IMMEDIATE"); !st) {
        error = st.error().message;
        return Commit::failed;
    }
    bool ok = write_ops(batches);
    if (ok && purge) {
        Stmt p(db_, "DELETE FROM permits WHERE expires_us <= ?1");
        p.i64(1, core::to_unix_micros(*purge));
        ok = p.ok() && p.step() == SQLITE_DONE;
    }
    if (ok && opts_.before_commit && !opts_.before_commit()) {
        (void)exec("ROLLBACK");
        return Commit::crashed;
    }
    if (!ok || !exec("COMMIT")) {
        error = "permit store " + path_ + ": write failed: " + sqlite3_errmsg(db_);
        (void)exec("ROLLBACK");
        return Commit::failed;
    }
    return Commit::ok;
}

bool EmbeddedStore::take_work(std::vector<Batch>& inflight, std::size_t& inflight_ops, core::Time& want_purge) {
    std::lock_guard lk(writer_.mutex());
    // Whole batches only (a checkpoint stays with its permits), up to k_max_ops_per_txn changes.
    while (!queue_.empty() && (inflight.empty() || inflight_ops + queue_.front().ops.size() <= k_max_ops_per_txn)) {
        inflight_ops += queue_.front().ops.size();
        inflight.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    want_purge = purge_before_;
    return writer_.stopping_locked();
}

void EmbeddedStore::writer_main() {
    std::vector<Batch> inflight;  // taken from the queue, written together, retried until committed
    std::size_t inflight_ops = 0;
    core::Time purged{};
    auto last_purge = Steady::now() - k_purge_every;
    milliseconds backoff = k_backoff_min;
    std::optional<Steady::time_point> give_up;  // closing while writes fail
    util::RateLimitedLog fail_log;
    for (;;) {
        core::Time want_purge;
        const bool stopping = take_work(inflight, inflight_ops, want_purge);
        const bool purge_wanted = want_purge > purged;
        const bool purge_due = purge_wanted && (stopping || Steady::now() - last_purge >= k_purge_every);
        if (inflight.empty() && !purge_due) {
            if (stopping) break;
            const auto wait = purge_wanted ? std::chrono::ceil<milliseconds>(last_purge + k_purge_every - Steady::now())
                                           : milliseconds(60'000);
            writer_.wait(std::max(wait, milliseconds(1)));
            continue;
        }
        std::string error;
        const auto r = commit(inflight, purge_due ? std::optional(want_purge) : std::nullopt, error);
        if (r == Commit::crashed) break;
        {
            std::lock_guard lk(writer_.mutex());
            if (r == Commit::ok) {
                queued_ops_ -= inflight_ops;
                written_ += inflight_ops;
                last_error_.clear();
            } else {
                ++write_failures_;
                last_error_ = error;
            }
        }
        writer_.notify_loop();
        if (r == Commit::ok) {
            inflight.clear();
            inflight_ops = 0;
            if (purge_due) {
                purged = want_purge;
                last_purge = Steady::now();
            }
            backoff = k_backoff_min;
            continue;
        }
        fail_log.log(util::Level::error, "{}; {} change(s) wait, retrying in {} ms (lookups are not affected)", error,
                     inflight_ops, backoff.count());
        if (stopping && !give_up) give_up = Steady::now() + opts_.flush_timeout;
        if (stopping && Steady::now() >= *give_up) {
            util::log(util::Level::error, "permit store {}: closing with {} change(s) not written: {}", path_,
                      queued_ops_, error);  // the loop thread waits in stop(): nothing changes it
            break;
        }
        if (stopping) std::this_thread::sleep_for(std::min(backoff, opts_.flush_timeout));  // no loop to keep
        else (void)writer_.pause(backoff);
        backoff = std::min(backoff * 2, k_backoff_max);
    }
}

}  // namespace rp::store
