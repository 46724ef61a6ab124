// StreamServer: the socket half shared by the stream frontends (Postfix policy, socketmap, Exim
// readsocket, OpenSMTPD table-socketmap). It binds stream endpoints, accepts connections on the
// daemon's EventLoop, gives each connection its own StreamSession (the protocol state) and writes
// what the session answers. The protocols live in the sessions; this file is only the I/O.
//
// A connection idle for `idle_timeout` is closed by one periodic sweep;
// beyond `max_clients` open connections new ones are accepted and closed at once (counted as
// `refused`); a connection whose peer does not read stops being read once 64 KiB of replies are
// pending. A session that reports malformed input has its connection closed (the replies to
// earlier requests are flushed first, best effort) with a rate-limited warning naming the peer.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are untrusted. Memory per connection is bounded by the session's own limits
// plus 64 KiB of pending output; unix sockets are created mode 0666 (the directory guards access).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "frontends/permit_oracle.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::frontends {

// The protocol state of one connection.
class StreamSession {
public:
    enum class Next : std::uint8_t {
        more,       // keep the connection; read more
        close,      // send what is in `out`, then close (e.g. one-shot protocols)
        malformed,  // protocol violation: send what is in `out`, close, count and log it
    };
    virtual ~StreamSession() = default;
    // `in` is what one read(2) returned (never empty). Append replies to `out`.
    virtual Next on_data(std::string_view in, std::string& out) = 0;
    // The peer shut down its sending side. Whatever is appended to `out` is sent (best effort)
    // before the connection closes.
    virtual void on_eof(std::string& out) { (void)out; }
    // Why the last on_data returned malformed, for the log.
    virtual std::string_view error_text() const { return "malformed request"; }
};

struct StreamLimits {
    // REQUIRES: > 0.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
    std::size_t max_clients = 4096;
};

class StreamServer {
public:
    // Makes the session of a new connection; sessions count requests/permitted in `counters`.
    using SessionFactory = std::function<std::unique_ptr<StreamSession>(FrontendCounters& counters)>;

    // `service` names the frontend in logs and errors ("socketmap"). `unix_only`: refuse TCP
    // endpoints in listen(). `protocol` names the protocol in the error for a udp endpoint
    // ("the policy protocol"). Does not listen yet; `loop` must outlive the server.
    StreamServer(util::EventLoop& loop, std::string service, StreamLimits limits, SessionFactory factory,
                 bool unix_only = false, std::string protocol = "the protocol");
    ~StreamServer();  // close()
    StreamServer(const StreamServer&) = delete;
    StreamServer& operator=(const StreamServer&) = delete;

    // Same contract as PolicyFrontend::listen: all or nothing, udp refused, port 0 picks a port,
    // may be called again after close().
    core::Status listen(const std::vector<std::string>& endpoints);
    // Stops listening (removing our unix socket files) and closes every connection. Idempotent.
    void close();
    std::vector<std::string> local_endpoints() const;
    FrontendCounters counters() const;

private:
    struct Listener;
    struct Connection;

    void on_accept(Listener& l);
    void on_connection_event(Connection& c, std::uint32_t events);
    bool read_and_answer(Connection& c);  // false when the connection has been closed
    bool flush(Connection& c);            // false on a write error
    void update_interest(Connection& c);
    void close_connection(Connection& c);
    void schedule_sweep();
    void sweep();

    util::EventLoop& loop_;
    std::string service_;
    StreamLimits limits_;
    SessionFactory factory_;
    bool unix_only_;
    std::string protocol_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::vector<std::unique_ptr<Connection>> connections_;  // Connection::index is the slot
    std::unique_ptr<char[]> read_buffer_;
    util::EventLoop::TimerId sweep_timer_ = 0;
    bool sweep_scheduled_ = false;
    FrontendCounters counters_;
    util::RateLimitedLog malformed_log_;
    util::RateLimitedLog overload_log_;
};

}  // namespace rp::frontends
