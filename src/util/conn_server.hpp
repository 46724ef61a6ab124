// ConnServer: a request/response stream server on the EventLoop, over an Acceptor
// (acceptor.hpp: peer filter, caps, idle rule, descriptor back-off). Each connection gets its
// own StreamSession (the protocol state); ConnServer reads, feeds the session, and writes what
// it answers. Used by the MTA frontends (frontends/stream_server.hpp) and the Dovecot auth policy
// source; the daemon's control socket can use it as it is (below).
//
// Complete requests: a session that appends a reply has completed a request; that is what
// renews the connection's idle deadline (Acceptor::touch). Every protocol served here answers
// each request, so a peer that sends bytes without ever completing a request is closed
// `idle_timeout` after it connected or was last answered.
//
// Output caps, per connection: above `soft_output` unsent bytes the connection is no longer read
// (stats.paused counts it) until its peer has read enough to bring it below again; input is fed
// to the session in slices of at most 4 KiB and the slices of a read that remain when the cap is
// reached wait (at most one read, 64 KiB) until then, so a protocol that answers a short request
// with a longer reply (OpenSMTPD: 10 bytes for an empty line) cannot push a connection far past
// the cap. Above `hard_output` the connection is closed at once (stats.overflow). A paused peer
// completes no request, so the idle rule closes it if it never reads.
//
// Replies produced on demand (a listing of any length, or requests a session holds back to keep
// within its own output budget): while the session says producing(), the connection is not fed
// nor read, and produce() is called whenever the unsent output is below `soft_output`, a few
// times per loop turn at most (k_produce_rounds). So a reply is generated only as fast as the
// peer drains it (memory per connection stays at the cap whatever the reply's length), and each
// loop turn does a bounded amount of it (lookups on other connections are never stalled). A peer
// that stops reading stops the production; the idle rule closes it.
//
// Serving a control socket: bind the unix socket yourself (mode, group), then
//     ConnServer control(loop, "control", {{.max_connections = 64, .max_per_peer = 0,
//                        .idle_timeout = 60s}}, PeerFilter::any(), factory, check);
//     control.adopt(std::move(bound_listener));
// where `check(fd, peer)` tests peer.cred (SO_PEERCRED: uid, gid, pid), may send a one-line
// refusal with send(MSG_DONTWAIT), and returns false to close; the factory gets the same Peer
// (its cred says who is asking) and returns the line-per-command session. Nothing blocks: a
// client that does not read its replies is paused, then closed.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are untrusted. Memory per connection is bounded by the session's own limits,
// 64 KiB of read-but-unfed input and `hard_output`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "util/acceptor.hpp"
#include "util/endpoint.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"

namespace rp::util {

// The protocol state of one connection.
class StreamSession {
public:
    enum class Next : std::uint8_t {
        more,       // keep the connection; read more
        close,      // send what is in `out`, then close (e.g. one-shot protocols)
        malformed,  // protocol violation: send what is in `out`, close, count and log it
    };
    virtual ~StreamSession() = default;
    // `in` is the next piece of the byte stream (never empty; requests may span pieces).
    // Append replies to `out`.
    virtual Next on_data(std::string_view in, std::string& out) = 0;
    // The peer shut down its sending side. Whatever is appended to `out` is sent (best effort)
    // before the connection closes.
    virtual void on_eof(std::string& out) { (void)out; }
    // True while the session has output to produce on demand (see the file comment); the
    // connection is then neither fed nor read.
    virtual bool producing() const { return false; }
    // Appends the next piece of output: bounded work (and bytes) per call. Called only while
    // producing() and the unsent output is below soft_output.
    virtual Next produce(std::string& out) {
        (void)out;
        return Next::more;
    }
    // Why the last on_data returned malformed, for the log.
    virtual std::string_view error_text() const { return "malformed request"; }
};

struct ConnServerLimits {
    AcceptorLimits accept;
    std::size_t soft_output = 64 * 1024;   // stop reading above this many unsent bytes
    std::size_t hard_output = 256 * 1024;  // close above this many
};

struct ConnServerStats {
    AcceptorStats accept;
    std::uint64_t active = 0;         // open connections now
    std::uint64_t malformed = 0;      // sessions that returned malformed
    std::uint64_t paused = 0;         // times a connection stopped being read (soft_output)
    std::uint64_t overflow = 0;       // connections closed past hard_output
    std::uint64_t pending_bytes = 0;  // unsent reply bytes over all connections now
    std::uint64_t peak_pending = 0;   // the most unsent bytes one connection ever held
};

class ConnServer {
public:
    using SessionFactory = std::function<std::unique_ptr<StreamSession>(const Peer& peer)>;
    using CheckHook = std::function<bool(int fd, const Peer& peer)>;

    // `service` names the server in logs and errors. Does not listen yet; `loop` must outlive
    // the server.
    ConnServer(EventLoop& loop, std::string service, ConnServerLimits limits, PeerFilter filter,
               SessionFactory factory, CheckHook check = {});
    ~ConnServer();  // close()
    ConnServer(const ConnServer&) = delete;
    ConnServer& operator=(const ConnServer&) = delete;

    // Binds every endpoint (bind_stream_listeners: all or nothing) and starts accepting. May be
    // called again after close().
    core::Status listen(const std::vector<std::string>& endpoints, std::string_view protocol, bool unix_only = false);
    // Starts accepting on a listener bound by the caller (e.g. a control socket with its own mode).
    void adopt(BoundListener listener);
    // Stops listening (removing our unix socket files) and closes every connection. Idempotent.
    void close();

    std::vector<std::string> local_endpoints() const;
    ConnServerStats stats() const;
    std::uint64_t connections_accepted() const { return acceptor_.stats().accepted; }

private:
    struct Connection;
    using ConnId = Acceptor::ConnId;

    void on_open(ConnId id, UniqueFd fd, const Peer& peer);
    void on_event(Connection& c, std::uint32_t events);
    bool read_and_answer(Connection& c);  // false when the connection has been closed
    bool feed(Connection& c, std::string_view data);  // false when closed
    bool after_session(Connection& c, StreamSession::Next next);  // false when closed
    bool pump(Connection& c);  // produce() while below the cap; false when closed
    bool flush(Connection& c);  // false on a write error
    void update_interest(Connection& c);
    void close_connection(Connection& c, bool release = true);

    EventLoop& loop_;
    std::string service_;
    ConnServerLimits limits_;
    SessionFactory factory_;
    std::vector<BoundListener> listeners_;
    std::unordered_map<ConnId, std::unique_ptr<Connection>> connections_;
    std::unique_ptr<char[]> read_buffer_;
    Acceptor acceptor_;
    ConnServerStats counts_;
    RateLimitedLog malformed_log_;
};

}  // namespace rp::util
