// MysqlBackend: the shared permit table in MySQL/MariaDB (MariaDB Connector/C), as
// docs/store-sql.md documents.
//
// relaypermit_permits is keyed by the network's text and also holds its first address in
// INET6_ATON's encoding (VARBINARY(16): 4 bytes for IPv4, 16 for IPv6, so the length is the
// family), its last address and its prefix length. Postfix's mysql: map asks, with expiry in
// the query, for each prefix length in use (a loose index scan over (prefix_len, net_first))
// whether the client address masked to that length is a stored network: one index probe per
// distinct length, like PermitTable::find; docs/store-sql.md has the query. INET6_ATON gives
// NULL for host names and truncated addresses, so those match nothing.
// Times are DATETIME(6) in UTC: TIMESTAMP would end in 2038.
//
// MySQL has no notifications, so every change also appends a row to relaypermit_changes in the
// same transaction, and every backend polls that log for ids above the last one it has seen
// (change_fd() is -1, poll_interval() 20 ms). Ids come from relaypermit_change_seq, whose single
// row each writing transaction locks first: writers are serialised, so ids become visible in
// increasing order and a reader never skips a change that commits late (an upsert that changed
// nothing leaves a harmless gap). The merge itself is one INSERT ... ON DUPLICATE KEY UPDATE, so
// it is atomic against other daemons, and each operation is one round trip (a multi-statement
// batch). purge() drops log rows older than ten minutes and records the last id it dropped; a
// reader whose position is below that reports an error, and the worker reconnects and takes a
// new snapshot.
// User and source are binary-safe BLOBs, written as hex literals (no escaping, no charset
// conversion); longer values than a BLOB holds (64 KiB) are cut. Every value in the SQL text is
// a number, a Cidr's canonical text or a hex literal, so the batches cannot be injected into.
//
// Schema creation runs under GET_LOCK around CREATE TABLE IF NOT EXISTS, so daemons starting
// together against an empty database do not race; when the tables already exist nothing is
// created, so a user without CREATE privilege works on a prepared database.
// Thread-safety: one thread (SharedStore's worker) uses a backend.
#include <mysql.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "util/dynlib.hpp"
#include "store/sql_backend.hpp"
#include "store/sql_counters.hpp"

