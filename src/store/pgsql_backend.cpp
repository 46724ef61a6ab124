// PgsqlBackend: the shared permit table in PostgreSQL (libpq), as docs/store-sql.md documents.
//
// One table, relaypermit_permits, keyed by an inet network (a host route or an IPv6 prefix),
// with a GiST inet_ops index so that Postfix's pgsql: map can ask
//   SELECT 'OK' FROM relaypermit_permits WHERE network >>= relaypermit_inet('%s') AND expires > now()
// directly: expiry is in the query, so Postfix answers correctly even while no relaypermit runs.
// relaypermit_inet() turns text into inet or NULL (Postfix also looks up host names and
// truncated addresses, which a plain ::inet cast would turn into a query error).
//
// Every change is one autocommit statement that writes the row and calls pg_notify() on the
// channel relaypermit_permits in the same transaction, so a change and its announcement commit
// together; every backend LISTENs on the channel. libpq also reads notifications that arrive
// while another statement runs, after which the socket is no longer readable; so change_fd() is
// an epoll descriptor over both the connection's socket and an eventfd that the backend signals
// whenever such notifications are waiting in its own queue.
// The payload is "k granted_us expires_us network nchars user+source" (nchars = characters of
// the user name, which is followed directly by the source). Any database user may NOTIFY any
// channel, so a payload is only a hint, never trusted: an upsert (kind U, sent without the text
// fields) is announced as the row read back from the table, and a removal (kind r, or R without
// the text fields when they would exceed NOTIFY's 8000 bytes) only if the row is indeed absent.
// A read-only account (Postfix's) therefore cannot slip permits into the daemons' caches.
// Text columns hold valid UTF-8 without NUL (PostgreSQL text cannot hold anything else), so
// user and source are sanitised here: invalid bytes become U+FFFD.
//
// Schema creation takes a transaction-scoped advisory lock around CREATE ... IF NOT EXISTS, so
// daemons starting together against an empty database do not race; when every object already
// exists nothing is created, so a user without CREATE privilege works on a prepared database.
// The URL's query parameters are libpq connection keywords (sslmode, sslrootcert, ...) and are
// passed as keyword/value arrays, never as a connection string: the password reaches libpq only
// in memory, and no error message here contains it.
// Thread-safety: one thread (SharedStore's worker) uses a backend.
#include <libpq-fe.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "util/dynlib.hpp"
#include "store/pg_copy.hpp"
#include "store/pgsql_text.hpp"
#include "store/sql_backend.hpp"
#include "store/sql_counters.hpp"

