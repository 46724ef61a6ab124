// Endpoint: where a listener binds or a client connects, in the one syntax used everywhere in
// the config: "HOST:PORT", "tcp:HOST:PORT", "[v6addr]:PORT", "udp:HOST:PORT", "unix:/path".
// HOST is a numeric address (no DNS: a daemon must not depend on resolvers at start-up);
// "*" means all addresses (0.0.0.0).
// Thread-safety: plain functions and value types.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "util/unique_fd.hpp"

namespace rp::util {

struct Endpoint {
    enum class Kind { tcp, udp, unix_stream };
    Kind kind = Kind::tcp;
    std::string host;  // numeric address text without brackets; empty for unix
    int port = 0;
    std::string path;  // unix only

    std::string to_string() const;  // canonical form: "tcp:127.0.0.1:10031", "unix:/path"
};

core::Result<Endpoint> parse_endpoint(std::string_view text);

struct ListenOptions {
    int backlog = 1024;
    mode_t unix_mode = 0666;  // Postfix connects as its own user; the directory guards access
};

// Binds and listens (stream) or binds (datagram); the fd is non-blocking and close-on-exec.
// A socket passed by the service manager (systemd_fds.hpp) bound to the same address is taken
// instead (a dup), so a socket unit's listener serves the configured endpoint.
// A stale unix socket file (nobody accepting) is replaced; a live one is an error. A unix socket
// is bound with util::bind_unix (fs_safe.hpp): its directory must not be a symlink nor writable by
// group or others (unless sticky), and the file is created with unix_mode, no chmod afterwards.
core::Result<UniqueFd> listen_endpoint(const Endpoint& ep, const ListenOptions& opts = {});

// A listening socket as bound: its endpoint with the port the kernel chose (when 0 was asked)
// and, for a unix socket, the identity of the file it created, so that closing removes that
// file only if it is still ours (a successor may have bound the path since).
struct BoundListener {
    UniqueFd fd;
    Endpoint endpoint;
    dev_t dev = 0;
    ino_t ino = 0;
    void remove_socket_file() const;  // unix: unlink the path if it is still the file we created
};

// listen_endpoint, recording what BoundListener holds.
core::Result<BoundListener> bind_listener(const Endpoint& ep, const ListenOptions& opts = {});

// Blocking connect with a timeout; the returned fd is blocking.
core::Result<UniqueFd> connect_endpoint(const Endpoint& ep, int timeout_ms);

// Peer address of an accepted stream socket as text ("127.0.0.2", "unix").
std::string peer_name(int fd);

}  // namespace rp::util
