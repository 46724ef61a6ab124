// Control protocol: how `relaypermit list/allow/revoke/check/status` talk to the daemon.
//
// REQUEST/REPLY FORMAT: over the unix stream socket `control_socket`, one JSON object per line
// in each direction; a connection may carry several requests. Requests:
//   {"cmd":"check","ip":"192.0.2.1"}
//   {"cmd":"list"}
//   {"cmd":"allow","ip":"192.0.2.1","user":"alice","ttl_ms":1800000}   (user, ttl_ms optional)
//   {"cmd":"revoke","ip":"192.0.2.1"}  or  {"cmd":"revoke","user":"alice"}
//   {"cmd":"status"}
// Replies always carry "ok" (false with "error" text on failure), e.g.
//   {"ok":true,"permitted":true,"kind":"permit","user":"alice","expires":"2026-11-22T01:05:00Z"}
//   {"ok":true,"permits":[{"ip":"192.0.2.1","user":"alice","source":"file:...","granted":"...","expires":"..."}]}
//   {"ok":true,"removed":1}
//   {"ok":false,"error":"not an IP address: 'x'"}
// Access: the daemon checks the peer's credentials (SO_PEERCRED): root, the daemon's own user,
// or a member of `control_group`.
// Security: the daemon treats requests as untrusted input from permitted local users.
// Thread-safety: control_call is a plain blocking function.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/result.hpp"

namespace rp::daemon {

inline constexpr std::size_t k_control_max_line = 64 * 1024;

// Connects, sends one request, reads one reply line. The whole exchange (connect, send, read)
// must complete within timeout_ms.
core::Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                          int timeout_ms);

}  // namespace rp::daemon