namespace rp::store {
namespace {

// The client library's functions, loaded on first use (util/dynlib.hpp).
#define RP_PQ_FUNCTIONS(X) \
    X(PQclear) \
    X(PQconndefaults) \
    X(PQconnectdbParams) \
    X(PQconninfoFree) \
    X(PQconsumeInput) \
    X(PQerrorMessage) \
    X(PQexec) \
    X(PQexecParams) \
    X(PQfinish) \
    X(PQfreemem) \
    X(PQgetCopyData) \
    X(PQgetResult) \
    X(PQgetisnull) \
    X(PQgetvalue) \
    X(PQnfields) \
    X(PQnotifies) \
    X(PQntuples) \
    X(PQresultErrorMessage) \
    X(PQresultStatus) \
    X(PQsetNoticeProcessor) \
    X(PQsocket) \
    X(PQstatus)
struct PqApi {
    RP_PQ_FUNCTIONS(RP_DYNLIB_DECLARE)
} loaded_api;
const PqApi* const api = &loaded_api;  // filled by load_api(), which the factory calls first

core::Status load_api() {
    auto fill = [](void* lib, const std::string& soname, PqApi& out) -> core::Status {
        RP_PQ_FUNCTIONS(RP_DYNLIB_LOAD)
        return core::ok();
    };
    return util::load_api_once<PqApi>("libpq.so.5", "libpq5", loaded_api, fill);
}

using core::make_error;

constexpr const char* kChannel = "relaypermit_permits";
// pg_advisory_xact_lock key for schema creation ("rpschema" as bytes).
constexpr const char* kSchemaLockKey = "8246217788505812321";

// Microseconds since the epoch <-> timestamptz. Exact: the interval product is computed in double
// precision, exact below 2^53 microseconds (the year 2255), and extract() returns numeric.
#define RP_TS(param) "(timestamptz 'epoch' + " param "::bigint * interval '1 microsecond')"
#define RP_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

// The notification payloads for a row `r` (see the header comment).
#define RP_PAYLOAD_UPSERT \
    "concat('U ', " RP_US("r.granted") ", ' ', " RP_US("r.expires") ", ' ', r.network::text, ' 0 ')"
#define RP_PAYLOAD_REMOVE                                                                        \
    "CASE WHEN octet_length(r.username) + octet_length(r.source) < 7000 THEN concat('r ', "    \
    RP_US("r.granted") ", ' ', " RP_US("r.expires") ", ' ', r.network::text, ' ', "            \
    "char_length(r.username), ' ', r.username, r.source) ELSE concat('R ', "                   \
    RP_US("r.granted") ", ' ', " RP_US("r.expires") ", ' ', r.network::text, ' 0 ') END"

const char* const kSchemaPresent =
    "SELECT to_regclass('relaypermit_permits') IS NOT NULL"
    " AND to_regclass('relaypermit_permits_network_gist') IS NOT NULL"
    " AND to_regclass('relaypermit_permits_expires') IS NOT NULL"
    " AND to_regprocedure('relaypermit_inet(text)') IS NOT NULL";

const char* const kSchema[] = {
    "CREATE TABLE IF NOT EXISTS relaypermit_permits ("
    " network inet PRIMARY KEY,"
    " username text NOT NULL DEFAULT '',"
    " source text NOT NULL DEFAULT '',"
    " granted timestamptz NOT NULL,"
    " expires timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS relaypermit_permits_network_gist"
    " ON relaypermit_permits USING gist (network inet_ops)",
    "CREATE INDEX IF NOT EXISTS relaypermit_permits_expires ON relaypermit_permits (expires)",
    "CREATE OR REPLACE FUNCTION relaypermit_inet(text) RETURNS inet"
    " LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$"
    " BEGIN RETURN $1::inet; EXCEPTION WHEN others THEN RETURN NULL; END $f$",
};

const char* const kUpsert =
    "WITH r AS ("
    " INSERT INTO relaypermit_permits AS p (network, username, source, granted, expires)"
    " VALUES ($1::inet, $2, $3, " RP_TS("$4") ", " RP_TS("$5") ")"
    " ON CONFLICT (network) DO UPDATE SET username = excluded.username, source = excluded.source,"
    " granted = excluded.granted, expires = excluded.expires"
    " WHERE p.expires < excluded.expires OR p.expires <= " RP_TS("$6") " RETURNING p.*)"
    " SELECT pg_notify('relaypermit_permits', " RP_PAYLOAD_UPSERT ") FROM r";

const char* const kRemove =
    "WITH r AS (DELETE FROM relaypermit_permits WHERE network = $1::inet RETURNING *)"
    " SELECT pg_notify('relaypermit_permits', " RP_PAYLOAD_REMOVE ") FROM r";

const char* const kSelectSome =
    "SELECT network::text, username, source, " RP_US("granted") ", " RP_US("expires")
    " FROM relaypermit_permits WHERE network = ANY($1::inet[])";

const char* const kPurge = "DELETE FROM relaypermit_permits WHERE expires <= " RP_TS("$1");

const char* const kSessionSettings[] = {"SET statement_timeout = '15s'", "SET lock_timeout = '10s'",
                                        "SET client_min_messages = warning"};
const char* const kReadOnlySettings[] = {"SET statement_timeout = '60s'", "SET default_transaction_read_only = on"};

// Connection keywords that come from the URL's own parts, not from ?parameters.
const std::set<std::string> kFromUrlParts = {"user", "password", "dbname", "port"};

std::string first_line(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
        if (c == '\n') c = ' ';
    return s.empty() ? "unknown error" : s;
}

struct ResultDeleter {
    void operator()(PGresult* r) const { api->PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class PgsqlBackend final : public SqlBackend {
public:
    PgsqlBackend(StoreUrl url, std::vector<std::pair<std::string, std::string>> conn)
        : SqlBackend(std::move(url)), conn_params_(std::move(conn)) {}
    ~PgsqlBackend() override {
        disconnect();
        if (epfd_ >= 0) ::close(epfd_);
        if (evfd_ >= 0) ::close(evfd_);
    }

    core::Status connect() override {
        if (auto st = open_session({kSchemaPresent, kSchema}); !st) return st;
        if (auto st = command(std::string("LISTEN ") + kChannel); !st) return disconnect_with(st);
        if (auto st = watch_socket(); !st) return disconnect_with(st);
        return core::ok();
    }

    core::Result<std::vector<Row>> read_rows(const std::string& query) override {
        if (auto st = open_read_only(kReadOnlySettings); !st) return st.error();
        ResultPtr r(api->PQexec(conn_, query.c_str()));
        if (!r || api->PQresultStatus(r.get()) != PGRES_TUPLES_OK)
            return disconnect_with(fail(r ? first_line(api->PQresultErrorMessage(r.get()))
                                          : first_line(api->PQerrorMessage(conn_)))).error();
        std::vector<Row> rows;
        const int n = api->PQntuples(r.get()), cols = api->PQnfields(r.get());
        for (int i = 0; i < n && rows.size() < k_max_read_rows; ++i) {
            Row row;
            for (int c = 0; c < cols; ++c)
                row.push_back(api->PQgetisnull(r.get(), i, c) ? std::nullopt
                                                               : std::optional<std::string>(api->PQgetvalue(r.get(), i, c)));
            rows.push_back(std::move(row));
        }
        r.reset();
        disconnect();
        return rows;
    }

    void disconnect() override {
        if (conn_) {
            if (epfd_ >= 0 && api->PQsocket(conn_) >= 0) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, api->PQsocket(conn_), nullptr);
            api->PQfinish(conn_);
        }
        conn_ = nullptr;
        pending_.clear();
        drain_eventfd();
    }

    core::Result<std::vector<core::Permit>> snapshot(core::Time now) override { return collect_snapshot(now); }

    // COPY ... TO STDOUT in binary (store/pg_copy.hpp): rows stream in as the server reads
    // them, with no text conversion on either side and no result set of them all.
    core::Status snapshot_to(core::Time now, const PermitSink& sink) override {
        if (!conn_) return not_connected();
        const std::string sql = "COPY (SELECT network, username, source, granted, expires FROM relaypermit_permits"
                                " WHERE expires > (timestamptz 'epoch' + " +
                                std::to_string(core::to_unix_micros(now)) +
                                "::bigint * interval '1 microsecond')) TO STDOUT (FORMAT binary)";
        ResultPtr r(api->PQexec(conn_, sql.c_str()));
        if (!r || api->PQresultStatus(r.get()) != PGRES_COPY_OUT)
            return fail(r ? first_line(api->PQresultErrorMessage(r.get())) : first_line(api->PQerrorMessage(conn_)));
        r.reset();
        PgCopyParser parser;
        core::Status st = core::ok();
        for (;;) {
            char* buf = nullptr;
            const int n = api->PQgetCopyData(conn_, &buf, 0);
            if (n < 0) break;  // -1: done, -2: failed (the result below says why)
            if (st) {
                auto fed = parser.feed(std::string_view(buf, static_cast<std::size_t>(n)), sink);
                if (!fed) st = fail(fed.error().message);
            }
            api->PQfreemem(buf);
        }
        while (PGresult* done = api->PQgetResult(conn_)) {  // read to the end: the connection stays usable
            ResultPtr end(done);
            if (st && api->PQresultStatus(done) != PGRES_COMMAND_OK) st = fail(first_line(api->PQresultErrorMessage(done)));
        }
        collect_notifies();
        if (st && !parser.finished()) st = fail("COPY: the data ended early");
        return st;
    }

    core::Status upsert(const core::Permit& p) override {
        if (!conn_) return not_connected();
        const auto now = std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
        auto r = exec(kUpsert, {p.network.to_string(), sanitize_utf8(p.user), sanitize_utf8(p.source),
                                std::to_string(core::to_unix_micros(p.granted)),
                                std::to_string(core::to_unix_micros(p.expires)),
                                std::to_string(core::to_unix_micros(now))});
        if (!r) return r.error();
        return core::ok();
    }

    core::Status remove(const core::Cidr& net) override {
        if (!conn_) return not_connected();
        auto r = exec(kRemove, {net.to_string()});
        if (!r) return r.error();
        return core::ok();
    }

    int change_fd() const override { return conn_ ? epfd_ : -1; }

    core::Result<std::vector<Change>> read_changes() override {
        if (!conn_) return not_connected();
        if (!api->PQconsumeInput(conn_)) return fail("connection lost: " + first_line(api->PQerrorMessage(conn_)));
        collect_notifies();
        drain_eventfd();
        std::vector<std::string> payloads;
        payloads.swap(pending_);
        std::vector<Change> hints;
        std::string networks;  // inet[] literal of every network named
        for (const auto& payload : payloads) {
            if (auto c = parse_payload(payload)) {
                networks += (networks.empty() ? "{" : ",") + c->permit.network.to_string();
                hints.push_back(std::move(*c));
            }
        }
        std::vector<Change> out;
        if (hints.empty()) return out;
        // Verify against the table (see the header comment), all hints with one query.
        auto r = exec(kSelectSome, {networks + "}"});
        if (!r) return r.error();
        auto rows = rows_to_permits(r->get());
        if (!rows) return rows.error();
        std::map<core::Cidr, core::Permit> current;
        for (auto& p : *rows) current.emplace(p.network, std::move(p));
        std::set<core::Cidr> announced;
        for (auto& c : hints) {
            const auto it = current.find(c.permit.network);
            if (c.kind == Change::Kind::upsert) {
                // absent: removed since (its removal follows) or a forged hint
                if (it != current.end() && announced.insert(it->first).second)
                    out.push_back(Change{Change::Kind::upsert, it->second});
            } else if (it == current.end()) {  // present: re-created since, or forged
                out.push_back(std::move(c));
            }
        }
        return out;
    }

    core::Status purge(core::Time now) override {
        if (!conn_) return not_connected();
        auto r = exec(kPurge, {std::to_string(core::to_unix_micros(now))});
        if (!r) return r.error();
        return core::ok();
    }

    // Budget counters (store/sql_counters.hpp), on a connection that listens for nothing.
    core::Status connect_counters() override {
        return open_session({sql_counters::k_pg_schema_present, sql_counters::pg_schema()});
    }

    core::Result<std::vector<CounterRow>> add_counters(std::span<const CounterRow> deltas) override {
        if (!conn_) return not_connected();
        using Totals = core::Result<std::vector<CounterRow>>;
        return sql_counters::in_chunks(deltas, [this](std::span<const CounterRow> part) -> Totals {
            auto r = exec(sql_counters::k_pg_add, sql_counters::pg_add_params(part));
            if (!r) return r.error();
            auto stored = counter_rows(r->get());
            if (!stored) return stored.error();
            return sql_counters::in_order(part, *stored);
        });
    }

    core::Result<std::vector<CounterRow>> counter_snapshot(core::Time now) override {
        if (!conn_) return not_connected();
        auto r = exec(sql_counters::k_pg_snapshot, {std::to_string(core::to_unix_micros(now))});
        if (!r) return r.error();
        return counter_rows(r->get());
    }

    core::Status purge_counters(core::Time now) override {
        if (!conn_) return not_connected();
        auto r = exec(sql_counters::k_pg_purge, {std::to_string(core::to_unix_micros(now))});
        if (!r) return r.error();
        return core::ok();
    }

private:
    // A plain connection with the URL's parameters (no schema, no LISTEN).
    core::Status open_connection() override {
        std::vector<const char*> keys, values;
        for (const auto& [k, v] : conn_params_) {
            keys.push_back(k.c_str());
            values.push_back(v.c_str());
        }
        keys.push_back(nullptr);
        values.push_back(nullptr);
        conn_ = api->PQconnectdbParams(keys.data(), values.data(), 0);
        if (conn_ == nullptr) return fail("cannot allocate a libpq connection");
        if (api->PQstatus(conn_) != CONNECTION_OK) {
            auto err = fail("cannot connect: " + first_line(api->PQerrorMessage(conn_)));
            disconnect();
            return err;
        }
        return core::ok();
    }

    void prepare_session() override {
        api->PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // IF NOT EXISTS notices
    }
    std::span<const char* const> session_settings() const override { return kSessionSettings; }

    core::Result<ResultPtr> exec(const char* sql, const std::vector<std::string>& params) {
        std::vector<const char*> values;
        values.reserve(params.size());
        for (const auto& p : params) values.push_back(p.c_str());
        ResultPtr r(api->PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0));
        collect_notifies();
        const auto status = r ? api->PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            return fail(r ? first_line(api->PQresultErrorMessage(r.get())) : first_line(api->PQerrorMessage(conn_)));
        return r;
    }

