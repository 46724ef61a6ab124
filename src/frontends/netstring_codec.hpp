// Netstrings and the socketmap lookup protocol (Postfix socketmap_table(5), Sendmail `K ...
// socket` maps), as a pure incremental parser and a pure decision function. No I/O;
// SocketmapFrontend does the sockets.
//
// WIRE FORMAT
//   Every request and every reply is one netstring: `LEN ":" PAYLOAD ","`, LEN decimal without
//   leading zeros (except "0"), no CR/LF around it. Request payload: `NAME SP KEY` (Postfix
//   dict_sockmap.c and Sendmail map.c both format "%s %s"). Reply payload: `OK <value>`,
//   `NOTFOUND `, `TEMP <text>`, `TIMEOUT <text>` or `PERM <text>`. Many requests per connection;
//   several may arrive in one read and one may be split at any byte.
//
// DECISIONS (socketmap_answer)
//   - NAME `access` (Sendmail's access map; compared case-insensitively; the key is lowercased
//     here too, in case the K line has -f): a key present in the admin's static entries
//     (`[socketmap] static`, makemap's text form) gets `OK <its value>` (REJECT, OK, RELAY,
//     "550 ..."): the admin's entry for a key wins over a permit, as in the sendmail-access
//     export. Otherwise only `connect:` + a permitted address gets `OK RELAY`. Accepted address forms: `connect:a.b.c.d`, `connect:[a.b.c.d]`,
//     `connect:ipv6:<v6>` (Sendmail's uncompressed form `0:0:0:0:0:0:0:1`, or compressed),
//     `connect:[ipv6:<v6>]`. Every other key (other tags such as `from:`, `to:`,
//     `srv_features:`, `tls_clt:`; untagged keys; prefixes like `connect:127.0.0` that Sendmail's
//     LookUpAddress produces; host and domain names) gets `NOTFOUND `.
//   - Any other NAME (Postfix access maps, e.g. check_client_access socketmap:...:relaypermit):
//     KEY a permitted address (a.b.c.d, IPv6 text, ::ffff:a.b.c.d, in brackets or not) gets
//     `OK OK`; anything else (client hostnames, which smtpd asks first) `NOTFOUND `.
//   - A payload without a space (no key) gets `NOTFOUND `. No reply is ever a bare `OK`
//     (Sendmail dereferences the value after OK).
//   A malformed netstring (non-digit length, leading zero, length over the limit, missing ','),
//   is an error: the connection is closed without a reply.
//
// Thread-safety: a NetstringParser is a value owned by one connection; functions are pure.
// Security: the bytes are untrusted. The parser keeps at most max_payload bytes per request
// (one std::string whose capacity is reused) and rejects a length before reading its payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frontends/permit_oracle.hpp"

namespace rp::frontends {

enum class NetstringError : std::uint8_t {
    none,
    bad_length,      // a non-digit before ':', an empty length, or a leading zero
    too_long,        // the declared length exceeds max_payload
    missing_comma,   // the byte after the payload is not ','
};

std::string_view describe(NetstringError error);

class NetstringParser {
public:
    struct Step {
        enum class Kind : std::uint8_t { need_more, payload, error };
        Kind kind = Kind::need_more;
        std::size_t consumed = 0;
    };

    // Postfix's query limit is 10000 bytes (3.12+); Sendmail keys are far shorter.
    explicit NetstringParser(std::size_t max_payload = 10000) : max_payload_(max_payload) {}

    // Consumes bytes up to the end of at most one netstring; call in a loop like
    // PolicyParser::feed. After `payload`, payload() holds it until the next feed()/reset().
    // After `error` every feed returns error (consuming nothing) until reset().
    Step feed(std::string_view input);
    std::string_view payload() const { return payload_; }
    NetstringError error() const { return error_; }
    void reset();

private:
    enum class State : std::uint8_t { length, payload, comma, failed };
    Step fail(NetstringError e, std::size_t consumed);

    std::size_t max_payload_;
    State state_ = State::length;
    std::size_t length_ = 0;
    std::size_t digits_ = 0;
    bool done_ = false;  // the last feed returned payload: clear it on the next feed
    NetstringError error_ = NetstringError::none;
    std::string payload_;
};

// Appends `LEN:payload,` to `out`.
void append_netstring(std::string_view payload, std::string& out);

// The admin's own Sendmail access entries answered beside the permits: lowercase key -> the
// reply payload ("OK REJECT"). Built once per (re)load by make_static_answers.
using StaticAnswers = std::unordered_map<std::string, std::string>;

// From makemap text records (keys already lowercased by parse_makemap): each value becomes
// `OK <value>`. A key longer than max_static_key is left out (Sendmail never asks one that long).
inline constexpr std::size_t max_static_key = 1024;
StaticAnswers make_static_answers(const std::vector<std::pair<std::string, std::string>>& records);

// The reply payload for one request payload (see DECISIONS). `permitted` is set to whether the
// answer is a positive one from a permit. The returned view is static or points into `statics`
// (valid until it is replaced). `statics` may be null (no static entries).
std::string_view socketmap_answer(std::string_view request, const PermitOracle& oracle, bool& permitted,
                                  const StaticAnswers* statics = nullptr);

// The address a Sendmail access-map key names, if it is exactly `connect:` + one address
// (see DECISIONS). `key` must be lowercase already.
std::optional<core::Address> sendmail_connect_address(std::string_view key);

}  // namespace rp::frontends
