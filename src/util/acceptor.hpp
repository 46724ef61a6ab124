// Acceptor: the one place where a stream listener's connections are accepted, admitted and
// limited. Every stream listener of the daemon goes through it (the frontends and the Dovecot
// auth policy source through ConnServer, the syslog TCP/TLS receiver directly); the control
// socket can too (see conn_server.hpp). Model: Postfix's postscreen_endpt.c, endpoint work done
// once.
//
// What it does, in order, for each connection on a watched listening socket:
//  1. accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), at most 64 per wake-up (other handlers keep running).
//  2. Peer filter (PeerFilter): network peers outside `allow_from` are closed at once
//     (stats.refused_filter). Unix-socket peers always pass: their directory guards them.
//  3. The optional `check` hook (e.g. SO_PEERCRED on a control socket; Peer::cred is filled for
//     unix peers). false: closed at once (stats.refused_check).
//  4. Per-peer cap: a non-loopback network peer (an IPv4 address, an IPv6 /64) that already
//     holds `max_per_peer` connections loses ITS OWN longest-idle one (stats.evicted_peer_cap):
//     one remote host cannot take the whole table, nor push other hosts' connections out.
//  5. Table full (`max_connections`): the longest-idle connection of the whole table is closed
//     to make room (stats.evicted_full); the new connection is never the one refused, because
//     Postfix, Dovecot and rsyslog reconnect by themselves while a refused newcomer stays unserved.
//  6. The owner's on_open takes the descriptor.
//
// Idle rule (every connection, one timer for the whole table): a connection is idle since its
// last COMPLETE request (or since it was accepted); the owner reports a complete request with
// touch(). Bytes that do not complete a request do not count, so a peer that trickles one byte
// a second is closed `idle_timeout` after its last complete request, whatever it sends. Said
// otherwise: each request must complete within `idle_timeout` of the previous one. "Longest
// idle" in 4 and 5 uses the same clock: the connection whose last complete request is oldest.
//
// Descriptor exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM from accept4): the listeners stop being
// polled for a back-off interval (10 ms, doubling to 1 s, reset by the next successful accept),
// so the loop never spins on a listener that stays readable; connections wait in the kernel's
// backlog meanwhile. stats.accept_wakeups counts listener wake-ups and stats.fd_pauses the
// pauses: while descriptors stay exhausted, each wake-up ends in a pause.
//
// Closing: the acceptor never closes a descriptor it handed out; it calls on_evict(id) and the
// owner closes. An owner that closes a connection itself calls release(id).
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are untrusted. Memory is O(connections); per-connection I/O limits are the
// owner's (ConnServer adds output caps).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "util/endpoint.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::util {

// Which network peers may connect.
class PeerFilter {
public:
    // Every peer (the frontends: their bind address or socket directory guards access).
    static PeerFilter any() { return PeerFilter(); }
    // Only peers inside `cidrs`; an empty list means loopback only (127.0.0.0/8 and ::1), the
    // default of every `allow_from` key. This is the one place that default is written.
    static PeerFilter allow_from(std::vector<core::Cidr> cidrs);

    bool admits(const core::Address& a) const;
    static bool is_loopback(const core::Address& a);

private:
    std::optional<std::vector<core::Cidr>> allow_;  // nullopt: any
};

struct AcceptorLimits {
    std::size_t max_connections = 1024;  // REQUIRES: > 0
    // Per non-loopback network peer (IPv4 address, IPv6 /64); 0 = no per-peer cap.
    std::size_t max_per_peer = 256;
    // Loopback peers are normally exempt from max_per_peer (every local client looks alike);
    // true caps them too (tests, or every client arriving through a local proxy).
    bool cap_loopback_peers = false;
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);  // REQUIRES: > 0
};

struct Peer {
    std::optional<core::Address> address;  // network peers; nullopt on a unix socket
    std::string name;                      // "127.0.0.2", "2001:db8::1" or "unix"
    std::optional<ucred> cred;             // unix peers: SO_PEERCRED at connect time
    bool network() const { return address.has_value(); }
};

