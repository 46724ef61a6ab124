// SqlBackend: what PgsqlBackend and MysqlBackend share above their client libraries: a session
// opened the same way for the permits and for the budget counters (a connection, the settings
// every statement relies on, the feature's schema created when missing), a read-only connection
// for `relaypermit import sql`, and error messages that name the URL without its password.
// Each engine supplies the connection, the statements and its way of locking schema creation.
// Not for Redis, which has no schema and no session settings.
// Thread-safety: as SharedBackend: one thread uses a backend.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "store/shared_backend.hpp"

namespace rp::store {

class SqlBackend : public SharedBackend {
public:
    std::string describe() const override { return url_.redacted(); }

protected:
    // The tables of one feature (the permits, the budget counters): `present` selects one true
    // value when every object exists; `ddl` creates them, each statement idempotent.
    struct Schema {
        const char* present;
        std::span<const char* const> ddl;
    };

    explicit SqlBackend(StoreUrl url) : url_(std::move(url)) {}

    // Engine hooks.
    // A plain connection with the URL's parameters: no settings, no schema. On an error the
    // backend is disconnected.
    virtual core::Status open_connection() = 0;
    // Called on a fresh connection before session_settings(); PostgreSQL silences the notices
    // that CREATE ... IF NOT EXISTS raises.
    virtual void prepare_session() {}
    // What every statement of a session relies on (time zone, timeouts, isolation).
    virtual std::span<const char* const> session_settings() const = 0;
    // One statement whose rows, if any, are discarded.
    virtual core::Status command(const std::string& sql) = 0;
    // Runs schema.ddl under the engine's schema lock unless schema.present says it all exists,
    // so daemons starting together against an empty database do not race, and a user without
    // CREATE privilege works on a prepared database.
    virtual core::Status ensure_schema(const Schema& schema) = 0;

    // A connection with the session settings and `schema` in place: how connect() and
    // connect_counters() begin. On an error the backend is disconnected.
    core::Status open_session(const Schema& schema);
    // A connection with `settings` (a read-only session, a statement time limit) for read_rows().
    core::Status open_read_only(std::span<const char* const> settings);

    core::Error fail(const std::string& what) const;
    core::Error not_connected() const { return fail("not connected"); }
    core::Status disconnect_with(const core::Status& st) {
        disconnect();
        return st;
    }

    StoreUrl url_;

private:
    core::Status run_settings(std::span<const char* const> settings);
};

// A number as the engines print an integer column: an optional '-' and 1 to 18 digits.
bool parse_sql_i64(std::string_view s, std::int64_t& out);

}  // namespace rp::store
