#include "store/shared_store.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/embedded_store.hpp"
#include "store/sqlite_stmt.hpp"
#include "util/log.hpp"
#include "util/small_file.hpp"

namespace rp::store {
namespace {

using core::make_error;
using util::Level;
using std::chrono::milliseconds;

constexpr const char* k_local_schema = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       INTEGER NOT NULL,     -- 0 upsert, 1 remove
  network    TEXT NOT NULL,
  user       TEXT NOT NULL,
  source     TEXT NOT NULL,
  granted_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
)sql";

constexpr milliseconds k_backoff_min{100}, k_backoff_max{10000};
constexpr std::chrono::seconds k_purge_every{60};
constexpr std::size_t k_resync_min_changes = 100'000;

core::Time wall_now() { return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now()); }

}  // namespace

core::Result<std::unique_ptr<SharedStore>> SharedStore::open(const std::string& local_path,
                                                             std::unique_ptr<SharedBackend> backend, bool read_only,
                                                             std::size_t max_permits, const std::string& snapshot_path) {
    const std::string desc = backend->describe();
    if (read_only) {
        std::unique_ptr<SharedStore> s(new SharedStore(nullptr, std::move(backend), desc));
        s->read_only_ = true;
        auto st = s->backend_->connect();
        if (!st) return make_error("store " + desc + ": " + st.error().message);
        auto snap = fetch_snapshot(*s->backend_, wall_now(), 0, nullptr);
        s->backend_->disconnect();
        if (!snap) return make_error("store " + desc + ": " + snap.error().message);
        s->table_.replace_with(std::move(**snap));
        s->table_.set_limit(max_permits);
        s->up_ = true;
        return s;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(local_path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return make_error("cannot open the shared store's local outbox " + local_path + ": " + msg);
    }
    sqlite3_busy_timeout(db, 2000);
    std::unique_ptr<SharedStore> s(new SharedStore(db, std::move(backend), desc));
    if (auto st = s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !st) return st.error();
    if (auto st = s->exec(k_local_schema); !st) return st.error();
    s->limit_ = max_permits;
    s->table_.set_limit(max_permits);
    if (!snapshot_path.empty())
        s->snapshot_writer_ = std::make_unique<SnapshotWriter>(snapshot_path, snapshot_identity(desc));
    if (auto st = s->load_local(); !st) return st.error();
    s->todo_.assign(s->pending_.begin(), s->pending_.end());
    if (!s->pending_.empty())
        util::log(Level::notice, "store {}: {} queued change(s) from before the restart will be replayed", desc,
                  s->pending_.size());
    if (auto st = s->worker_.start([p = s.get()] { p->worker_main(); }); !st) return st.error();
    return s;
}

SharedStore::SharedStore(sqlite3* db, std::unique_ptr<SharedBackend> backend, std::string describe)
    : db_(db), describe_(std::move(describe)), backend_(std::move(backend)) {}

SharedStore::~SharedStore() {
    worker_.stop();  // before the members its thread uses go away
    sqlite3_close(db_);
}

core::Status SharedStore::exec(const char* sql) {
    return sqlite_exec(db_, sql, "store " + describe_ + ": local outbox");
}

core::Status SharedStore::load_local() {
    Stmt q(db_, "SELECT id, kind, network, user, source, granted_us, expires_us FROM outbox ORDER BY id");
    if (!q.ok()) return make_error("store " + describe_ + ": local outbox: " + sqlite3_errmsg(db_));
    const auto now = wall_now();
    std::vector<std::int64_t> dead;
    while (q.step() == SQLITE_ROW) {
        const std::int64_t id = sqlite3_column_int64(q.get(), 0);
        auto net = core::Cidr::parse(q.col_text(2));
        const auto kind = sqlite3_column_int64(q.get(), 1) == 0 ? Change::Kind::upsert : Change::Kind::remove;
        core::Permit p{net ? *net : core::Cidr{}, q.col_text(3), q.col_text(4),
                       core::from_unix_micros(sqlite3_column_int64(q.get(), 5)),
                       core::from_unix_micros(sqlite3_column_int64(q.get(), 6))};
        if (!net || (kind == Change::Kind::upsert && p.expires <= now)) {
            dead.push_back(id);  // expired while we were stopped: nothing to replay
            continue;
        }
        pending_.push_back({id, kind, p});
        if (kind == Change::Kind::upsert) table_.merge(p, now);
        else table_.remove_exact(p.network);
    }
    delete_acked(dead);
    if (!sqlite_get_checkpoints(db_, checkpoints_))
        return make_error("store " + describe_ + ": local outbox: " + sqlite3_errmsg(db_));
    return core::ok();
}

core::Status SharedStore::write_outbox(std::vector<Op>& ops, std::span<const Checkpoint> checkpoints) {
    if (ops.empty() && checkpoints.empty()) return core::ok();
    if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
    Stmt ins(db_, "INSERT INTO outbox(kind,network,user,source,granted_us,expires_us) VALUES(?1,?2,?3,?4,?5,?6)");
    bool failed = !ins.ok();
    for (auto& op : ops) {
        if (failed) break;
        ins.i64(1, op.kind == Change::Kind::upsert ? 0 : 1);
        ins.text(2, op.permit.network.to_string());
        ins.text(3, op.permit.user);
        ins.text(4, op.permit.source);
        ins.i64(5, core::to_unix_micros(op.permit.granted));
        ins.i64(6, core::to_unix_micros(op.permit.expires));
        failed = ins.step() != SQLITE_DONE;
        op.id = sqlite3_last_insert_rowid(db_);
        ins.reset();
    }
    failed = failed || !sqlite_put_checkpoints(db_, checkpoints);
    if (failed || !exec("COMMIT")) {
        std::string msg = sqlite3_errmsg(db_);
        (void)exec("ROLLBACK");
        return make_error("store " + describe_ + ": local outbox: write failed: " + msg);
    }
    remember_checkpoints(checkpoints);
    return core::ok();
}

void SharedStore::enqueue(const std::vector<Op>& ops) {
    if (ops.empty()) return;
    pending_.insert(pending_.end(), ops.begin(), ops.end());
    {
        std::lock_guard lk(worker_.mutex());
        todo_.insert(todo_.end(), ops.begin(), ops.end());
    }
    worker_.wake();
}

void SharedStore::delete_acked(const std::vector<std::int64_t>& ids) {
    if (ids.empty() || !db_) return;
    // A failed delete only means the op is replayed again later: every op is idempotent.
    if (!exec("BEGIN IMMEDIATE")) return;
    Stmt del(db_, "DELETE FROM outbox WHERE id = ?1");
    for (auto id : ids) {
        del.i64(1, id);
        (void)del.step();
        del.reset();
    }
    (void)exec("COMMIT");
}

core::Result<std::vector<GrantOutcome>> SharedStore::grant(std::span<const core::Permit> permits,
                                                           std::span<const Checkpoint> checkpoints, core::Time now) {
    if (read_only_) return make_error("permit store opened read-only");
    PermitTable::Undo undo;
    std::vector<GrantOutcome> out;
    std::vector<Op> ops;
    for (auto& [change, stored] : table_.merge_all(permits, now, undo)) {
        const bool changed = change == PermitTable::Change::created || change == PermitTable::Change::extended;
        if (changed && stored.expires > now)
            ops.push_back({0, Change::Kind::upsert, stored});
        out.push_back({static_cast<GrantOutcome::Change>(change), std::move(stored)});
    }
    if (auto st = write_outbox(ops, checkpoints); !st) {
        table_.rollback(undo);
        return st.error();
    }
    enqueue(ops);
    return out;
}

core::Result<std::vector<core::Permit>> SharedStore::revoke(const core::Address& a) {
    if (read_only_) return make_error("permit store opened read-only");
    auto gone = table_.remove_covering(a);
    std::vector<Op> ops;
    bool host_included = false;
    for (const auto& p : gone) {
        ops.push_back({0, Change::Kind::remove, p});
        host_included |= p.network == core::Cidr::host(a);
    }
    // The shared table may hold a host permit this cache has not seen (e.g. during an outage).
    if (!host_included) ops.push_back({0, Change::Kind::remove, core::Permit{core::Cidr::host(a), {}, {}, {}, {}}});
    if (auto st = write_outbox(ops, {}); !st) {
        for (const auto& p : gone) table_.merge(p, core::Time::min());
        return st.error();
    }
    enqueue(ops);
    return gone;
}

core::Result<std::vector<core::Permit>> SharedStore::revoke_user(const std::string& user) {
    if (read_only_) return make_error("permit store opened read-only");
    auto gone = table_.remove_user(user);
    std::vector<Op> ops;
    for (const auto& p : gone) ops.push_back({0, Change::Kind::remove, p});
    if (auto st = write_outbox(ops, {}); !st) {
        for (const auto& p : gone) table_.merge(p, core::Time::min());
        return st.error();
    }
    enqueue(ops);
    return gone;
}

core::Result<std::vector<core::Permit>> SharedStore::expire(core::Time now) {
    // The shared table drops (Redis) or purges (SQL, and the MTA query ignores) expired rows
    // itself; the cache just forgets them at their exact time.
    return table_.remove_expired(now, PermitTable::k_expire_slice);
}


std::size_t SharedStore::process_events(core::Time now) {
    if (!worker_.running()) return 0;
    worker_.drain_loop_fd();
    std::vector<News> news;
    {
        std::lock_guard lk(worker_.mutex());
        news.swap(news_);
    }
    std::size_t changed = 0;
    std::vector<std::int64_t> acked;
    for (auto& n : news) {
        switch (n.kind) {
        case News::Kind::up:
        case News::Kind::local:
            changed += table_.size();
            apply_snapshot(n, now);
            changed += table_.size();
            break;
        case News::Kind::down:
            if (up_ || last_error_ != n.error)
                util::log(Level::error, "store {}: unavailable: {}; lookups answer {}, changes are queued locally",
                          describe_, n.error, "as configured (store_outage)");
            if (up_ || last_error_.empty()) ++outages_;
            up_ = false;
            last_error_ = n.error;
            break;
        case News::Kind::changes:
            for (const auto& c : n.changes) {
                ++remote_changes_;
                if (c.kind == Change::Kind::upsert) {
                    if (c.permit.expires <= now) continue;
                    const auto m = table_.merge(c.permit, now).first;
                    if (m == PermitTable::Change::created || m == PermitTable::Change::extended) ++changed;
                } else {
                    // Told to the daemon even when the cache keeps a newer grant: a session
                    // refresh that crossed the revoke must not outlive it.
                    note_removed(c.permit);
                    auto cached = table_.find_exact(c.permit.network);
                    if (cached && cached->granted <= c.permit.granted) {
                        table_.remove_exact(c.permit.network);
                        ++changed;
                    }
                }
            }
            break;
        case News::Kind::acked:
            acked.insert(acked.end(), n.acked.begin(), n.acked.end());
            break;
        }
    }
    if (!acked.empty()) {
        pushed_ += acked.size();
        std::sort(acked.begin(), acked.end());
        std::erase_if(pending_, [&](const Op& op) { return std::binary_search(acked.begin(), acked.end(), op.id); });
        delete_acked(acked);
    }
    return changed;
}

// Coalesced by network, so repeated notices cost nothing; past the bound nothing is dropped
// silently: the overflow makes the daemon re-check every session.
void SharedStore::note_removed(const core::Permit& p) {
    if (removed_.size() < k_max_removed || removed_.contains(p.network)) removed_.insert_or_assign(p.network, p);
    else removed_overflow_ = true;
}

std::vector<core::Permit> SharedStore::take_removed() {
    std::vector<core::Permit> out;
    out.reserve(removed_.size());
    for (auto& [net, p] : removed_) out.push_back(std::move(p));
    removed_.clear();
    return out;
}

void SharedStore::apply_snapshot(News& n, core::Time now) {
    // The snapshot replaces the cache; our own unacknowledged ops are laid over it (the worker
    // pushes them right after the snapshot). The table was built by the worker: O(1) here.
    const std::size_t live = n.snapshot->size();
    table_.replace_with(std::move(*n.snapshot));
    for (const auto& op : pending_) {
        if (op.kind == Change::Kind::upsert) table_.merge(op.permit, now);
        else table_.remove_exact(op.permit.network);
    }
    // The local copy while the engine is down at start; a refresh of the copy while connected.
    if (n.kind == News::Kind::local || n.resync) return;
    ++connects_;
    if (!up_ || !last_error_.empty())
        util::log(Level::notice, "store {}: connected; {} live permit(s), {} queued change(s) to replay", describe_,
                  live, pending_.size());
    up_ = true;
    last_error_.clear();
}

StoreStatus SharedStore::status() const {
    StoreStatus s;
    s.shared = true;
    s.available = up_;
    s.queued = pending_.size();
    s.pushed = pushed_;
    s.remote_changes = remote_changes_;
    s.connects = connects_;
    s.outages = outages_;
    s.last_error = last_error_;
    s.refused = table_.refused();
    return s;
}

// ---- worker thread ----

void SharedStore::post(News n) {
    {
        std::lock_guard lk(worker_.mutex());
        news_.push_back(std::move(n));
    }
    worker_.notify_loop();
}

// Connect (with back-off) and read the snapshot, push the outbox, purge now and then, wait for
// changes or grants: each turn of the loop runs these steps; any error drops the connection.
void SharedStore::worker_main() {
    milliseconds backoff = k_backoff_min;
    bool connected = false;
    auto last_purge = std::chrono::steady_clock::now() - k_purge_every;
    auto lost = [&](const std::string& why) {
        backend_->disconnect();
        connected = false;
        post({News::Kind::down, {}, {}, {}, why, false});
    };
    while (!worker_.stopping()) {
        if (!connected) {
            if (auto st = worker_connect(); !st) {
                lost(st.error().message);
                if (!local_copy_done_) worker_load_local();
                // Back off; grants meanwhile only wake us to check for stop.
                if (!worker_.pause(backoff)) break;
                backoff = std::min(backoff * 2, k_backoff_max);
                continue;
            }
            connected = true;
            backoff = k_backoff_min;
        }
        if (auto st = worker_push(); !st) {
            lost(st.error().message);
            continue;
        }
        if (std::chrono::steady_clock::now() - last_purge >= k_purge_every) {
            last_purge = std::chrono::steady_clock::now();
            if (auto st = backend_->purge(wall_now()); !st) {
                lost(st.error().message);
                continue;
            }
        }
        const int fd = backend_->change_fd();
        const milliseconds wait = worker_busy() ? milliseconds(0)
                                  : fd >= 0     ? milliseconds(1000)
                                                : backend_->poll_interval();
        if (!worker_.wait(wait, fd)) break;
        if (auto st = worker_read_changes(); !st) lost(st.error().message);
    }
    backend_->disconnect();
}

core::Status SharedStore::worker_connect() {
    if (auto st = backend_->connect(); !st) return st;
    auto st = worker_load(false);
    if (st) local_copy_done_ = true;  // the cache now holds the engine's table: an outage keeps serving it
    return st;
}

core::Status SharedStore::worker_push() {
    // Push the queued ops, oldest first; an op is acknowledged only once the shared table has it.
    std::vector<Op> batch;
    {
        std::lock_guard lk(worker_.mutex());
        batch.assign(todo_.begin(), todo_.end());
    }
    std::vector<std::int64_t> done;
    core::Status failure = core::ok();
    const auto now = wall_now();
    for (const auto& op : batch) {
        if (op.kind == Change::Kind::upsert) {
            if (op.permit.expires > now) failure = backend_->upsert(op.permit);  // expired: nothing to replay
        } else {
            failure = backend_->remove(op.permit.network);
        }
        if (!failure) break;
        done.push_back(op.id);
    }
    if (!done.empty()) {
        {
            std::lock_guard lk(worker_.mutex());
            todo_.erase(todo_.begin(), todo_.begin() + static_cast<std::ptrdiff_t>(done.size()));
        }
        append_acknowledged(std::span(batch).first(done.size()));  // before the outbox forgets them
        post({News::Kind::acked, {}, {}, std::move(done), {}, false});
    }
    return failure;
}

bool SharedStore::worker_busy() {
    std::lock_guard lk(worker_.mutex());
    return !todo_.empty();
}

core::Status SharedStore::worker_read_changes() {
    auto changes = backend_->read_changes();
    if (!changes) return changes.error();
    if (changes->empty()) return core::ok();
    if (snapshot_writer_)
        if (auto w = snapshot_writer_->append(*changes); !w)
            util::log(Level::warning, "store {}: local snapshot dropped until the next one: {}", describe_,
                      w.error().message);
    post({News::Kind::changes, {}, std::move(*changes), {}, {}, false});
    // The local copy grows by every change: once the changes outnumber the permits, read a
    // fresh snapshot (which rewrites it).
    if (snapshot_writer_ && snapshot_writer_->records_appended() >
                                std::max(snapshot_writer_->records_committed(), k_resync_min_changes))
        return worker_load(true);
    return core::ok();
}

void SharedStore::append_acknowledged(std::span<const Op> ops) {
    if (!snapshot_writer_) return;
    std::vector<Change> removes;
    for (const auto& op : ops)
        if (op.kind == Change::Kind::remove)  // the engine deleted whatever row it held: any grant time
            removes.push_back({Change::Kind::remove, core::Permit{op.permit.network, op.permit.user, op.permit.source,
                                                                  core::Time::max(), op.permit.expires}});
    if (auto w = snapshot_writer_->append(removes); !w)
        util::log(Level::warning, "store {}: local snapshot dropped until the next one: {}", describe_,
                  w.error().message);
}

void SharedStore::worker_load_local() {
    local_copy_done_ = true;
    if (!snapshot_writer_) return;
    auto table = std::make_unique<PermitTable>();
    table->set_limit(limit_);
    auto local = load_snapshot_file(snapshot_writer_->path(), snapshot_writer_->identity(), *table, wall_now());
    if (!local) {
        util::log(Level::warning, "store {}: local snapshot ignored: {}", describe_, local.error().message);
        return;
    }
    if (local->written_us == 0) return;  // none yet
    util::log(Level::notice, "store {}: {} live permit(s) from the local snapshot of {} until the engine answers",
              describe_, local->live, core::format_time(core::from_unix_micros(local->written_us)));
    post({News::Kind::local, std::move(table), {}, {}, {}, false});
}

core::Status SharedStore::worker_load(bool resync) {
    auto table = fetch_snapshot(*backend_, wall_now(), limit_, snapshot_writer_.get());
    if (!table) return table.error();
    News n{News::Kind::up, std::move(*table), {}, {}, {}, resync};
    post(std::move(n));
    // The local copy's fsync after the hand-over: serving does not wait for the disk.
    if (snapshot_writer_ && snapshot_writer_->writing())
        if (auto w = snapshot_writer_->commit(); !w)
            util::log(Level::warning, "store {}: local snapshot not written: {}", describe_, w.error().message);
    return core::ok();
}

// ---- factory ----

core::Result<StoreUrl> resolve_store_url(const StoreOptions& opts) {
    auto url = parse_store_url(opts.url);
    if (!url) return make_error("store: " + url.error().message);
    if (!opts.password_file.empty()) {
        auto text = util::read_existing_small_file(opts.password_file, 64u << 10);
        if (!text) return make_error("store_password_file " + text.error().message);
        std::string pw = text->substr(0, text->find('\n'));
        while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) pw.pop_back();
        url->password = pw;
    }
    return url;
}

core::Result<std::unique_ptr<PermitStore>> open_store(const StoreOptions& opts) {
    if (opts.url.empty() || opts.url == "embedded" || opts.url.starts_with("embedded:")) {
        EmbeddedOptions eo;
        eo.max_permits = opts.max_permits;
        auto s = EmbeddedStore::open(opts.state_dir + "/permits.db", opts.read_only, std::move(eo));
        if (!s) return s.error();
        return std::unique_ptr<PermitStore>(std::move(*s));
    }
    auto url = resolve_store_url(opts);
    if (!url) return url.error();
    auto backend = make_backend(*url);
    if (!backend) return backend.error();
    auto s = SharedStore::open(opts.state_dir + "/shared-outbox.db", std::move(*backend), opts.read_only,
                               opts.max_permits, opts.state_dir + "/shared-snapshot");
    if (!s) return s.error();
    return std::unique_ptr<PermitStore>(std::move(*s));
}

}  // namespace rp::store