namespace rp::store {
namespace {

// The client library's functions, loaded on first use (util/dynlib.hpp).
#define RP_MYSQL_FUNCTIONS(X) \
    X(mysql_close) \
    X(mysql_errno) \
    X(mysql_error) \
    X(mysql_fetch_lengths) \
    X(mysql_fetch_row) \
    X(mysql_free_result) \
    X(mysql_get_ssl_cipher) \
    X(mysql_init) \
    X(mysql_next_result) \
    X(mysql_num_fields) \
    X(mysql_optionsv) \
    X(mysql_real_connect) \
    X(mysql_real_query) \
    X(mysql_store_result) \
    X(mysql_use_result)
struct MysqlApi {
    RP_MYSQL_FUNCTIONS(RP_DYNLIB_DECLARE)
} loaded_api;
const MysqlApi* const api = &loaded_api;  // filled by load_api(), which the factory calls first

core::Status load_api() {
    auto fill = [](void* lib, const std::string& soname, MysqlApi& out) -> core::Status {
        RP_MYSQL_FUNCTIONS(RP_DYNLIB_LOAD)
        return core::ok();
    };
    return util::load_api_once<MysqlApi>("libmariadb.so.3", "libmariadb3", loaded_api, fill);
}

using core::make_error;

constexpr std::size_t kBlobMax = 65535;
constexpr std::int64_t kChangeLogKeepUs = 10LL * 60 * 1000 * 1000;  // 10 minutes
constexpr unsigned kMaxChangesPerQuery = 1000;

const char* const kSchema[] = {
    "CREATE TABLE IF NOT EXISTS relaypermit_permits ("
    " network VARCHAR(49) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " net_first VARBINARY(16) NOT NULL,"
    " net_last VARBINARY(16) NOT NULL,"
    " prefix_len TINYINT UNSIGNED NOT NULL,"
    " username BLOB NOT NULL,"
    " source BLOB NOT NULL,"
    " granted DATETIME(6) NOT NULL,"
    " expires DATETIME(6) NOT NULL,"
    " PRIMARY KEY (network),"
    " UNIQUE KEY relaypermit_permits_lookup (prefix_len, net_first),"
    " KEY relaypermit_permits_expires (expires)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS relaypermit_changes ("
    " id BIGINT UNSIGNED NOT NULL,"
    " kind CHAR(1) CHARACTER SET ascii NOT NULL,"
    " network VARCHAR(49) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " username BLOB NOT NULL,"
    " source BLOB NOT NULL,"
    " granted DATETIME(6) NOT NULL,"
    " expires DATETIME(6) NOT NULL,"
    " logged DATETIME(6) NOT NULL,"
    " PRIMARY KEY (id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE IF NOT EXISTS relaypermit_change_seq ("
    " one TINYINT UNSIGNED NOT NULL,"
    " last_id BIGINT UNSIGNED NOT NULL,"
    " trimmed_through BIGINT UNSIGNED NOT NULL,"
    " PRIMARY KEY (one)"
    ") ENGINE=InnoDB",
    "INSERT IGNORE INTO relaypermit_change_seq (one, last_id, trimmed_through) VALUES (1, 0, 0)",
};

const char* const kSchemaPresent =
    "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
    " AND table_name IN ('relaypermit_permits', 'relaypermit_changes', 'relaypermit_change_seq')) = 3";

#define RP_US(col) "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " col ")"

// Serialises the writers (see the header comment) and reserves the change id LAST_INSERT_ID().
constexpr const char* kLockSequence =
    "START TRANSACTION; UPDATE relaypermit_change_seq SET last_id = LAST_INSERT_ID(last_id + 1) WHERE one = 1; ";

const char* const kSessionSettings[] = {
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION',"
    " time_zone = '+00:00', innodb_lock_wait_timeout = 10, autocommit = 1",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"};
const char* const kReadOnlySettings[] = {"SET SESSION TRANSACTION READ ONLY", "SET SESSION max_statement_time = 60"};

const std::set<std::string> kParams = {"ssl", "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key",
                                       "ssl_verify_server_cert", "connect_timeout", "password"};

std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out = "X'";
    for (unsigned char c : bytes.substr(0, kBlobMax)) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out + "'";
}

// 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), clamped to DATETIME's range.
std::string datetime(core::Time t) {
    constexpr std::int64_t kMin = -30610224000LL * 1000000;  // 1000-01-01
    constexpr std::int64_t kMax = 253402300799LL * 1000000 + 999999;  // 9999-12-31 23:59:59.999999
    std::int64_t us = std::clamp(core::to_unix_micros(t), kMin, kMax);
    std::int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) frac += 1000000, secs -= 1;
    const std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "'%04d-%02d-%02d %02d:%02d:%02d.%06lld'", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
    return buf;
}

// First and last address of `net` as INET6_ATON would encode them (4 or 16 bytes).
std::pair<std::string, std::string> range_of(const core::Cidr& net) {
    const auto& bytes = net.network().bytes();
    const std::size_t n = net.network().is_v4() ? 4 : 16;
    std::string first(reinterpret_cast<const char*>(bytes.data()), n), last = first;
    for (std::size_t i = 0; i < n; ++i) {
        const int bit0 = static_cast<int>(i) * 8;
        if (bit0 + 8 <= net.prefix()) continue;
        const int keep = std::max(0, net.prefix() - bit0);
        const auto host_mask = static_cast<unsigned char>(0xFFu >> keep);
        last[i] = static_cast<char>(static_cast<unsigned char>(last[i]) | host_mask);
    }
    return {first, last};
}

// A column's value (NULL: no number).
bool parse_i64(const char* s, unsigned long len, std::int64_t& out) {
    return s != nullptr && parse_sql_i64(std::string_view(s, len), out);
}

bool truthy(const std::string& v, bool& out) {
    if (v == "1" || v == "true" || v == "yes" || v == "on") return out = true, true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return out = false, true;
    return false;
}

struct ResultFree {
    void operator()(MYSQL_RES* r) const { api->mysql_free_result(r); }
};
using ResultPtr = std::unique_ptr<MYSQL_RES, ResultFree>;

struct Options {
    bool ssl = false;
    bool verify = false;
    unsigned connect_timeout = 5;
    std::string ca, capath, cert, key;
};

class MysqlBackend final : public SqlBackend {
public:
    MysqlBackend(StoreUrl url, Options opt) : SqlBackend(std::move(url)), opt_(std::move(opt)) {
        if (url_.password.empty() && url_.params.count("password")) url_.password = url_.params.at("password");
    }
    ~MysqlBackend() override { disconnect(); }