    // Moves notifications libpq has already read into pending_ and signals the eventfd.
    void collect_notifies() {
        bool any = false;
        while (PGnotify* n = api->PQnotifies(conn_)) {
            if (std::strcmp(n->relname, kChannel) == 0) {
                pending_.emplace_back(n->extra ? n->extra : "");
                any = true;
            }
            api->PQfreemem(n);
        }
        if (any && evfd_ >= 0) {
            const std::uint64_t one = 1;
            [[maybe_unused]] auto w = ::write(evfd_, &one, sizeof one);
        }
    }

    void drain_eventfd() {
        std::uint64_t count = 0;
        if (evfd_ >= 0) {
            [[maybe_unused]] auto r = ::read(evfd_, &count, sizeof count);
        }
    }

    core::Status watch_socket() {
        if (epfd_ < 0) {
            epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
            evfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = evfd_;
            if (epfd_ < 0 || evfd_ < 0 || ::epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0)
                return fail("cannot create the change descriptor (epoll/eventfd)");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = api->PQsocket(conn_);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, api->PQsocket(conn_), &ev) != 0)
            return fail("cannot watch the connection's socket (epoll)");
        if (!pending_.empty()) {  // notifications read during connect's own statements
            const std::uint64_t one = 1;
            [[maybe_unused]] auto w = ::write(evfd_, &one, sizeof one);
        }
        return core::ok();
    }

