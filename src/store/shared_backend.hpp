// SharedBackend: one engine that holds a permit table shared by several daemons (Redis,
// PostgreSQL, MySQL/MariaDB), as SharedStore's worker thread drives it.
//
// SharedStore (shared_store.hpp) owns the daemon-facing side: the in-memory cache every lookup
// is answered from, the durable local outbox every grant and revoke goes through, and the
// thread that talks to the engine. A backend only translates five blocking operations into its
// engine's language, so adding an engine means writing one of these and nothing else.
//
// Semantics every backend must keep (tests/unit/test_shared_backend.cpp checks them against
// real servers):
//  - upsert(p) merges like PermitTable::merge: a new network is created; an existing one takes
//    p's fields only when p.expires is later than the stored expiry; a stored permit that has
//    expired is replaced. Atomic against other daemons doing the same (no lost update).
//    Each stored change is announced to every connected backend's read_changes() (including
//    this one's) as Change::upsert with the permit as stored.
//  - remove(net) deletes exactly that network's row and announces Change::remove carrying the
//    removed row (its granted time lets a cache ignore a removal older than what it holds).
//    Removing an absent row succeeds and announces nothing.
//  - snapshot(now) returns every permit with now < expires.
//  - Rows whose expiry has passed are never returned by snapshot() and, for SQL engines, are
//    also excluded by the documented MTA query; purge(now) deletes them (Redis expires keys
//    itself: per-key PEXPIREAT equal to the permit's expiry).
//  - connect() creates the schema when missing, idempotently and safely when several daemons
//    start at once against an empty database, and starts listening for changes (Redis
//    SUBSCRIBE, PostgreSQL LISTEN, MySQL: a change log read by polling).
// Errors are values; after any error the worker calls disconnect() and later connect() again.
// Credentials never appear in error messages or describe().
// Thread-safety: a backend is used by one thread (the SharedStore worker) only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/login_event.hpp"
#include "core/result.hpp"
#include "store/counter_store.hpp"

namespace rp::store {

// `store = URL`, parsed. scheme is "redis", "postgresql" (also accepted: "postgres") or "mysql"
// (also "mariadb"). Query parameters (?a=b&c=d) are kept for the backend to interpret; unknown
// ones are an error from the backend's factory.
struct StoreUrl {
    std::string scheme;
    std::string user;
    std::string password;  // from the URL or store_password_file; never logged
    std::string host;      // may be a unix socket path for SQL engines ("/run/postgresql")
    int port = 0;          // 0 = the engine's default
    std::string database;  // redis: the db number as text ("0" when absent)
    std::map<std::string, std::string> params;
    std::string original;  // the URL as written (contains the password: never log it)

    // The URL with the password replaced by "***": safe for logs, status and errors.
    std::string redacted() const;
};

// Parses scheme://[user[:password]@]host[:port][/database][?k=v&...]; percent-escapes in user,
// password and database are decoded; IPv6 hosts in brackets. The userinfo ends at the LAST '@'
// (a password may hold '/', '?', '#', ':' or '@' unescaped; an '@' in the database name or a
// parameter is written %40). Errors name the problem, never the password.
core::Result<StoreUrl> parse_store_url(std::string_view url);

// One permit as a backend streams it out of its engine (the views live during the call only).
struct PermitRow {
    const core::Cidr& network;
    std::string_view user, source;
    std::int64_t granted_us, expires_us;
};
using PermitSink = std::function<void(const PermitRow&)>;

struct Change {
    enum class Kind { upsert, remove };
    Kind kind;
    core::Permit permit;  // upsert: as stored; remove: the row as it was removed
};

class SharedBackend {
public:
    virtual ~SharedBackend() = default;

    virtual core::Status connect() = 0;
    virtual void disconnect() = 0;
    virtual core::Result<std::vector<core::Permit>> snapshot(core::Time now) = 0;
    // The same rows as snapshot(now), handed to `sink` one by one as they arrive, without a
    // vector of them all (a start at 1M permits: Redis pipelined SCAN + GET, PostgreSQL
    // COPY TO STDOUT in binary). A network may come more than once (Redis SCAN); the caller
    // keeps the later expiry. On an error the rows already handed over are to be discarded.
    // Default: snapshot(now), then each row.
    virtual core::Status snapshot_to(core::Time now, const PermitSink& sink);
    virtual core::Status upsert(const core::Permit& p) = 0;
    virtual core::Status remove(const core::Cidr& net) = 0;

    // A descriptor that becomes readable when changes may be waiting (Redis: the subscriber
    // connection; PostgreSQL: PQsocket), or -1 when read_changes() must be polled every
    // poll_interval() (MySQL). Valid only while connected.
    virtual int change_fd() const = 0;
    virtual std::chrono::milliseconds poll_interval() const { return std::chrono::milliseconds(1000); }
    // Changes announced since the last call, without blocking for new ones. An error means the
    // connection is lost.
    virtual core::Result<std::vector<Change>> read_changes() = 0;

    // Deletes expired rows (SQL engines); called about once a minute. Redis: nothing to do.
    virtual core::Status purge(core::Time now) = 0;

    virtual std::string describe() const = 0;  // e.g. "redis://127.0.0.1:6379/0", no password

    // SQL engines, for `relaypermit import sql`: on a connection of its own (same URL parameters,
    // nothing created, the session read-only), runs `query` and returns its rows as text (NULL:
    // nullopt); at most k_max_read_rows rows. Others: an error.
    using Row = std::vector<std::optional<std::string>>;
    static constexpr std::size_t k_max_read_rows = 10'000'000;
    virtual core::Result<std::vector<Row>> read_rows(const std::string& query);
    // Budget counters (store/counter_store.hpp), on a backend instance of their own (its own
    // connection, opened by connect_counters()): add each delta to its row, atomically per row
    // against other daemons, and return the totals in order; rows expire at their `expires`
    // (Redis: PEXPIREAT; SQL engines: left out of counter_snapshot and deleted by
    // purge_counters). An engine without them answers an error (the daemon then counts locally
    // only).
    // connect_counters() connects such an instance: SQL engines create the counter table when
    // missing (the same way, under the same lock, as connect() creates the permits' schema, so
    // a database prepared without it still serves permits) and listen for no changes.
    virtual core::Status connect_counters() { return connect(); }
    virtual core::Result<std::vector<CounterRow>> add_counters(std::span<const CounterRow> deltas) {
        (void)deltas;
        return core::make_error(describe() + ": budget counters are not supported by this engine");
    }
    virtual core::Result<std::vector<CounterRow>> counter_snapshot(core::Time now) {
        (void)now;
        return core::make_error(describe() + ": budget counters are not supported by this engine");
    }
    virtual core::Status purge_counters(core::Time now) {
        (void)now;
        return core::ok();
    }

protected:
    // snapshot(now) for a backend that implements snapshot_to(): its rows collected.
    core::Result<std::vector<core::Permit>> collect_snapshot(core::Time now);
};

// Factories: validate the URL's parameters and return an unconnected backend.
core::Result<std::unique_ptr<SharedBackend>> make_redis_backend(const StoreUrl& url);
core::Result<std::unique_ptr<SharedBackend>> make_pgsql_backend(const StoreUrl& url);
core::Result<std::unique_ptr<SharedBackend>> make_mysql_backend(const StoreUrl& url);

// By scheme; an unknown scheme is an error listing the known ones.
core::Result<std::unique_ptr<SharedBackend>> make_backend(const StoreUrl& url);

}  // namespace rp::store
