#include "util/acceptor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace rp::util {
namespace {

using Steady = EventLoop::Steady;

constexpr int k_accepts_per_wakeup = 64;
constexpr auto k_backoff_first = std::chrono::milliseconds(10);
constexpr auto k_backoff_max = std::chrono::milliseconds(1000);
constexpr int k_v6_peer_prefix = 64;  // one host usually owns a whole /64

const std::vector<core::Cidr>& loopback_cidrs() {
    static const std::vector<core::Cidr> cidrs = {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1")};
    return cidrs;
}

bool any_contains(const std::vector<core::Cidr>& cidrs, const core::Address& a) {
    return std::any_of(cidrs.begin(), cidrs.end(), [&](const core::Cidr& c) { return c.contains(a); });
}

bool out_of_descriptors(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

}  // namespace

std::optional<core::Address> to_address(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) {
        const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
        return core::Address::v4(ntohl(s4->sin_addr.s_addr));
    }
    if (ss.ss_family == AF_INET6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        std::array<std::uint8_t, 16> b{};
        std::memcpy(b.data(), &s6->sin6_addr, 16);
        return core::Address::v6(b);  // a v4-mapped peer becomes its IPv4 address
    }
    return std::nullopt;
}

PeerFilter PeerFilter::allow_from(std::vector<core::Cidr> cidrs) {
    PeerFilter f;
    f.allow_ = cidrs.empty() ? loopback_cidrs() : std::move(cidrs);
    return f;
}

bool PeerFilter::admits(const core::Address& a) const { return !allow_ || any_contains(*allow_, a); }

bool PeerFilter::is_loopback(const core::Address& a) { return any_contains(loopback_cidrs(), a); }

Acceptor::Acceptor(EventLoop& loop, std::string name, AcceptorLimits limits, PeerFilter filter, Hooks hooks)
    : loop_(loop), name_(std::move(name)), limits_(limits), filter_(std::move(filter)), hooks_(std::move(hooks)) {
    stats_.backoff = k_backoff_first;
}

Acceptor::~Acceptor() {
    unwatch_all();
    if (idle_timer_ != 0) loop_.cancel(idle_timer_);
}

void Acceptor::watch(int listen_fd, std::string label, int tag) {
    auto w = std::make_unique<Watched>(Watched{listen_fd, std::move(label), tag});
    Watched* raw = w.get();
    loop_.add(listen_fd, resume_timer_ == 0 ? EPOLLIN : 0u, [this, raw](std::uint32_t) { on_readable(*raw); });
    watched_.push_back(std::move(w));
}

void Acceptor::unwatch_all() {
    for (const auto& w : watched_) loop_.remove(w->fd);
    watched_.clear();
    if (resume_timer_ != 0) loop_.cancel(resume_timer_);
    resume_timer_ = 0;
}

void Acceptor::on_readable(Watched& w) {
    ++stats_.accept_wakeups;
    for (int i = 0; i < k_accepts_per_wakeup; ++i)
        if (!accept_one(w)) return;
}

bool Acceptor::accept_one(Watched& w) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    UniqueFd fd(::accept4(w.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
        if (errno == EINTR || errno == ECONNABORTED) return true;
        if (out_of_descriptors(errno)) {
            log_.log(Level::warning, "{}: accept on {}: {}; pausing accepts for {} ms", name_, w.label,
                     std::strerror(errno), stats_.backoff.count());
            pause_accepting();
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_.log(Level::warning, "{}: accept on {}: {}", name_, w.label, std::strerror(errno));
        }
        return false;
    }
    stats_.backoff = k_backoff_first;
    Peer peer;
    peer.address = to_address(ss);
    if (peer.address) {
        peer.name = peer.address->to_string();
        if (!filter_.admits(*peer.address)) {
            ++stats_.refused_filter;
            log_.log(Level::warning, "{}: refused connection from {} on {} (not in allow_from)", name_, peer.name,
                     w.label);
            return true;  // fd closes
        }
    } else {
        peer.name = "unix";
        ucred cred{};
        socklen_t clen = sizeof cred;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) peer.cred = cred;
    }
    if (hooks_.check && !hooks_.check(fd.get(), peer)) {
        ++stats_.refused_check;
        return true;
    }
    admit(std::move(fd), std::move(peer), w.tag);
    return true;
}

void Acceptor::pause_accepting() {
    ++stats_.fd_pauses;
    set_polling(false);
    const auto delay = stats_.backoff;
    stats_.backoff = std::min(stats_.backoff * 2, k_backoff_max);
    if (resume_timer_ != 0) loop_.cancel(resume_timer_);
    resume_timer_ = loop_.call_after(delay, [this] {
        resume_timer_ = 0;
        set_polling(true);
    });
}

void Acceptor::set_polling(bool on) {
    for (const auto& w : watched_) loop_.modify(w->fd, on ? EPOLLIN : 0u);
}

