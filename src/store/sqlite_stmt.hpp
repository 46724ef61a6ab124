// Stmt: a prepared SQLite statement that finalizes itself (used by the embedded store and by
// the shared stores' local outbox).
// Thread-safety: as the sqlite3 connection it belongs to.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/login_event.hpp"
#include "core/result.hpp"

namespace rp::store {

// A prepared statement that finalizes itself.
class Stmt final {
public:
    Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    bool ok() const { return rc_ == SQLITE_OK; }
    sqlite3_stmt* get() const { return s_; }
    void text(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
    void i64(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
    int step() { return sqlite3_step(s_); }
    void reset() { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }
    std::string col_text(int i) const {
        const auto* p = sqlite3_column_text(s_, i);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }

    // Valid until the next step() or reset() (no copy: a bulk load reads 1M rows).
    std::string_view col_view(int i) const {
        const auto* p = sqlite3_column_text(s_, i);
        return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, i)))
                 : std::string_view();
    }

private:
    sqlite3_stmt* s_ = nullptr;
    int rc_;
};

// Runs `sql` (several statements allowed); an error message starts with `context`.
inline core::Status sqlite_exec(sqlite3* db, const char* sql, const std::string& context) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(db);
        sqlite3_free(err);
        return core::make_error(context + ": " + msg);
    }
    return core::ok();
}

// Upserts source checkpoints into `checkpoints(key, value)` inside the caller's transaction
// (both stores keep them next to what the same batch granted). False: a statement failed.
inline bool sqlite_put_checkpoints(sqlite3* db, std::span<const core::Checkpoint> checkpoints) {
    if (checkpoints.empty()) return true;
    Stmt cp(db, "INSERT INTO checkpoints(key,value) VALUES(?1,?2) ON CONFLICT(key) DO UPDATE SET value=?2");
    if (!cp.ok()) return false;
    for (const auto& c : checkpoints) {
        cp.text(1, c.key);
        cp.text(2, c.value);
        if (cp.step() != SQLITE_DONE) return false;
        cp.reset();
    }
    return true;
}

// Reads every row of `checkpoints(key, value)` into `out` (both stores load them at open).
// False: the query could not be prepared (sqlite3_errmsg says why).
inline bool sqlite_get_checkpoints(sqlite3* db, std::unordered_map<std::string, std::string>& out) {
    Stmt c(db, "SELECT key, value FROM checkpoints");
    if (!c.ok()) return false;
    while (c.step() == SQLITE_ROW) out[c.col_text(0)] = c.col_text(1);
    return true;
}

}  // namespace rp::store
