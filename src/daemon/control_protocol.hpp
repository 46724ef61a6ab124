// Control protocol: how `relaypermit list/allow/revoke/check/status` talk to the daemon.
//
// REQUEST/REPLY FORMAT: over the unix stream socket `control_socket`, one JSON object per line
// in each direction, one reply per request, in order; a connection may carry several requests.
// Requests (the command table is daemon/control_codec.cpp; every field is type-checked there):
//   {"cmd":"check","ip":"192.0.2.1"}
//   {"cmd":"list"}   or with filters: {"cmd":"list","user":"alice","network":"192.0.2.0/24","source":"control"}
//   {"cmd":"allow","ip":"192.0.2.1","user":"alice","ttl_ms":1800000}   (user, ttl_ms optional)
//   {"cmd":"revoke","ip":"192.0.2.1"}  or  {"cmd":"revoke","user":"alice"}   (exactly one)
//   {"cmd":"status"}
//   {"cmd":"list","static":true}       (the static allow list: [{"network":...,"from":"FILE:LINE"}])
//   {"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1","expires":1790000000},
//     {"ip":"192.0.2.2","login":1790000000,"user":"alice"},{"ip":"192.0.2.3"}],"dry_run":true}
//     (ttl_ms, dry_run optional; at most k_control_max_import entries; daemon/control_import.cpp)
// Fields: ip a string holding an address; user a string of at most 256 bytes without control
// characters; network a CIDR or an address (list: permits overlapping it); source a source name
// of at most 1024 bytes without control characters (list: exactly that source); ttl_ms an integer from 1 to 2^40 (fractions, exponents, negatives and strings are
// errors), then bounded by the config's `max_ttl`. A missing, unknown or mistyped field is an
// error reply that names it; the connection stays open.
// Replies always carry "ok" (false with "error" text on failure), e.g.
//   {"ok":true,"permitted":true,"kind":"permit","user":"alice","expires":"2026-11-22T01:05:00Z"}
//   {"ok":true,"permits":[{"ip":"192.0.2.1","user":"alice","source":"file:...","granted":"...","expires":"..."}]}
//   {"ok":true,"permit":{...},"changed":true}
//   {"ok":true,"removed":1}
//   {"ok":true,"imported":2,"unchanged":0,"expired":1,"refused":1,"refusals":{"ignored":1}}
//     (a dry run adds "dry_run":true and "results":[{"ip":...,"outcome":"import","detail":...}])
//   {"ok":false,"error":"field 'ttl_ms' must be a whole number of milliseconds"}
//   {"ok":false,"error":"refused: 127.0.0.1 is in ignore (127.0.0.0/8); no permit granted","refused":"ignored"}
// The list reply is one line like the others, but of any length: the daemon produces it while
// the client reads (daemon/permit_listing.hpp), in table order; control_stream below reads it
// element by element.
// "refused" (ignored, stale, untimed_backlog, ttl_out_of_bounds) marks an `allow` the grant policy
// (daemon/permit_policy.hpp) turned down, as opposed to a malformed request.
// Limits: a request line is at most k_control_max_line bytes (a longer one gets an error reply,
// then the connection closes); the daemon stops reading a connection while 64 KiB of its replies
// are unread, and closes one with no progress for 60 s. It never waits for a client.
// Access: the daemon checks the peer's credentials (SO_PEERCRED): root, the daemon's own user,
// or a member of `control_group`.
// Security: the daemon treats requests as untrusted input from permitted local users.
// Thread-safety: control_call and control_stream are plain blocking functions (for the CLI,
// never the daemon); ReplySplitter is a plain value.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace rp::daemon {

inline constexpr std::size_t k_control_max_line = 64 * 1024;

// Why control_call failed, for callers that fall back (the spool, a read-only store).
enum class ControlFailure : std::uint8_t {
    none,
    not_running,  // nothing listens on the socket (missing file, connection refused)
    denied,       // the socket exists but we may not use it
    no_answer,    // connected, but no complete reply in time (a hung or busy daemon)
    other,
};

// Connects, sends one request, reads one reply line. The whole exchange (connect, send, read)
// must complete within timeout_ms. On failure `*failure` (if given) says why.
core::Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                          int timeout_ms, ControlFailure* failure = nullptr);

using ElementSink = std::function<void(const nlohmann::json& element)>;

// control_call for a reply of any length (list): each object element of an array member of the
// reply ("permits") goes to `on_element` as soon as it has arrived and is left out of the
// returned reply (so {"ok":true,"permits":[]} after a list). `timeout_ms` bounds connecting and
// each wait for more bytes, not the whole exchange. An element over k_control_max_element bytes
// is an error.
core::Result<nlohmann::json> control_stream(const std::string& socket_path, const nlohmann::json& request,
                                            int timeout_ms, const ElementSink& on_element,
                                            ControlFailure* failure = nullptr);

inline constexpr std::size_t k_control_max_element = 1024 * 1024;

// The pure part of control_stream: cuts one reply line, fed in pieces of any size, into the
// elements of its arrays at depth 2 and the rest (`rest()`, valid JSON once complete()).
class ReplySplitter {
public:
    // False on malformed or oversized input (error() says why); stops at the line's end.
    bool feed(std::string_view bytes, const ElementSink& on_element);
    bool complete() const { return complete_; }
    const std::string& rest() const { return rest_; }
    const std::string& error() const { return error_; }

private:
    bool fail(std::string why);
    std::vector<char> stack_;  // open '{' and '['
    std::string rest_, element_, error_;
    bool in_string_ = false, escape_ = false, capturing_ = false, after_element_ = false, complete_ = false;
};

}  // namespace rp::daemon