    core::Status command(const std::string& sql) override {
        auto r = exec(sql.c_str(), {});
        if (!r) return r.error();
        return core::ok();
    }

    // The lock: a transaction-scoped advisory lock, released by the COMMIT.
    core::Status ensure_schema(const Schema& schema) override {
        auto present = exec(schema.present, {});
        if (!present) return present.error();
        if (api->PQntuples(present->get()) == 1 && std::strcmp(api->PQgetvalue(present->get(), 0, 0), "t") == 0)
            return core::ok();
        if (auto st = command("BEGIN"); !st) return st;
        auto rollback = [&](core::Status st) {
            ResultPtr(api->PQexec(conn_, "ROLLBACK"));
            return st;
        };
        if (auto st = exec((std::string("SELECT pg_advisory_xact_lock(") + kSchemaLockKey + ")").c_str(), {});
            !st)
            return rollback(st.error());
        for (const char* statement : schema.ddl) {
            if (auto st = command(statement); !st) return rollback(fail("creating the schema: " + st.error().message));
        }
        return command("COMMIT");
    }

    core::Result<std::vector<core::Permit>> rows_to_permits(const PGresult* r) const {
        std::vector<core::Permit> out;
        const int n = api->PQntuples(r);
        out.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            auto net = core::Cidr::parse(api->PQgetvalue(r, i, 0));
            std::int64_t g = 0, e = 0;
            if (!net || !parse_sql_i64(api->PQgetvalue(r, i, 3), g) || !parse_sql_i64(api->PQgetvalue(r, i, 4), e))
                return fail(std::string("unreadable row for network '") + api->PQgetvalue(r, i, 0) + "'");
            out.push_back(core::Permit{*net, api->PQgetvalue(r, i, 1), api->PQgetvalue(r, i, 2),
                                       core::from_unix_micros(g), core::from_unix_micros(e)});
        }
        return out;
    }