struct AcceptorStats {
    std::uint64_t accepted = 0;           // connections handed to on_open
    std::uint64_t refused_filter = 0;     // outside allow_from
    std::uint64_t refused_check = 0;      // the check hook said no
    std::uint64_t evicted_full = 0;       // closed to make room (table full)
    std::uint64_t evicted_peer_cap = 0;   // closed to make room within one peer's cap
    std::uint64_t closed_idle = 0;        // idle_timeout passed without a complete request
    std::uint64_t accept_wakeups = 0;     // listener readiness events handled
    std::uint64_t fd_pauses = 0;          // accepting paused for lack of descriptors
    std::chrono::milliseconds backoff{0};  // the pause the next exhaustion would start
};

class Acceptor {
public:
    using ConnId = std::uint64_t;
    enum class CloseReason : std::uint8_t { idle, make_room, peer_cap };

    struct Hooks {
        // REQUIRED: takes an admitted connection; `listener` is the tag given to watch().
        std::function<void(ConnId id, UniqueFd fd, const Peer& peer, int listener)> on_open;
        // REQUIRED: the acceptor closes `id`; the owner drops it now (no release() needed).
        std::function<void(ConnId id, CloseReason why)> on_evict;
        // Optional: admit this peer? May write a short refusal (non-blocking) before saying no.
        std::function<bool(int fd, const Peer& peer)> check;
    };

    // `name` labels log lines ("policy service"). `loop` must outlive the acceptor.
    Acceptor(EventLoop& loop, std::string name, AcceptorLimits limits, PeerFilter filter, Hooks hooks);
    ~Acceptor();  // unwatch_all(); descriptors handed out stay the owner's
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    // Starts accepting on a listening, non-blocking socket the caller keeps open. `label` names
    // it in log lines; `tag` is passed to on_open.
    void watch(int listen_fd, std::string label, int tag = 0);
    // Stops accepting on every watched socket (connections stay open). Idempotent.
    void unwatch_all();

    void touch(ConnId id);    // `id` completed a request: it is the most recently active now
    void release(ConnId id);  // the owner closed `id`; unknown ids are ignored
    void evict_all();         // closes every connection through on_evict (shutdown)

    std::size_t open_connections() const { return slots_.size(); }
    const AcceptorStats& stats() const { return stats_; }
    const AcceptorLimits& limits() const { return limits_; }

private:
    struct Watched {
        int fd;
        std::string label;
        int tag;
    };
    struct Slot {
        std::list<ConnId>::iterator lru;       // position in lru_ (front = longest idle)
        std::optional<core::Address> peer_key;  // capped peers only
        std::list<ConnId>::iterator peer_lru;   // position in by_peer_[*peer_key]
        EventLoop::Steady::time_point last;     // last complete request (or accept)
    };

    void on_readable(Watched& w);
    bool accept_one(Watched& w);  // false: stop for this wake-up
    void pause_accepting();
    void set_polling(bool on);
    void admit(UniqueFd fd, Peer peer, int tag);
    void evict(ConnId id, CloseReason why);
    void arm_idle_timer();
    void on_idle_timer();

    EventLoop& loop_;
    std::string name_;
    AcceptorLimits limits_;
    PeerFilter filter_;
    Hooks hooks_;
    std::vector<std::unique_ptr<Watched>> watched_;
    std::unordered_map<ConnId, Slot> slots_;
    std::list<ConnId> lru_;
    std::map<core::Address, std::list<ConnId>> by_peer_;
    ConnId next_id_ = 1;
    EventLoop::TimerId idle_timer_ = 0;
    EventLoop::Steady::time_point idle_timer_at_{};
    EventLoop::TimerId resume_timer_ = 0;
    AcceptorStats stats_;
    RateLimitedLog log_;
};

// The address of an AF_INET/AF_INET6 socket address (v4-mapped IPv6 becomes IPv4); nothing for others.
std::optional<core::Address> to_address(const sockaddr_storage& ss);

// Binds stream endpoints for a server, all or nothing: on any error nothing is left bound (unix
// socket files created so far are removed) and the message names `service` and the endpoint.
// A udp endpoint is refused with "`protocol` runs over TCP or unix stream sockets, not UDP";
// with `unix_only`, so is a TCP one. Unix sockets get `opts.unix_mode`.
core::Result<std::vector<BoundListener>> bind_stream_listeners(std::string_view service,
                                                               const std::vector<std::string>& endpoints,
                                                               std::string_view protocol, bool unix_only = false,
                                                               const ListenOptions& opts = {});

}  // namespace rp::util
