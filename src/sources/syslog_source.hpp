// SyslogSource (`type = "syslog"`): a syslog receiver. Senders such as rsyslog's omfwd forward
// whole syslog messages ("<PRI>..." RFC 3164 or RFC 5424); each message becomes one line handed
// to the LineParser with `now` = arrival time (the matcher parses PRI/timestamps itself and clamps
// the sender's time to `now`). Events are delivered with an empty checkpoint key: a network
// receiver has no resume position.
//
// Listeners (`listen`): "udp:HOST:PORT", "tcp:HOST:PORT" or "HOST:PORT" (RFC 6587 octet counting
// and LF framing, detected per frame on the same connection), "unix:/path" (a unix DATAGRAM
// socket like /dev/log, mode 0666, removed again on destruction), "tls:HOST:PORT" (TCP with TLS
// through GnuTLS, same framing inside; server certificate and key from tls_cert/tls_key; with
// tls_ca, clients must present a certificate that tls_ca verifies, else the connection is closed
// and counted `untrusted`). Network peers must match `allow_from` (empty: loopback only,
// 127.0.0.0/8 and ::1); refused peers are counted `untrusted` and logged with a rate limit.
// A connection still handshaking after handshake_timeout is closed.
//
// Never blocks: non-blocking sockets on the EventLoop, per-connection buffers bounded by the frame
// limit (64 KiB), a bounded read budget per wake-up. If deliver() fails, the events are kept (at
// most max_pending_events; beyond that they are dropped and counted) and offered again after
// retry_delay, in order.
// TCP/TLS connections are accepted by util::Acceptor (util/acceptor.hpp): with max_connections
// open, a new sender closes the longest-idle connection (rsyslog reconnects; before, idle
// connections locked new senders out); a non-loopback peer holds at most
// max_connections_per_peer; a connection that delivers no complete message for idle_timeout is
// closed (bytes that do not complete a message do not renew it); accepting backs off while
// descriptors run out.
// Received lines pass the parser's candidate filter (the literal prefilter) before parsing:
// noise is counted `filtered` and never queued anywhere; a datagram the kernel dropped for a full
// receive buffer is counted `dropped` (SO_RXQ_OVFL, udp).
//
// Thread-safety: loop thread only (like every Source).
// Security: all received bytes are untrusted. Oversize frames are dropped and counted; a garbage
// octet count closes that connection (malformed); peers outside allow_from are refused before a
// byte is read; a failed TLS handshake or an unverified client certificate counts `untrusted`.
// Listeners are bound and TLS files read by open()/open_syslog_source(), not by start(): open
// before dropping privileges to use a port below 1024 or a root-only key file.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/file_tail_source.hpp"  // LineParser
#include "sources/source.hpp"
#include "sources/syslog_framing.hpp"
#include "util/acceptor.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::sources {