    core::Status connect() override {
        if (auto st = open_session({kSchemaPresent, kSchema}); !st) return st;
        auto last = query("SELECT last_id FROM relaypermit_change_seq WHERE one = 1");
        if (!last) return disconnect_with(last.error());
        MYSQL_ROW row = api->mysql_fetch_row(last->get());
        std::int64_t id = 0;
        if (!row || !parse_i64(row[0], api->mysql_fetch_lengths(last->get())[0], id))
            return disconnect_with(fail("relaypermit_change_seq has no row 1 (was it emptied by hand?)"));
        last_seen_ = id;
        return core::ok();
    }

    // Budget counters (store/sql_counters.hpp), on a connection that reads no change log.
    core::Status connect_counters() override {
        return open_session({sql_counters::k_mysql_schema_present, sql_counters::mysql_schema()});
    }

    // Per slice, one transaction: the upsert, then a locking read of the same rows (our add and
    // every add committed before it), then COMMIT.
    core::Result<std::vector<CounterRow>> add_counters(std::span<const CounterRow> deltas) override {
        if (!conn_) return not_connected();
        using Totals = core::Result<std::vector<CounterRow>>;
        return sql_counters::in_chunks(deltas, [this](std::span<const CounterRow> part) -> Totals {
            if (auto st = batch("START TRANSACTION; " + sql_counters::mysql_add(part)); !st) return st.error();
            auto stored = counter_rows(sql_counters::mysql_select_locked(part));
            if (!stored) return rollback(stored.error()).error();
            if (auto st = command("COMMIT"); !st) return rollback(st).error();
            return sql_counters::in_order(part, *stored);
        });
    }

    core::Result<std::vector<CounterRow>> counter_snapshot(core::Time now) override {
        if (!conn_) return not_connected();
        return counter_rows(sql_counters::mysql_snapshot(now));
    }

    core::Status purge_counters(core::Time now) override {
        if (!conn_) return not_connected();
        return command(sql_counters::mysql_purge(now));
    }

