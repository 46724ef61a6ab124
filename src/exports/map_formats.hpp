// Map formats: the pure part of the [[export]] map files (keys, static-file parsers, CDB bytes).
//
// Everything here is a function of its arguments, so the unit tests compare it with what the real
// tools (postmap, tcprules, makemap) produce for the same input. Facts verified on Debian 12:
//  - postmap cdb: keys and values WITHOUT a trailing NUL; keys lowercased.
//  - tcprules: key = the address text; value = "D\0" for deny, then "+VAR=value\0" per variable;
//    duplicate keys are all stored and tcpserver uses the first; "a.b.c.1-5" expands to 5 keys.
//  - makemap: `KEY<white>VALUE` lines, no NUL, keys lowercased (the access map has no -f).
// Security: the static files are the admin's (trusted) but are parsed strictly; a bad line is an
// error naming the line, and the exported file is then left unchanged.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"

namespace rp::exports {

// The largest `static` file an export merges (or `config check` reads): the admin's entries.
inline constexpr std::size_t k_max_static_file = 64u << 20;

using Record = std::pair<std::string, std::string>;  // key, value (exact bytes)

// Postfix check_client_access key for a permit network: the address as Postfix's smtpd prints
// it (inet_ntop: IPv4 dotted quad, IPv6 compressed lowercase). Host routes only: an IPv6 prefix
// cannot be matched reliably by Postfix's partial keys (they depend on where "::" falls).
std::optional<std::string> postfix_key(const core::Cidr& network);

// Sendmail access-map key: "connect:a.b.c.d" / "connect:ipv6:0:0:..." (Sendmail 8.15+ default
// uncompressed form). Prefixes on an octet (IPv4) or 16-bit group (IPv6) boundary are written as
// Sendmail's shortened keys ("connect:ipv6:2001:db8:0:1" for a /64); other prefixes: nullopt.
std::optional<std::string> sendmail_key(const core::Cidr& network);

// tcprules key: the address text for a host ("192.0.2.1", "2001:db8::1"); IPv4 prefixes on an
// octet boundary as "a.b.c."; other prefixes: nullopt.
std::optional<std::string> tcprules_key(const core::Cidr& network);

// OpenSMTPD file-table line (a list table of netaddr keys, `match from src <t>`): the address as
// inet_ntop writes it for a host ("192.0.2.1", "2001:db8::1"), "network/len" for a prefix
// (smtpd 6.8 accepts both for any length; checked against the real smtpd); /0: nullopt.
std::optional<std::string> opensmtpd_key(const core::Cidr& network);

// The CDB value tcprules writes for `allow,RELAYCLIENT="<relayclient>"`.
std::string tcprules_relay_value(std::string_view relayclient);

// Parses tcprules(1) input text exactly as ucspi-tcp 0.88's tcprules does (comments, trailing
// blanks, lines without ':' skipped, deny/allow, ,VAR="value" with any quote, a.b.c.X-Y ranges).
core::Result<std::vector<Record>> parse_tcprules(std::string_view text);

// Parses makemap(8) input (`KEY VALUE` lines, # comments, blank lines; keys lowercased).
// Duplicate keys are an error as with makemap without -r.
core::Result<std::vector<Record>> parse_makemap(std::string_view text);

// The bytes of a CDB file holding `records` in this order (tinycdb, same layout as djb's cdbmake).
core::Result<std::string> build_cdb(std::span<const Record> records);

// Reads all records of a CDB image, in file order (tests and `relaypermit` diagnostics).
core::Result<std::vector<Record>> read_cdb(std::string_view image);

}  // namespace rp::exports