    // counter_key, win, n, expires_us rows (sql_counters::parse_row).
    core::Result<std::vector<CounterRow>> counter_rows(const PGresult* r) const {
        std::vector<CounterRow> out;
        for (int i = 0; i < api->PQntuples(r); ++i) {
            auto row = sql_counters::parse_row({api->PQgetvalue(r, i, 0), api->PQgetvalue(r, i, 1),
                                                api->PQgetvalue(r, i, 2), api->PQgetvalue(r, i, 3)});
            if (!row) return fail(row.error().message);
            out.push_back(std::move(*row));
        }
        return out;
    }

    // "k granted expires network nchars user+source"; nullopt for a malformed payload.
    static std::optional<Change> parse_payload(std::string_view s) {
        std::string_view fields[5];
        for (auto& f : fields) {
            const auto sp = s.find(' ');
            if (sp == std::string_view::npos) return std::nullopt;
            f = s.substr(0, sp);
            s.remove_prefix(sp + 1);
        }
        Change c{Change::Kind::upsert, {}};
        if (fields[0] == "U") c.kind = Change::Kind::upsert;
        else if (fields[0] == "r" || fields[0] == "R") c.kind = Change::Kind::remove;
        else return std::nullopt;
        std::int64_t g = 0, e = 0, chars = 0;
        auto net = core::Cidr::parse(fields[3]);
        if (!net || !parse_sql_i64(fields[1], g) || !parse_sql_i64(fields[2], e) || !parse_sql_i64(fields[4], chars) ||
            chars < 0)
            return std::nullopt;
        const auto split = utf8_prefix_bytes(s, static_cast<std::size_t>(chars));
        if (split == std::string_view::npos) return std::nullopt;
        c.permit = core::Permit{*net, std::string(s.substr(0, split)), std::string(s.substr(split)),
                                core::from_unix_micros(g), core::from_unix_micros(e)};
        return c;
    }

