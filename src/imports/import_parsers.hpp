// Import parsers: the live state of older relay-permit systems as entries for `relaypermit import`.
//
// Pure: each function turns what a reader took from disk (Berkeley DB records, a file name and its
// mtime, a text file, SQL rows) into ImportEntry values plus counts of what it could not use. The
// file access is in import_files.hpp; the daemon applies its PermitPolicy to every entry (ignore,
// max_ttl, ipv6_prefix) when the CLI sends them over the control socket. A bad entry is counted
// (and a few of them quoted) and the rest goes on: an import never stops at one.
// Formats (docs/import.md has the systems behind them):
//   pop-before-smtp  BDB records key = address (maybe with a trailing NUL), value "ok": no time,
//                    each gets now + ttl (what pop-before-smtp does with its DB at start)
//   drac             BDB records key = address, maybe "/32" or "/128", maybe a trailing NUL;
//                    value = expiry as decimal epoch seconds (maybe a trailing NUL)
//   relay-ctrl       a directory entry named by the address; its mtime is the login time
//   sendmail-access  makemap text lines `KEY VALUE`; only `RELAY` values of address keys
//                    ("192.0.2.1", "connect:192.0.2.1", "IPv6:2001:db8::1",
//                    "connect:IPv6:2001:db8::1") are entries, any other line is counted as skipped
//   sql              rows (address, time[, user]); time as epoch seconds (fractions allowed) or
//                    "YYYY-MM-DD HH:MM:SS[.frac]" in UTC, optionally with "+00", "+00:00" or "Z"
//   static           smtp-poplock's static_allowed: one address or network per line (CIDR,
//                    or an IPv4 prefix on octet boundaries written "192.0.2." or "192.0.2"),
//                    '#' comments; the result is allow_file lines, not permits
// Thread-safety: pure functions.
// Security: everything parsed here is file or database content of another program; nothing is
// trusted: lengths are bounded, addresses must parse completely, times must be in range.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"
#include "core/time.hpp"

namespace rp::imports {

using Record = std::pair<std::string, std::string>;  // key, value (exact bytes)

// What an entry's time means.
enum class EntryTime : std::uint8_t {
    none,     // no time: now + ttl
    login,    // `time` is the login time: time + ttl
    expires,  // `time` is the expiry itself
};

struct ImportEntry {
    core::Address ip;
    std::string user;  // empty when the format has none
    EntryTime kind = EntryTime::none;
    core::Time time{};  // meaningful unless kind == none
    friend bool operator==(const ImportEntry&, const ImportEntry&) = default;
};

struct ImportBatch {
    std::vector<ImportEntry> entries;
    std::uint64_t malformed = 0;        // entries that could not be read
    std::uint64_t skipped = 0;          // well-formed but not ours (sendmail-access: REJECT, domains)
    std::vector<std::string> examples;  // the first few malformed entries, escaped, for the report
    void bad(std::string what);         // counts one malformed entry and keeps a few examples
};

inline constexpr std::size_t k_max_examples = 5;

// The formats `relaypermit import FORMAT` knows, and whether one is known.
std::span<const std::string_view> import_formats();
bool known_import_format(std::string_view format);

// An address as these systems write it: the text, without a trailing NUL, "/32" or "/128".
std::optional<core::Address> parse_import_address(std::string_view text);

ImportBatch parse_pop_before_smtp(std::span<const Record> records);
ImportBatch parse_drac(std::span<const Record> records);
// One relay-ctrl directory entry; nullopt for names that are not addresses (the caller counts).
std::optional<ImportEntry> parse_relay_ctrl_entry(std::string_view name, core::Time mtime);
ImportBatch parse_sendmail_access(std::string_view text);
// Rows of (address, time[, user]); a NULL column arrives as nullopt.
ImportBatch parse_sql_rows(std::span<const std::vector<std::optional<std::string>>> rows);
// A time as the SQL recipe's column holds it (see above); nullopt if unreadable.
std::optional<core::Time> parse_sql_time(std::string_view text);

struct StaticAllow {
    std::vector<core::Cidr> networks;
    std::uint64_t malformed = 0;
    std::vector<std::string> examples;
};
StaticAllow parse_static_allowed(std::string_view text);

}  // namespace rp::imports
