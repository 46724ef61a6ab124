#include "store/embedded_store.hpp"

#include <sqlite3.h>

#include <cstring>

#include "store/sqlite_stmt.hpp"

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

}  // namespace

core::Result<std::unique_ptr<EmbeddedStore>> EmbeddedStore::open(const std::string& path, bool read_only) {
    sqlite3* db = nullptr;
    const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return make_error("cannot open permit store " + path + ": " + msg);
    }
    sqlite3_busy_timeout(db, 2000);
    std::unique_ptr<EmbeddedStore> s(new EmbeddedStore(db, path, read_only));
    if (!read_only) {
        if (auto st = s->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !st) return st.error();
        if (auto st = s->exec(k_schema); !st) return st.error();
    }
    if (auto st = s->load(); !st) return st.error();
    return s;
}

EmbeddedStore::EmbeddedStore(sqlite3* db, std::string path, bool read_only)
    : db_(db), path_(std::move(path)), read_only_(read_only) {}

EmbeddedStore::~EmbeddedStore() { sqlite3_close(db_); }

core::Status EmbeddedStore::exec(const char* sql) {
    return sqlite_exec(db_, sql, "permit store " + path_);
}

core::Status EmbeddedStore::load() {
    Stmt q(db_, "SELECT network, user, source, granted_us, expires_us FROM permits");
    if (!q.ok()) return make_error("permit store " + path_ + ": " + sqlite3_errmsg(db_));
    const core::Time epoch{};
    while (q.step() == SQLITE_ROW) {
        auto net = core::Cidr::parse(q.col_text(0));
        if (!net) continue;  // a row an admin edited by hand; ignore rather than refuse to start
        core::Permit p{*net, q.col_text(1), q.col_text(2), core::from_unix_micros(sqlite3_column_int64(q.get(), 3)),
                       core::from_unix_micros(sqlite3_column_int64(q.get(), 4))};
        table_.merge(p, epoch);
    }
    Stmt c(db_, "SELECT key, value FROM checkpoints");
    if (!c.ok()) return make_error("permit store " + path_ + ": " + sqlite3_errmsg(db_));
    while (c.step() == SQLITE_ROW) checkpoints_[c.col_text(0)] = c.col_text(1);
    return core::ok();
}

core::Result<std::vector<GrantOutcome>> EmbeddedStore::grant(std::span<const core::Permit> permits,
                                                             std::span<const Checkpoint> checkpoints,
                                                             core::Time now) {
    if (read_only_) return make_error("permit store opened read-only");
    // Merge into memory first, remembering what each network held so a failed commit can be undone.
    PermitTable::Undo undo;
    std::vector<GrantOutcome> out;
    for (auto& [change, stored] : table_.merge_all(permits, now, undo))
        out.push_back({static_cast<GrantOutcome::Change>(change), std::move(stored)});
    auto rollback_memory = [&] { table_.rollback(undo); };
    if (undo.empty() && checkpoints.empty()) return out;
    if (auto st = exec("BEGIN IMMEDIATE"); !st) {
        rollback_memory();
        return st.error();
    }
    Stmt up(db_,
            "INSERT INTO permits(network,user,source,granted_us,expires_us) VALUES(?1,?2,?3,?4,?5) "
            "ON CONFLICT(network) DO UPDATE SET user=?2, source=?3, granted_us=?4, expires_us=?5");
    bool failed = !up.ok();
    for (const auto& o : out) {
        if (failed || o.change == GrantOutcome::Change::unchanged) continue;
        up.text(1, o.permit.network.to_string());
        up.text(2, o.permit.user);
        up.text(3, o.permit.source);
        up.i64(4, core::to_unix_micros(o.permit.granted));
        up.i64(5, core::to_unix_micros(o.permit.expires));
        failed = up.step() != SQLITE_DONE;
        up.reset();
    }
    failed = failed || !sqlite_put_checkpoints(db_, checkpoints);
    if (failed || !exec("COMMIT")) {
        std::string msg = sqlite3_errmsg(db_);
        (void)exec("ROLLBACK");
        rollback_memory();
        return make_error("permit store " + path_ + ": write failed: " + msg);
    }
    for (const auto& c : checkpoints) checkpoints_[c.key] = c.value;
    return out;
}

std::optional<core::Permit> EmbeddedStore::find(const core::Address& a, core::Time now) const {
    return table_.find(a, now);
}

core::Status EmbeddedStore::delete_permits(const std::vector<core::Permit>& gone) {
    if (gone.empty()) return core::ok();
    if (read_only_) return make_error("permit store opened read-only");
    if (auto st = exec("BEGIN IMMEDIATE"); !st) return st;
    Stmt del(db_, "DELETE FROM permits WHERE network = ?1");
    bool failed = !del.ok();
    for (const auto& p : gone) {
        if (failed) break;
        del.text(1, p.network.to_string());
        failed = del.step() != SQLITE_DONE;
        del.reset();
    }
    if (failed || !exec("COMMIT")) {
        std::string msg = sqlite3_errmsg(db_);
        (void)exec("ROLLBACK");
        return make_error("permit store " + path_ + ": delete failed: " + msg);
    }
    return core::ok();
}

core::Result<std::vector<core::Permit>> EmbeddedStore::revoke(const core::Address& a) {
    auto gone = table_.remove_covering(a);
    if (auto st = delete_permits(gone); !st) {
        for (const auto& p : gone) table_.merge(p, core::Time::min());
        return st.error();
    }
    return gone;
}

core::Result<std::vector<core::Permit>> EmbeddedStore::revoke_user(const std::string& user) {
    auto gone = table_.remove_user(user);
    if (auto st = delete_permits(gone); !st) {
        for (const auto& p : gone) table_.merge(p, core::Time::min());
        return st.error();
    }
    return gone;
}

core::Result<std::vector<core::Permit>> EmbeddedStore::expire(core::Time now) {
    auto gone = table_.remove_expired(now);
    // If the delete fails the rows stay on disk; they are expired, so they are never served and a
    // later purge (or the next start) removes them. Memory stays purged.
    if (auto st = delete_permits(gone); !st) return st.error();
    return gone;
}

std::vector<core::Permit> EmbeddedStore::list(core::Time now) const { return table_.live(now); }

std::optional<core::Time> EmbeddedStore::next_expiry() const { return table_.next_expiry(); }

std::optional<std::string> EmbeddedStore::find_checkpoint(const std::string& key) const {
    auto it = checkpoints_.find(key);
    if (it == checkpoints_.end()) return std::nullopt;
    return it->second;
}

}  // namespace rp::store
