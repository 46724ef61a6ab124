// sql_counters: the budget counters (store/counter_store.hpp) in the SQL engines, as
// docs/store-sql.md documents them: the statements PgsqlBackend and MysqlBackend run for
// SharedBackend's counter methods, and the conversion of their rows. No client library here:
// each backend runs the text on its own connection.
//
// One table, relaypermit_budget_counters (counter_key, win, n, expires_us), keyed by (counter_key,
// win); the same layout as the embedded store's budgets.db. An add is atomic per row against other
// daemons: PostgreSQL, one INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n RETURNING n for
// the whole batch; MySQL, INSERT ... ON DUPLICATE KEY UPDATE n = n + VALUES(n) and a locking read
// of the same rows in one transaction. Rows are written in (key, window) order, so daemons adding
// overlapping batches lock them in the same order. Expired rows (expires_us at or before now, the
// end of the window after the counted one) are left out of snapshots and deleted by purge.
// Thread-safety: pure functions and constants.
// Security: keys come from the daemon (permits it granted); still, MySQL gets them as hex
// literals and PostgreSQL as a quoted array element, so no key can change a statement.
#pragma once

#include <array>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "store/counter_store.hpp"

namespace rp::store::sql_counters {

// A result row's text columns in the order every statement here selects them:
// counter_key, win, n, expires_us. An unreadable number is an error naming the key.
core::Result<CounterRow> parse_row(const std::array<std::string_view, 4>& cols);

// The totals for `deltas`, in their order: `stored` holds one row per distinct (key, window) as
// the engine returned it (in its own order); each total carries its delta's expiry. A delta
// without its row is an error (the engine did not write it).
core::Result<std::vector<CounterRow>> in_order(std::span<const CounterRow> deltas,
                                               const std::vector<CounterRow>& stored);

// Runs `add` on successive slices of at most k_chunk deltas (a queue that grew during an outage
// would otherwise make one statement of megabytes) and concatenates the totals.
constexpr std::size_t k_chunk = 1000;
using AddFn = std::function<core::Result<std::vector<CounterRow>>(std::span<const CounterRow>)>;
core::Result<std::vector<CounterRow>> in_chunks(std::span<const CounterRow> deltas, const AddFn& add);

// PostgreSQL. k_pg_add takes pg_add_params(deltas) ($1 text[] keys, $2 bigint[] windows, $3
// bigint[] counts, $4 bigint[] expiries) and returns the rows as stored; duplicates of one
// (key, window) within a batch are summed first. k_pg_snapshot and k_pg_purge take now in
// microseconds as $1.
extern const char* const k_pg_schema_present;
std::span<const char* const> pg_schema();
extern const char* const k_pg_add;
extern const char* const k_pg_snapshot;
extern const char* const k_pg_purge;
std::vector<std::string> pg_add_params(std::span<const CounterRow> deltas);

// MySQL/MariaDB. mysql_add(deltas) is one INSERT ... ON DUPLICATE KEY UPDATE (run inside a
// transaction); mysql_select_locked(deltas) then reads the same rows FOR UPDATE.
extern const char* const k_mysql_schema_present;
std::span<const char* const> mysql_schema();
std::string mysql_add(std::span<const CounterRow> deltas);
std::string mysql_select_locked(std::span<const CounterRow> deltas);
std::string mysql_snapshot(core::Time now);
std::string mysql_purge(core::Time now);

}  // namespace rp::store::sql_counters
