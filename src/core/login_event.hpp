// LoginEvent and Permit: what flows from sources to the store, and what the store keeps.
//
// A LoginEvent is one successful POP3/IMAP login as a source saw it: the client address, the user
// as logged, which pattern set (server) recognised it, where it came from, and when it happened.
// A Permit is the store's record for a client network: who last logged in from it, and until
// when relay is allowed. Expiry only ever moves later (see PermitStore::grant).
// Thread-safety: plain value types.
#pragma once

#include <string>

#include "core/address.hpp"
#include "core/time.hpp"

namespace rp::core {

struct LoginEvent {
    Address ip;
    std::string user;    // as logged; may be empty
    std::string server;  // pattern set name, e.g. "dovecot"; "control" for direct pushes
    std::string source;  // source name, e.g. "file:/var/log/mail.log"
    Time time;           // when the login happened (already clamped to the reading time)
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