void Acceptor::admit(UniqueFd fd, Peer peer, int tag) {
    std::optional<core::Address> key;
    if (limits_.max_per_peer > 0 && peer.address &&
        (limits_.cap_loopback_peers || !PeerFilter::is_loopback(*peer.address)))
        key = peer.address->is_v4() ? *peer.address : peer.address->masked(k_v6_peer_prefix);
    if (key) {
        auto it = by_peer_.find(*key);
        if (it != by_peer_.end() && it->second.size() >= limits_.max_per_peer) {
            log_.log(Level::warning, "{}: {} holds {} connections (the per-peer cap); closing its longest idle", name_,
                     peer.name, it->second.size());
            evict(it->second.front(), CloseReason::peer_cap);
        }
    }
    if (slots_.size() >= limits_.max_connections && !lru_.empty()) {
        log_.log(Level::warning, "{}: {} connections open (the maximum); closing the longest idle for {}", name_,
                 slots_.size(), peer.name);
        evict(lru_.front(), CloseReason::make_room);
    }
    const ConnId id = next_id_++;
    Slot s;
    s.lru = lru_.insert(lru_.end(), id);
    s.last = Steady::now();
    if (key) {
        auto& list = by_peer_[*key];
        s.peer_key = key;
        s.peer_lru = list.insert(list.end(), id);
    }
    slots_.emplace(id, s);
    ++stats_.accepted;
    arm_idle_timer();
    hooks_.on_open(id, std::move(fd), peer, tag);
}

void Acceptor::touch(ConnId id) {
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    Slot& s = it->second;
    s.last = Steady::now();
    lru_.splice(lru_.end(), lru_, s.lru);
    if (s.peer_key) {
        auto& list = by_peer_[*s.peer_key];
        list.splice(list.end(), list, s.peer_lru);
    }
}

void Acceptor::release(ConnId id) {
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    Slot& s = it->second;
    lru_.erase(s.lru);
    if (s.peer_key) {
        auto p = by_peer_.find(*s.peer_key);
        p->second.erase(s.peer_lru);
        if (p->second.empty()) by_peer_.erase(p);
    }
    slots_.erase(it);
}

void Acceptor::evict(ConnId id, CloseReason why) {
    release(id);  // first: the owner's on_evict may call release() again, harmlessly
    switch (why) {
        case CloseReason::idle: ++stats_.closed_idle; break;
        case CloseReason::make_room: ++stats_.evicted_full; break;
        case CloseReason::peer_cap: ++stats_.evicted_peer_cap; break;
    }
    hooks_.on_evict(id, why);
}

void Acceptor::evict_all() {
    while (!lru_.empty()) {
        const ConnId id = lru_.front();
        release(id);
        hooks_.on_evict(id, CloseReason::make_room);
    }
}

// One timer for the whole table, at the longest-idle connection's deadline. touch() moves a
// connection to the back without re-arming: the timer then fires early and re-arms.
void Acceptor::arm_idle_timer() {
    if (lru_.empty()) return;
    const auto due = slots_.at(lru_.front()).last + limits_.idle_timeout;
    if (idle_timer_ != 0 && idle_timer_at_ <= due) return;
    if (idle_timer_ != 0) loop_.cancel(idle_timer_);
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - Steady::now());
    idle_timer_at_ = due;
    idle_timer_ = loop_.call_after(std::max(wait, std::chrono::milliseconds(0)), [this] { on_idle_timer(); });
}

void Acceptor::on_idle_timer() {
    idle_timer_ = 0;
    const auto now = Steady::now();
    while (!lru_.empty()) {
        const ConnId id = lru_.front();
        if (now - slots_.at(id).last < limits_.idle_timeout) break;
        log(Level::debug, "{}: closing a connection idle for {} ms", name_, limits_.idle_timeout.count());
        evict(id, CloseReason::idle);
    }
    arm_idle_timer();
}

core::Result<std::vector<BoundListener>> bind_stream_listeners(std::string_view service,
                                                               const std::vector<std::string>& endpoints,
                                                               std::string_view protocol, bool unix_only,
                                                               const ListenOptions& opts) {
    std::vector<BoundListener> fresh;
    auto fail = [&](const std::string& message) -> core::Result<std::vector<BoundListener>> {
        for (auto& l : fresh) l.remove_socket_file();
        return core::make_error(std::string(service) + ": " + message);
    };
    for (const auto& text : endpoints) {
        auto ep = parse_endpoint(text);
        if (!ep) return fail(ep.error().message);
        if (ep->kind == Endpoint::Kind::udp)
            return fail("'" + text + "': " + std::string(protocol) + " runs over TCP or unix stream sockets, not UDP");
        if (unix_only && ep->kind != Endpoint::Kind::unix_stream)
            return fail("'" + text + "': only unix:/path endpoints are supported");
        auto bound = bind_listener(*ep, opts);
        if (!bound) return fail(bound.error().message);
        fresh.push_back(std::move(*bound));
    }
    return fresh;
}

}  // namespace rp::util
