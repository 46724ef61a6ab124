// StreamServer: the socket half shared by the stream frontends (Postfix policy, socketmap, Exim
// readsocket, OpenSMTPD table-socketmap). It binds stream endpoints and serves them with a
// util::ConnServer (util/conn_server.hpp, over util::Acceptor): each connection gets its own
// StreamSession (the protocol state), and what the session answers is written back. The
// protocols live in the sessions; the I/O and every limit live in util.
//
// Limits (the rules are in util/acceptor.hpp and util/conn_server.hpp):
//  - idle: a connection that completes no request (gets no reply) for `idle_timeout` is closed;
//    bytes that do not complete a request do not renew it.
//  - full: with `max_clients` connections open, a new connection closes the longest-idle one
//    (counted `refused`); per non-loopback peer (IPv4 address, IPv6 /64) at most
//    `max_clients_per_peer`, beyond which that peer's own longest-idle connection is closed.
//  - output: above 64 KiB of unsent replies a connection is no longer read until its peer reads;
//    above 256 KiB it is closed; a paused peer that never reads is closed by the idle rule.
//  - descriptors: accepting pauses with a growing back-off while accept4 fails for lack of them.
// A session that reports malformed input has its connection closed (the replies to earlier
// requests are flushed first, best effort) with a rate-limited warning naming the peer.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are untrusted. Memory per connection is bounded by the session's own limits
// plus the output caps; unix sockets are created mode 0666 (the directory guards access).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "frontends/frontend.hpp"
#include "frontends/permit_oracle.hpp"
#include "util/conn_server.hpp"
#include "util/event_loop.hpp"

namespace rp::frontends {

// The protocol state of one connection (defined in util; the name stays for the frontends).
using StreamSession = util::StreamSession;

struct StreamLimits {
    // REQUIRES: > 0.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
    std::size_t max_clients = 4096;
    // Per non-loopback peer; a remote Postfix holds one connection per smtpd process.
    std::size_t max_clients_per_peer = 1024;
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
    // The connection-level detail behind counters(): evictions, pauses, pending output.
    util::ConnServerStats stats() const { return server_.stats(); }

private:
    static util::ConnServerLimits conn_limits(const StreamLimits& limits);

    FrontendCounters counters_;  // requests/permitted, counted by the sessions
    bool unix_only_;
    std::string protocol_;
    util::ConnServer server_;
};

// A Frontend served by a StreamServer: listen, close, endpoints and counters are the server's;
// the protocol is the session its factory makes. The concrete frontend names itself.
class StreamFrontend : public Frontend {
public:
    core::Status listen(const std::vector<std::string>& endpoints) override { return server_.listen(endpoints); }
    void close() override { server_.close(); }
    std::vector<std::string> local_endpoints() const override { return server_.local_endpoints(); }
    FrontendCounters counters() const override { return server_.counters(); }
    util::ConnServerStats stats() const { return server_.stats(); }  // evictions, pauses, pending output

protected:
    // The StreamServer's arguments (loop, service, limits, factory, unix_only, protocol).
    template <typename... Args>
    explicit StreamFrontend(Args&&... args) : server_(std::forward<Args>(args)...) {}

private:
    StreamServer server_;
};

}  // namespace rp::frontends
