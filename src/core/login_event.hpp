// LoginEvent and Permit: what flows from sources to the store, and what the store keeps.
//
// A LoginEvent is one successful POP3/IMAP login as a source saw it: the client address, the user
// as logged, which pattern set (server) recognised it, where it came from, and when it happened.
// A Permit is the store's record for a client network: who last logged in from it, and until
// when relay is allowed. Expiry only ever moves later (see PermitStore::grant).
// Thread-safety: plain value types.
#pragma once

#include <cstdint>
#include <string>

#include "core/address.hpp"
#include "core/time.hpp"

namespace rp::core {

// Where a LoginEvent's time came from. A time taken from the line (or from the transport that
// carried it, such as journald's or an RFC 5424 header's) can be trusted to age a backlog; the
// reading time cannot: an old line read at a first start would get a fresh permit.
enum class TimeOrigin : std::uint8_t {
    line,     // parsed from the line itself or its framing
    push,     // a direct push (control socket, exec chain, auth policy, drop-in protocol): "now"
    reading,  // the line had no time the parser understands; the reading time stands in
};

// What a LoginEvent reports. A session_end carries no address: it names the session (server +
// `session`) a login opened, which the daemon's SessionTable maps back to its network.
enum class LoginKind : std::uint8_t {
    login,        // a successful login (opens a session when `session` is set and max_lifetime is)
    session_end,  // the server's end line for `session` (Dovecot "Disconnected: ..."), or a
                  // push protocol's logout (whoson LOGOUT)
};

struct LoginEvent {
    Address ip;
    std::string user;    // as logged; may be empty
    std::string server;  // pattern set name, e.g. "dovecot"; "control" for direct pushes
    std::string source;  // source name, e.g. "file:/var/log/mail.log"
    Time time;           // when the login happened (already clamped to the reading time)
    TimeOrigin time_origin = TimeOrigin::line;
    // Read from a backlog (a file read from its start or its checkpoint before the source reached
    // the end) rather than live. An event with time_origin == reading from a backlog never grants.
    bool backlog = false;
    LoginKind kind = LoginKind::login;
    // The server's id for the session this login opened or this end closes ("" = none: the
    // permit lives ttl after the login). Dovecot: the `session=<...>` value; a push source may
    // use any stable id of its own (e.g. "whoson").
    std::string session{};  // (a default member initializer: brace-initialising callers may omit it)
};

struct Permit {
    Cidr network;        // a host route, or an IPv6 prefix when ipv6_prefix < 128
    std::string user;
    std::string source;
    Time granted;        // time of the login that set `expires`
    Time expires;
};

// A source's resume position, opaque to the store: key "file:/var/log/mail.log", value JSON.
struct Checkpoint {
    std::string key;
    std::string value;
};

}  // namespace rp::core
