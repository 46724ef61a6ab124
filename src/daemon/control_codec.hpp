// ControlCodec: the control protocol's requests as typed values, and the one table of commands.
//
// Pure: parse_control_request turns one request line into a ControlRequest or an error text that
// the server sends back as {"ok":false,"error":...}; it never throws and never overflows. The
// wire format is documented in control_protocol.hpp. Every field is type-checked:
//   cmd     string, one of the table's names
//   ip      string holding an IPv4 or IPv6 address
//   user    string, at most k_control_max_user bytes, no control characters (it reaches the log)
//   ttl_ms  integer, 1 .. k_control_max_ttl_ms (the grant policy then applies `max_ttl`);
//           fractions, exponents, negatives, strings and null are errors
//   format  string, one of imports::import_formats() (import)
//   entries array of 1 .. k_control_max_import objects {"ip", optional "user", at most one of
//           "login" / "expires" (whole epoch seconds, 0 .. 2^40)}, no other keys (import)
//   dry_run boolean (import);  static  boolean (list: the static allow list instead)
//   network string holding a CIDR ("192.0.2.0/24") or a bare address (list's filter)
//   source  string, at most k_control_max_source bytes, no control characters (list's filter)
// A field a command does not take, or a missing field it needs, is an error that names it.
// Thread-safety: plain functions over immutable tables.
// Security: requests come from local users the daemon let in (SO_PEERCRED), still untrusted:
// this is the only place their text is read (fuzz/control_codec_fuzz.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "imports/import_parsers.hpp"

namespace rp::daemon {

enum class ControlCmd : std::uint8_t { check, list, allow, revoke, status, import_permits };

// Fields of a request besides "cmd", as bits of ControlCommandSpec::required/optional.
enum ControlField : unsigned {
    k_field_ip = 1,
    k_field_user = 2,
    k_field_ttl = 4,
    k_field_format = 8,
    k_field_entries = 16,
    k_field_dry_run = 32,
    k_field_static = 64,
    k_field_network = 128,
    k_field_source = 256,
};

inline constexpr std::size_t k_control_max_user = 256;
inline constexpr std::size_t k_control_max_source = 1024;
// 2^40 ms (about 34 years), the longest duration the config accepts: far below what overflows
// microseconds (9.2e15 ms), so `now + ttl` is always defined; max_ttl is checked after this.
inline constexpr std::int64_t k_control_max_ttl_ms = std::int64_t{1} << 40;
// Entries per `import` request: 500 entries of ~100 bytes stay well inside k_control_max_line.
inline constexpr std::size_t k_control_max_import = 500;

struct ControlCommandSpec {
    std::string_view name;
    ControlCmd cmd;
    unsigned required;    // ControlField bits the request must carry
    unsigned optional;    // ControlField bits it may carry
    bool one_of = false;  // exactly one of `optional` is required (revoke: ip or user)
    std::string_view summary;
};

// The command table: one row per command (the daemon's handler table has the same rows).
std::span<const ControlCommandSpec> control_commands();
const ControlCommandSpec* find_control_command(std::string_view name);

struct ControlRequest {
    ControlCmd cmd = ControlCmd::status;
    std::optional<core::Address> ip;
    std::optional<std::string> user;
    std::optional<core::Duration> ttl;  // from ttl_ms
    std::string format;                           // import
    std::vector<imports::ImportEntry> entries;    // import
    bool dry_run = false;                         // import
    bool static_list = false;                     // list --static
    std::optional<core::Cidr> network;  // list's filters
    std::optional<std::string> source;
};

// One request line (without its '\n'). Errors are one sentence for the client, e.g.
// "field 'ip' must be a string" or "unknown command 'x'".
core::Result<ControlRequest> parse_control_request(std::string_view line);

// The field checks, shared with the spool files (login_spool.hpp) that carry the same fields.
core::Result<core::Address> parse_ip_field(const nlohmann::json& v);   // "ip"
core::Result<std::string> parse_user_field(const nlohmann::json& v);   // "user"
core::Result<core::Duration> parse_ttl_field(const nlohmann::json& v);  // "ttl_ms"

// A reply object as one line ending in '\n'. Text that is not valid UTF-8 (user names from logs)
// is replaced, never thrown on.
std::string encode_control_reply(const nlohmann::json& reply);
// {"ok":false,"error":message} as one line.
std::string control_error_reply(std::string_view message);

}  // namespace rp::daemon