    std::vector<std::pair<std::string, std::string>> conn_params_;
    PGconn* conn_ = nullptr;
    int epfd_ = -1;  // change_fd(): the socket and evfd_
    int evfd_ = -1;  // signalled while pending_ holds payloads libpq read during a statement
    std::vector<std::string> pending_;
};

}  // namespace

core::Result<std::unique_ptr<SharedBackend>> make_pgsql_backend(const StoreUrl& url) {
    if (auto st = load_api(); !st) return make_error("store " + url.redacted() + ": " + st.error().message);
    // Every libpq keyword is allowed as a ?parameter, except those the URL's parts give.
    std::set<std::string> known;
    if (PQconninfoOption* defaults = api->PQconndefaults()) {
        for (auto* o = defaults; o->keyword; ++o) known.insert(o->keyword);
        api->PQconninfoFree(defaults);
    }
    std::vector<std::pair<std::string, std::string>> conn;
    conn.emplace_back("host", url.host);
    if (url.port) conn.emplace_back("port", std::to_string(url.port));
    if (!url.user.empty()) conn.emplace_back("user", url.user);
    if (!url.password.empty()) conn.emplace_back("password", url.password);
    if (!url.database.empty()) conn.emplace_back("dbname", url.database);
    std::map<std::string, std::string> defaults = {
        {"connect_timeout", "5"}, {"application_name", "relaypermit"}, {"keepalives_idle", "30"},
        {"keepalives_interval", "10"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "20000"}};
    for (const auto& [k, v] : url.params) {
        if (kFromUrlParts.count(k) && !(k == "password" && url.password.empty()))
            return make_error("store " + url.redacted() + ": parameter '" + k +
                              "' belongs in the URL itself (postgresql://user:password@host:port/dbname)");
        if (k == "client_encoding" || k == "replication" || k == "expand_dbname")
            return make_error("store " + url.redacted() + ": parameter '" + k + "' cannot be changed");
        if (!known.count(k))
            return make_error("store " + url.redacted() + ": unknown parameter '" + k +
                              "' (expected libpq connection keywords such as sslmode, sslrootcert, "
                              "connect_timeout)");
        defaults.erase(k);
        conn.emplace_back(k, v);
    }
    for (const auto& [k, v] : defaults) conn.emplace_back(k, v);
    conn.emplace_back("client_encoding", "UTF8");
    return std::unique_ptr<SharedBackend>(new PgsqlBackend(url, std::move(conn)));
}

}  // namespace rp::store
