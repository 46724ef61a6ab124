// ControlServer: the control socket's connections on the daemon's EventLoop. Line in, line out:
// it cuts requests at '\n', asks `answer` for each reply and writes it back; what a request means
// is the command table's business (control_codec.hpp, the daemon's handlers), not this file's.
//
// Nothing here ever waits for a client (issue 12 items 5 and 10: a client that did not read its
// replies held the loop in poll() for a second per attempt). Every socket is non-blocking; replies
// are queued per connection and written when the socket is writable. Once `max_pending_output`
// bytes are queued the connection is neither read nor answered until the client drains them, so
// a client that sends requests and never reads costs at most that much memory and no loop time.
// A connection with no progress (no byte read or written) for `idle_timeout` is closed; with
// `max_clients` open, a new one replaces the longest idle. accept() failing for lack of
// descriptors pauses accepting for 100 ms instead of spinning (item 9).
//
// Access: `authorize` is asked with the peer's SO_PEERCRED credentials before anything is read; a
// refused peer gets {"ok":false,"error":"permission denied"} (best effort) and is closed.
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are local users that passed `authorize`, still untrusted: lines are capped at
// `max_line` bytes (a longer one gets an error reply and the connection is closed), memory per
// connection at max_line + max_pending_output + one reply.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::daemon {

struct ControlPeer {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t pid = 0;
};

struct ControlServerLimits {
    std::size_t max_clients = 64;
    std::size_t max_line = 64 * 1024;
    std::size_t max_pending_output = 64 * 1024;
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
};

struct ControlServerCounters {
    std::uint64_t connections = 0;  // accepted and authorized
    std::uint64_t refused = 0;      // not authorized
    std::uint64_t requests = 0;
    std::uint64_t too_long = 0;     // lines over max_line
    std::uint64_t evicted = 0;      // closed idle, or replaced when max_clients were open
    std::uint64_t accept_pauses = 0;
    std::uint64_t active = 0;
};

class ControlServer {
public:
    using Authorize = std::function<bool(const ControlPeer&)>;
    // The reply to one request line (without its '\n'): exactly one line ending in '\n'.
    using Answer = std::function<std::string(std::string_view line, const ControlPeer&)>;

    // REQUIRES: `listener` is a listening, non-blocking unix stream socket. Starts accepting at once;
    // `loop` must outlive the server.
    ControlServer(util::EventLoop& loop, util::UniqueFd listener, Authorize authorize, Answer answer,
                  ControlServerLimits limits = {});
    ~ControlServer();  // closes the listener and every connection
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    ControlServerCounters counters() const;

private:
    struct Connection;

    void on_accept();
    void pause_accepting();
    void admit(util::UniqueFd fd);
    void on_event(Connection& c, std::uint32_t events);
    bool read_some(Connection& c);  // false: the peer is gone or broke the protocol
    void answer_lines(Connection& c);
    bool flush(Connection& c);      // false on a write error
    void update_interest(Connection& c);
    void resume_later(Connection& c);
    void close_connection(Connection& c);
    Connection* longest_idle();
    void schedule_sweep();

    util::EventLoop& loop_;
    util::UniqueFd listener_;
    Authorize authorize_;
    Answer answer_;
    ControlServerLimits limits_;
    std::vector<std::unique_ptr<Connection>> connections_;
    util::EventLoop::TimerId sweep_timer_ = 0, resume_timer_ = 0;
    ControlServerCounters counters_;
    std::uint64_t next_id_ = 0;
    util::RateLimitedLog log_;
};

}  // namespace rp::daemon
