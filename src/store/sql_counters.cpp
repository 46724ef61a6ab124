#include "store/sql_counters.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

namespace rp::store::sql_counters {
namespace {

using Key = std::pair<std::string, std::int64_t>;

// The deltas summed per (key, window), in (key, window) order: the order rows are locked in.
std::map<Key, CounterRow> coalesce(std::span<const CounterRow> deltas) {
    std::map<Key, CounterRow> out;
    for (const auto& d : deltas) {
        auto [it, fresh] = out.try_emplace({d.key, d.window}, d);
        if (!fresh) {
            it->second.count += d.count;
            it->second.expires = std::max(it->second.expires, d.expires);
        }
    }
    return out;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

// A PostgreSQL array element: double-quoted, with '"' and '\' escaped.
std::string pg_element(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

std::string hex_literal(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out = "X'";
    for (unsigned char c : bytes) out.append({digits[c >> 4], digits[c & 15]});
    return out + "'";
}

// "(X'6b6579', 42)" for a row's primary key.
std::string mysql_key(const CounterRow& r) { return "(" + hex_literal(r.key) + ", " + std::to_string(r.window) + ")"; }

const char* const k_pg_schema[] = {
    "CREATE TABLE IF NOT EXISTS relaypermit_budget_counters ("
    " counter_key text NOT NULL,"
    " win bigint NOT NULL,"
    " n bigint NOT NULL,"
    " expires_us bigint NOT NULL,"
    " PRIMARY KEY (counter_key, win))",
    "CREATE INDEX IF NOT EXISTS relaypermit_budget_counters_expires ON relaypermit_budget_counters (expires_us)",
};

const char* const k_mysql_schema[] = {
    "CREATE TABLE IF NOT EXISTS relaypermit_budget_counters ("
    " counter_key VARBINARY(255) NOT NULL,"
    " win BIGINT NOT NULL,"
    " n BIGINT UNSIGNED NOT NULL,"
    " expires_us BIGINT NOT NULL,"
    " PRIMARY KEY (counter_key, win),"
    " KEY relaypermit_budget_counters_expires (expires_us)"
    ") ENGINE=InnoDB",
};

}  // namespace

core::Result<CounterRow> parse_row(const std::array<std::string_view, 4>& cols) {
    CounterRow r;
    r.key = std::string(cols[0]);
    std::int64_t expires_us = 0;
    if (!parse_number(cols[1], r.window) || !parse_number(cols[2], r.count) || !parse_number(cols[3], expires_us))
        return core::make_error("unreadable budget counter row for key '" + r.key + "'");
    r.expires = core::from_unix_micros(expires_us);
    return r;
}

core::Result<std::vector<CounterRow>> in_order(std::span<const CounterRow> deltas,
                                               const std::vector<CounterRow>& stored) {
    std::map<Key, std::uint64_t> totals;
    for (const auto& s : stored) totals[{s.key, s.window}] = s.count;
    std::vector<CounterRow> out;
    out.reserve(deltas.size());
    for (const auto& d : deltas) {
        const auto it = totals.find({d.key, d.window});
        if (it == totals.end())
            return core::make_error("budget counter '" + d.key + "' window " + std::to_string(d.window) +
                                    " was not written");
        out.push_back({d.key, d.window, it->second, d.expires});
    }
    return out;
}

core::Result<std::vector<CounterRow>> in_chunks(std::span<const CounterRow> deltas, const AddFn& add) {
    std::vector<CounterRow> out;
    out.reserve(deltas.size());
    for (std::size_t at = 0; at < deltas.size(); at += k_chunk) {
        auto part = add(deltas.subspan(at, std::min(k_chunk, deltas.size() - at)));
        if (!part) return part.error();
        out.insert(out.end(), part->begin(), part->end());
    }
    return out;
}

const char* const k_pg_schema_present =
    "SELECT to_regclass('relaypermit_budget_counters') IS NOT NULL"
    " AND to_regclass('relaypermit_budget_counters_expires') IS NOT NULL";

std::span<const char* const> pg_schema() { return k_pg_schema; }

const char* const k_pg_add =
    "INSERT INTO relaypermit_budget_counters AS c (counter_key, win, n, expires_us)"
    " SELECT k, w, sum(d)::bigint, max(e) FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])"
    " AS u(k, w, d, e) GROUP BY k, w ORDER BY k, w"
    " ON CONFLICT (counter_key, win) DO UPDATE SET n = c.n + excluded.n,"
    " expires_us = greatest(c.expires_us, excluded.expires_us)"
    " RETURNING counter_key, win, n, expires_us";

const char* const k_pg_snapshot =
    "SELECT counter_key, win, n, expires_us FROM relaypermit_budget_counters WHERE expires_us > $1::bigint";

const char* const k_pg_purge = "DELETE FROM relaypermit_budget_counters WHERE expires_us <= $1::bigint";

std::vector<std::string> pg_add_params(std::span<const CounterRow> deltas) {
    std::vector<std::string> arrays(4, "{");
    for (const auto& [key, d] : coalesce(deltas)) {
        const bool first = arrays[0].size() == 1;
        arrays[0] += (first ? "" : ",") + pg_element(d.key);
        arrays[1] += (first ? "" : ",") + std::to_string(d.window);
        arrays[2] += (first ? "" : ",") + std::to_string(d.count);
        arrays[3] += (first ? "" : ",") + std::to_string(core::to_unix_micros(d.expires));
    }
    for (auto& a : arrays) a += '}';
    return arrays;
}

const char* const k_mysql_schema_present =
    "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
    " AND table_name = 'relaypermit_budget_counters') = 1";

std::span<const char* const> mysql_schema() { return k_mysql_schema; }

std::string mysql_add(std::span<const CounterRow> deltas) {
    std::string values;
    for (const auto& [key, d] : coalesce(deltas)) {
        values += values.empty() ? "" : ", ";
        values += "(" + hex_literal(d.key) + ", " + std::to_string(d.window) + ", " + std::to_string(d.count) + ", " +
                  std::to_string(core::to_unix_micros(d.expires)) + ")";
    }
    return "INSERT INTO relaypermit_budget_counters (counter_key, win, n, expires_us) VALUES " + values +
           " ON DUPLICATE KEY UPDATE n = n + VALUES(n), expires_us = GREATEST(expires_us, VALUES(expires_us))";
}

std::string mysql_select_locked(std::span<const CounterRow> deltas) {
    std::string keys;
    for (const auto& [key, d] : coalesce(deltas)) keys += (keys.empty() ? "" : ", ") + mysql_key(d);
    return "SELECT counter_key, win, n, expires_us FROM relaypermit_budget_counters WHERE (counter_key, win) IN (" +
           keys + ") FOR UPDATE";
}

std::string mysql_snapshot(core::Time now) {
    return "SELECT counter_key, win, n, expires_us FROM relaypermit_budget_counters WHERE expires_us > " +
           std::to_string(core::to_unix_micros(now));
}

std::string mysql_purge(core::Time now) {
    return "DELETE FROM relaypermit_budget_counters WHERE expires_us <= " + std::to_string(core::to_unix_micros(now));
}

}  // namespace rp::store::sql_counters