    // A plain connection with the URL's options (TLS as asked; no session settings, no schema).
    core::Status open_connection() override {
        conn_ = api->mysql_init(nullptr);
        if (!conn_) return fail("cannot allocate a MariaDB connection");
        const unsigned io_timeout = 15;
        api->mysql_optionsv(conn_, MYSQL_OPT_CONNECT_TIMEOUT, &opt_.connect_timeout);
        api->mysql_optionsv(conn_, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
        api->mysql_optionsv(conn_, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
        api->mysql_optionsv(conn_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (opt_.ssl) {
            const my_bool yes = 1, verify = opt_.verify ? 1 : 0;
            api->mysql_optionsv(conn_, MYSQL_OPT_SSL_ENFORCE, &yes);
            api->mysql_optionsv(conn_, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
            if (!opt_.ca.empty()) api->mysql_optionsv(conn_, MYSQL_OPT_SSL_CA, opt_.ca.c_str());
            if (!opt_.capath.empty()) api->mysql_optionsv(conn_, MYSQL_OPT_SSL_CAPATH, opt_.capath.c_str());
            if (!opt_.cert.empty()) api->mysql_optionsv(conn_, MYSQL_OPT_SSL_CERT, opt_.cert.c_str());
            if (!opt_.key.empty()) api->mysql_optionsv(conn_, MYSQL_OPT_SSL_KEY, opt_.key.c_str());
        }
        const bool unix_socket = !url_.host.empty() && url_.host.front() == '/';
        if (!api->mysql_real_connect(conn_, unix_socket ? "localhost" : url_.host.c_str(),
                                url_.user.empty() ? nullptr : url_.user.c_str(),
                                url_.password.empty() ? nullptr : url_.password.c_str(),
                                url_.database.empty() ? nullptr : url_.database.c_str(),
                                static_cast<unsigned>(url_.port), unix_socket ? url_.host.c_str() : nullptr,
                                CLIENT_MULTI_STATEMENTS)) {
            auto err = fail(std::string("cannot connect: ") + api->mysql_error(conn_));
            disconnect();
            return err;
        }
        // Connector/C 3.3 falls back to plain text under MYSQL_OPT_SSL_ENFORCE alone when the
        // server offers no TLS; refuse such a connection here.
        if (opt_.ssl && api->mysql_get_ssl_cipher(conn_) == nullptr)
            return disconnect_with(fail("TLS required (ssl=true) but the connection is not encrypted: "
                                        "the server offers no TLS"));
        if (url_.database.empty()) return disconnect_with(fail("the URL names no database (mysql://user@host/DATABASE)"));
        return core::ok();
    }

    core::Result<std::vector<Row>> read_rows(const std::string& sql) override {
        if (auto st = open_read_only(kReadOnlySettings); !st) return st.error();
        auto r = query(sql);
        if (!r) return disconnect_with(r.error()).error();
        std::vector<Row> rows;
        const unsigned cols = api->mysql_num_fields(r->get());
        while (MYSQL_ROW row = api->mysql_fetch_row(r->get())) {
            const unsigned long* len = api->mysql_fetch_lengths(r->get());
            Row out;
            for (unsigned c = 0; c < cols; ++c)
                out.push_back(row[c] ? std::optional<std::string>(std::string(row[c], len[c])) : std::nullopt);
            rows.push_back(std::move(out));
            if (rows.size() >= k_max_read_rows) break;
        }
        r->reset();
        disconnect();
        return rows;
    }

    void disconnect() override {
        if (conn_) api->mysql_close(conn_);
        conn_ = nullptr;
    }

    core::Result<std::vector<core::Permit>> snapshot(core::Time now) override { return collect_snapshot(now); }

    // mysql_use_result: rows are read from the socket as they are fetched, not stored first.
    core::Status snapshot_to(core::Time now, const PermitSink& sink) override {
        if (!conn_) return not_connected();
        const std::string sql = "SELECT network, username, source, " RP_US("granted") ", " RP_US("expires") " FROM "
                                "relaypermit_permits WHERE expires > " + datetime(now);
        if (api->mysql_real_query(conn_, sql.data(), sql.size()) != 0) return fail(api->mysql_error(conn_));
        ResultPtr r(api->mysql_use_result(conn_));
        if (!r) return fail(api->mysql_errno(conn_) ? api->mysql_error(conn_) : "a query returned no result set");
        core::Status st = core::ok();
        while (MYSQL_ROW row = api->mysql_fetch_row(r.get())) {
            if (!st) continue;  // read to the end: the connection stays usable
            const unsigned long* len = api->mysql_fetch_lengths(r.get());
            const auto text = [&](int i) { return std::string_view(row[i] ? row[i] : "", len[i]); };
            auto net = core::Cidr::parse(text(0));
            std::int64_t g = 0, e = 0;
            if (!net || !parse_i64(row[3], len[3], g) || !parse_i64(row[4], len[4], e))
                st = fail("unreadable row for network '" + std::string(text(0)) + "'");
            else
                sink({*net, text(1), text(2), g, e});
        }
        if (st && api->mysql_errno(conn_)) st = fail(api->mysql_error(conn_));
        return st;
    }

    // One round trip: lock the sequence, merge in SQL (each column takes the new value only when
    // the stored permit expires earlier or has expired; expires is assigned last, so every
    // condition sees the old value), and log the row as stored when the merge changed it.
    core::Status upsert(const core::Permit& p) override {
        if (!conn_) return not_connected();
        const auto now = std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
        const std::string net = "'" + p.network.to_string() + "'";
        const auto [first, last] = range_of(p.network);
        const std::string take = "IF(expires < VALUES(expires) OR expires <= " + datetime(now) + ", VALUES(";
        return batch(std::string(kLockSequence) +
                     "INSERT INTO relaypermit_permits (network, net_first, net_last, prefix_len, username, source, "
                     "granted, expires) VALUES (" + net + ", " + hex(first) + ", " + hex(last) + ", " +
                     std::to_string(p.network.prefix()) + ", " + hex(p.user) + ", " +
                     hex(p.source) + ", " + datetime(p.granted) + ", " + datetime(p.expires) +
                     ") ON DUPLICATE KEY UPDATE username = " + take + "username), username), source = " + take +
                     "source), source), granted = " + take + "granted), granted), expires = " + take +
                     "expires), expires);"
                     " SET @relaypermit_rc = ROW_COUNT();"
                     " INSERT INTO relaypermit_changes (id, kind, network, username, source, granted, expires, logged)"
                     " SELECT LAST_INSERT_ID(), 'u', network, username, source, granted, expires, " + datetime(now) +
                     " FROM relaypermit_permits WHERE network = " + net + " AND @relaypermit_rc > 0;"
                     " COMMIT");
    }

    // One round trip: lock the sequence, log the row as it is, delete it.
    core::Status remove(const core::Cidr& network) override {
        if (!conn_) return not_connected();
        const auto now = std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
        const std::string net = "'" + network.to_string() + "'";
        return batch(std::string(kLockSequence) +
                     "INSERT INTO relaypermit_changes (id, kind, network, username, source, granted, expires, logged)"
                     " SELECT LAST_INSERT_ID(), 'r', network, username, source, granted, expires, " + datetime(now) +
                     " FROM relaypermit_permits WHERE network = " + net + ";"
                     " DELETE FROM relaypermit_permits WHERE network = " + net + ";"
                     " COMMIT");
    }

    int change_fd() const override { return -1; }
    std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(20); }

    // One round trip per poll: the trim watermark (always one row) joined with the new changes.
    core::Result<std::vector<Change>> read_changes() override {
        if (!conn_) return not_connected();
        std::vector<Change> out;
        for (;;) {
            auto r = query("SELECT s.trimmed_through, c.id, c.kind, c.network, c.username, c.source, " RP_US("c.granted")
                           ", " RP_US("c.expires") " FROM relaypermit_change_seq s LEFT JOIN relaypermit_changes c"
                           " ON c.id > " + std::to_string(last_seen_) + " WHERE s.one = 1 ORDER BY c.id LIMIT " +
                           std::to_string(kMaxChangesPerQuery));
            if (!r) return r.error();
            unsigned rows = 0;
            while (MYSQL_ROW row = api->mysql_fetch_row(r->get())) {
                const unsigned long* len = api->mysql_fetch_lengths(r->get());
                std::int64_t trimmed = 0, id = 0;
                if (!parse_i64(row[0], len[0], trimmed)) return fail("unreadable relaypermit_change_seq row");
                if (trimmed > last_seen_)
                    return fail("change log rows after " + std::to_string(last_seen_) +
                                " were purged before this daemon read them; a new snapshot is needed");
                if (!row[1]) break;  // no new changes
                ++rows;
                if (!parse_i64(row[1], len[1], id)) return fail("unreadable change log id");
                last_seen_ = id;
                const std::string_view kind(row[2], len[2]);
                auto p = row_to_permit(row, len, 3);
                if (!p || (kind != "u" && kind != "r")) continue;  // not ours to understand: skip
                out.push_back(Change{kind == "u" ? Change::Kind::upsert : Change::Kind::remove, std::move(*p)});
            }
            if (rows < kMaxChangesPerQuery) return out;
        }
    }

    core::Status purge(core::Time now) override {
        if (!conn_) return not_connected();
        if (auto st = command("DELETE FROM relaypermit_permits WHERE expires <= " + datetime(now)); !st) return st;
        // Raise the watermark first, then drop the rows below it: a reader that still needed one
        // of them sees the watermark above its position and resynchronises.
        return batch("UPDATE relaypermit_change_seq SET trimmed_through = GREATEST(trimmed_through, (SELECT"
                     " COALESCE(MAX(id), 0) FROM relaypermit_changes WHERE logged < " +
                     datetime(now - core::Duration(kChangeLogKeepUs)) + ")) WHERE one = 1;"
                     " DELETE FROM relaypermit_changes WHERE id <= (SELECT trimmed_through FROM"
                     " relaypermit_change_seq WHERE one = 1)");
    }

private:
    std::span<const char* const> session_settings() const override { return kSessionSettings; }

    core::Status rollback(const core::Status& st) {
        if (conn_) api->mysql_real_query(conn_, "ROLLBACK", 8);
        return st;
    }

    core::Status command(const std::string& sql) override {
        if (api->mysql_real_query(conn_, sql.data(), sql.size()) != 0) return fail(api->mysql_error(conn_));
        // Statements here return no rows; drain anything unexpected so the connection stays usable.
        if (MYSQL_RES* r = api->mysql_store_result(conn_)) api->mysql_free_result(r);
        return core::ok();
    }

    core::Result<ResultPtr> query(const std::string& sql) {
        if (api->mysql_real_query(conn_, sql.data(), sql.size()) != 0) return fail(api->mysql_error(conn_));
        ResultPtr r(api->mysql_store_result(conn_));
        if (!r) return fail(api->mysql_errno(conn_) ? api->mysql_error(conn_) : "a query returned no result set");
        return r;
    }

    // Runs `;`-separated statements in one round trip (CLIENT_MULTI_STATEMENTS), discarding any
    // result sets. The first failing statement stops the batch; an open transaction is rolled
    // back so the connection stays usable.
    core::Status batch(const std::string& sql) {
        core::Status result = core::ok();
        if (api->mysql_real_query(conn_, sql.data(), sql.size()) != 0) {
            result = fail(api->mysql_error(conn_));
        } else {
            for (;;) {
                if (MYSQL_RES* r = api->mysql_store_result(conn_)) api->mysql_free_result(r);
                const int next = api->mysql_next_result(conn_);
                if (next == 0) continue;
                if (next > 0) result = fail(api->mysql_error(conn_));
                break;
            }
        }
        if (!result) (void)rollback(core::ok());
        return result;
    }

    // The counter_key, win, n, expires_us rows `sql` selects (sql_counters::parse_row).
    core::Result<std::vector<CounterRow>> counter_rows(const std::string& sql) {
        auto r = query(sql);
        if (!r) return r.error();
        std::vector<CounterRow> out;
        while (MYSQL_ROW row = api->mysql_fetch_row(r->get())) {
            const unsigned long* len = api->mysql_fetch_lengths(r->get());
            auto col = [&](int i) { return std::string_view(row[i] ? row[i] : "", len[i]); };
            auto c = sql_counters::parse_row({col(0), col(1), col(2), col(3)});
            if (!c) return fail(c.error().message);
            out.push_back(std::move(*c));
        }
        return out;
    }

    // network, username, source, granted_us, expires_us starting at column `at`.
    core::Result<core::Permit> row_to_permit(MYSQL_ROW row, const unsigned long* len, int at) const {
        const auto i = static_cast<std::size_t>(at);
        auto net = core::Cidr::parse(std::string_view(row[i] ? row[i] : "", len[i]));
        std::int64_t g = 0, e = 0;
        if (!net || !parse_i64(row[i + 3], len[i + 3], g) || !parse_i64(row[i + 4], len[i + 4], e))
            return fail("unreadable row for network '" + std::string(row[i] ? row[i] : "", len[i]) + "'");
        return core::Permit{*net, std::string(row[i + 1] ? row[i + 1] : "", len[i + 1]),
                            std::string(row[i + 2] ? row[i + 2] : "", len[i + 2]), core::from_unix_micros(g),
                            core::from_unix_micros(e)};
    }

    // The lock: GET_LOCK, held by the connection until RELEASE_LOCK.
    core::Status ensure_schema(const Schema& schema) override {
        {
            auto present = query(schema.present);
            if (!present) return present.error();
            MYSQL_ROW row = api->mysql_fetch_row(present->get());
            if (row && row[0] && std::string_view(row[0]) == "1") return core::ok();
        }
        auto lock = query("SELECT GET_LOCK('relaypermit_schema', 30)");
        if (!lock) return lock.error();
        MYSQL_ROW row = api->mysql_fetch_row(lock->get());
        if (!row || !row[0] || std::string_view(row[0]) != "1")
            return fail("timed out waiting for another daemon to create the schema");
        lock->reset();
        core::Status result = core::ok();
        for (const char* statement : schema.ddl) {
            if (auto st = command(statement); !st) {
                result = fail("creating the schema: " + st.error().message);
                break;
            }
        }
        auto released = query("SELECT RELEASE_LOCK('relaypermit_schema')");
        if (!released && result) return released.error();
        return result;
    }

    Options opt_;
    MYSQL* conn_ = nullptr;
    std::int64_t last_seen_ = 0;
};

}  // namespace

core::Result<std::unique_ptr<SharedBackend>> make_mysql_backend(const StoreUrl& url) {
    if (auto st = load_api(); !st) return make_error("store " + url.redacted() + ": " + st.error().message);
    auto bad = [&](const std::string& what) { return make_error("store " + url.redacted() + ": " + what); };
    Options opt;
    for (const auto& [k, v] : url.params) {
        if (!kParams.count(k)) {
            std::string known;
            for (const auto& n : kParams) known += (known.empty() ? "" : ", ") + n;
            return bad("unknown parameter '" + k + "' (known: " + known + ")");
        }
        if (k == "ssl" || k == "ssl_verify_server_cert") {
            bool b = false;
            if (!truthy(v, b)) return bad("parameter " + k + " must be true or false");
            (k == "ssl" ? opt.ssl : opt.verify) = b;
        } else if (k == "connect_timeout") {
            std::int64_t secs = 0;
            if (!parse_i64(v.data(), v.size(), secs) || secs < 1 || secs > 3600)
                return bad("connect_timeout must be seconds from 1 to 3600");
            opt.connect_timeout = static_cast<unsigned>(secs);
        } else if (k == "ssl_ca") opt.ca = v;
        else if (k == "ssl_capath") opt.capath = v;
        else if (k == "ssl_cert") opt.cert = v;
        else if (k == "ssl_key") opt.key = v;
    }
    // Any certificate parameter means TLS; a CA means verifying the server against it.
    if (!opt.ca.empty() || !opt.capath.empty() || !opt.cert.empty() || !opt.key.empty()) opt.ssl = true;
    if ((!opt.ca.empty() || !opt.capath.empty()) && !url.params.count("ssl_verify_server_cert")) opt.verify = true;
    if (opt.verify && !opt.ssl) return bad("ssl_verify_server_cert needs ssl=true");
    if (opt.verify && opt.ca.empty() && opt.capath.empty())
        return bad("ssl_verify_server_cert=true needs ssl_ca or ssl_capath");
    if (url.database.empty()) return bad("the URL names no database (mysql://user:password@host/DATABASE)");
    return std::unique_ptr<SharedBackend>(new MysqlBackend(url, std::move(opt)));
}

}  // namespace rp::store