struct SyslogOptions {
    SyslogFramingLimits framing;
    std::size_t max_connections = 256;
    std::size_t max_connections_per_peer = 16;  // non-loopback peers; rsyslog uses one
    // A stream connection without a complete message for this long is closed. rsyslog's omfwd
    // checks its connection before sending and reconnects, so closing a quiet one loses nothing.
    std::chrono::milliseconds idle_timeout{600'000};
    std::size_t read_chunk = 64 * 1024;
    // Bytes read from one connection (or datagrams from one socket) per wake-up; the rest waits
    // for the next loop iteration so other handlers (the policy service) keep running.
    std::size_t max_bytes_per_wakeup = 256 * 1024;
    std::size_t max_datagrams_per_wakeup = 256;
    std::size_t max_pending_events = 100'000;
    std::chrono::milliseconds retry_delay{1'000};
    int datagram_rcvbuf = 4 * 1024 * 1024;  // SO_RCVBUF for udp/unix listeners (best effort)
    mode_t unix_mode = 0666;
    // tls: listeners: PEM files (read by open(), i.e. before privileges are dropped).
    std::string tls_cert, tls_key, tls_ca;
    std::chrono::milliseconds handshake_timeout{30'000};
};

class SyslogSource final : public LineSource {
public:
    // Parses and binds every listener. Errors: a bad or unsupported endpoint, bind failure.
    // REQUIRES: `sink` and `clock` outlive the source; `listen` is not empty.
    static core::Result<std::unique_ptr<SyslogSource>> open(std::string name, const std::vector<std::string>& listen,
                                                            std::vector<core::Cidr> allow_from, LineParser parser,
                                                            LoginSink& sink, const core::Clock& clock,
                                                            SyslogOptions opts = {});
    ~SyslogSource() override;
    SyslogSource(const SyslogSource&) = delete;
    SyslogSource& operator=(const SyslogSource&) = delete;

    // Registers the listeners with `loop`. REQUIRES: not started.
    core::Status start(util::EventLoop& loop) override;
    // Delivers pending events (best effort), unregisters, closes connections; listeners stay bound.
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override;

    // The bound listeners in canonical form with their real ports ("tcp:127.0.0.1:40123",
    // "udp:[::1]:514", "unix:/run/x.sock"), in `listen` order.
    std::vector<std::string> local_endpoints() const;
    std::size_t connections() const { return conns_.size(); }
    // Stream connection bookkeeping (evictions, idle closes, accept back-off); zeros before start.
    util::AcceptorStats connection_stats() const;
    std::size_t pending_events() const { return pending_.size(); }

private:
    enum class Kind { udp, tcp, unix_dgram };
    struct TlsContext;  // GnuTLS credentials (syslog_source.cpp)
    struct TlsSession;  // one GnuTLS session
    struct TlsSessionDeleter {
        void operator()(TlsSession* s) const;
    };
    struct TlsContextDeleter {
        void operator()(TlsContext* c) const;
    };
    struct Listener {
        Kind kind;
        bool tls = false;
        std::string text;  // canonical endpoint, for messages
        std::string unix_path;
        util::UniqueFd fd;
        std::uint32_t kernel_drops = 0;  // the socket's SO_RXQ_OVFL count seen so far
    };
    struct Conn {
        util::UniqueFd fd;
        std::string peer;
        StreamFramer framer;
        std::unique_ptr<TlsSession, TlsSessionDeleter> tls;  // null: plain TCP
        bool handshaking = false;
        util::EventLoop::TimerId handshake_timer = 0;
        util::EventLoop::TimerId continue_timer = 0;
    };

    SyslogSource(std::string name, std::vector<core::Cidr> allow_from, LineParser parser, LoginSink& sink,
                 const core::Clock& clock, SyslogOptions opts);
    core::Status bind_listener(const std::string& text);
    void on_open(std::uint64_t id, util::UniqueFd fd, const util::Peer& peer, bool tls);
    void tune_datagram_socket(Listener& l);
    void on_datagrams(Listener& l);
    void note_kernel_drops(Listener& l, msghdr& msg);
    void on_conn(std::uint64_t id);
    bool read_conn(Conn& c, std::size_t& budget);
    bool tls_handshake(std::uint64_t id, Conn& c);
    core::Status load_tls();
    void close_conn(std::uint64_t id, bool release = true);
    void process_lines();
    void flush_pending();
    void on_retry();

    util::PeerFilter filter_;
    SyslogOptions opts_;

    util::EventLoop* loop_ = nullptr;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unique_ptr<util::Acceptor> acceptor_;  // the tcp/tls listeners, while started
    util::AcceptorStats accept_seen_;             // what earlier acceptors counted (restarts)
    std::unique_ptr<TlsContext, TlsContextDeleter> tls_;
    std::map<std::uint64_t, std::unique_ptr<Conn>> conns_;
    std::vector<char> buf_;
    std::string lines_;
    std::string candidates_;  // the lines of lines_ the prefilter keeps
    std::vector<core::LoginEvent> events_;
    std::vector<core::LoginEvent> pending_;  // not yet delivered (deliver() failed)
    util::EventLoop::TimerId retry_timer_ = 0;

    FramingStats framing_;
    std::uint64_t matches_ = 0;
    std::uint64_t untrusted_ = 0;
    std::uint64_t dropped_other_ = 0;  // refused connections (limit), pending overflow, truncated
    std::uint64_t kernel_dropped_ = 0;  // datagrams the kernel dropped (SO_RXQ_OVFL), of any kind
    std::uint64_t filtered_ = 0;        // lines the prefilter showed to hold no login
    util::RateLimitedLog warn_;
};

// Opens GnuTLS if it is not yet (util/dynlib.hpp): what a tls: listener needs. For checks that
// come before any listener is set up (`config check`, a reload before it closes old listeners).
core::Status load_tls_library();

// The factory the daemon calls for `type = "syslog"`: binds cfg.listen with cfg.allow_from.
core::Result<std::unique_ptr<Source>> open_syslog_source(const config::SourceConfig& cfg, LineParser parser,
                                                         LoginSink& sink, const core::Clock& clock);

}  // namespace rp::sources
