#include "sources/syslog_source.hpp"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/dynlib.hpp"
#include "util/endpoint.hpp"
#include "util/fs_safe.hpp"

namespace rp::sources {
namespace {

using core::make_error;
using util::Level;

// GnuTLS, opened by the first tls: listener (util/dynlib.hpp): other commands and daemons start
// without it and its dependencies.
#define RP_GNUTLS_FUNCTIONS(X) \
    X(gnutls_certificate_allocate_credentials) \
    X(gnutls_certificate_free_credentials) \
    X(gnutls_certificate_server_set_request) \
    X(gnutls_certificate_set_x509_key_file) \
    X(gnutls_certificate_set_x509_trust_file) \
    X(gnutls_certificate_verification_status_print) \
    X(gnutls_certificate_verify_peers2) \
    X(gnutls_credentials_set) \
    X(gnutls_deinit) \
    X(gnutls_error_is_fatal) \
    X(gnutls_handshake) \
    X(gnutls_init) \
    X(gnutls_record_check_pending) \
    X(gnutls_record_get_direction) \
    X(gnutls_record_recv) \
    X(gnutls_set_default_priority) \
    X(gnutls_strerror) \
    X(gnutls_transport_set_int2)
struct GnutlsApi {
    RP_GNUTLS_FUNCTIONS(RP_DYNLIB_DECLARE)
    gnutls_free_function* free = nullptr;  // gnutls_free is a variable that holds the function
} loaded_gnutls;
const GnutlsApi& gt = loaded_gnutls;  // filled by load_gnutls(), which load_tls() calls first

core::Status load_gnutls() {
    auto fill = [](void* lib, const std::string& soname, GnutlsApi& out) -> core::Status {
        RP_GNUTLS_FUNCTIONS(RP_DYNLIB_LOAD)
        out.free = reinterpret_cast<gnutls_free_function*>(::dlsym(lib, "gnutls_free"));
        if (out.free == nullptr) return make_error(soname + " has no gnutls_free (too old?)");
        return core::ok();
    };
    return util::load_api_once<GnutlsApi>("libgnutls.so.30", "libgnutls30", loaded_gnutls, fill);
}

std::string errno_text() { return std::strerror(errno); }

std::string local_name(int fd, const std::string& kind) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return kind + ":?";
    const auto a = util::to_address(ss);
    if (!a) return kind + ":?";
    const int port = ss.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port)
                                             : ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    const std::string host = a->is_v4() ? a->to_string() : "[" + a->to_string() + "]";
    return kind + ":" + host + ":" + std::to_string(port);
}

// A unix datagram socket at `path`; a stale socket file (nobody bound) is replaced. Bound with
// its final mode through its directory's descriptor (util/fs_safe.hpp): no chmod by path.
core::Result<util::UniqueFd> bind_unix_dgram(const std::string& path, mode_t mode) {
    util::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return make_error("socket: " + errno_text());
    if (auto bound = util::bind_unix(fd.get(), path, mode, SOCK_DGRAM); !bound) return bound.error();
    return fd;
}

}  // namespace

core::Status load_tls_library() {
    if (auto st = load_gnutls(); !st) return make_error("a tls: listener needs GnuTLS: " + st.error().message);
    return core::ok();
}

struct SyslogSource::TlsContext {
    gnutls_certificate_credentials_t cred = nullptr;
    bool require_client = false;
};

struct SyslogSource::TlsSession {
    gnutls_session_t s = nullptr;
};

void SyslogSource::TlsSessionDeleter::operator()(TlsSession* t) const {
    if (t->s != nullptr) gt.gnutls_deinit(t->s);
    delete t;
}

void SyslogSource::TlsContextDeleter::operator()(TlsContext* c) const {
    if (c->cred != nullptr) gt.gnutls_certificate_free_credentials(c->cred);
    delete c;
}

core::Status SyslogSource::load_tls() {
    if (tls_) return core::ok();
    if (opts_.tls_cert.empty() || opts_.tls_key.empty()) return make_error("a tls: listener needs tls_cert and tls_key");
    if (auto st = load_tls_library(); !st) return st;
    std::unique_ptr<TlsContext, TlsContextDeleter> ctx(new TlsContext);
    if (const int r = gt.gnutls_certificate_allocate_credentials(&ctx->cred); r < 0)
        return make_error(std::string("TLS: ") + gt.gnutls_strerror(r));
    if (const int r = gt.gnutls_certificate_set_x509_key_file(ctx->cred, opts_.tls_cert.c_str(), opts_.tls_key.c_str(),
                                                           GNUTLS_X509_FMT_PEM);
        r < 0)
        return make_error("TLS certificate " + opts_.tls_cert + " / key " + opts_.tls_key + ": " + gt.gnutls_strerror(r));
    if (!opts_.tls_ca.empty()) {
        const int n = gt.gnutls_certificate_set_x509_trust_file(ctx->cred, opts_.tls_ca.c_str(), GNUTLS_X509_FMT_PEM);
        if (n < 0) return make_error("TLS CA file " + opts_.tls_ca + ": " + gt.gnutls_strerror(n));
        if (n == 0) return make_error("TLS CA file " + opts_.tls_ca + ": no certificate in it");
        ctx->require_client = true;
    }
    tls_ = std::move(ctx);
    return core::ok();
}

SyslogSource::SyslogSource(std::string name, std::vector<core::Cidr> allow_from, LineParser parser, LoginSink& sink,
                           const core::Clock& clock, SyslogOptions opts)
    : LineSource(std::move(name), std::move(parser), sink, clock),
      filter_(util::PeerFilter::allow_from(std::move(allow_from))),
      opts_(opts) {
    buf_.resize(std::max(opts_.read_chunk, opts_.framing.max_frame_bytes + 1));
}

core::Result<std::unique_ptr<SyslogSource>> SyslogSource::open(std::string name, const std::vector<std::string>& listen,
                                                               std::vector<core::Cidr> allow_from, LineParser parser,
                                                               LoginSink& sink, const core::Clock& clock,
                                                               SyslogOptions opts) {
    if (listen.empty()) return make_error("syslog source " + name + ": no listen endpoint");
    std::unique_ptr<SyslogSource> s(
        new SyslogSource(std::move(name), std::move(allow_from), std::move(parser), sink, clock, opts));
    for (const auto& text : listen)
        if (auto st = s->bind_listener(text); !st) return make_error("syslog source " + s->name_ + ": " + st.error().message);
    return s;
}

core::Status SyslogSource::bind_listener(const std::string& text) {
    auto l = std::make_unique<Listener>();
    std::string_view rest = text;
    if (rest.starts_with("unix:")) {
        l->kind = Kind::unix_dgram;
        l->unix_path = std::string(rest.substr(5));
        if (l->unix_path.empty() || l->unix_path.front() != '/')
            return make_error("unix endpoint needs an absolute path: '" + text + "'");
        auto fd = bind_unix_dgram(l->unix_path, opts_.unix_mode);
        if (!fd) return fd.error();
        l->fd = std::move(*fd);
        l->text = "unix:" + l->unix_path;
    } else {
        if (rest.starts_with("tls:")) {
            rest.remove_prefix(4);
            l->tls = true;
            if (auto st = load_tls(); !st) return st;
        }
        auto ep = util::parse_endpoint(rest);
        if (!ep) return ep.error();
        if (ep->kind == util::Endpoint::Kind::unix_stream || (l->tls && ep->kind != util::Endpoint::Kind::tcp))
            return make_error("bad endpoint '" + text + "'");
        l->kind = ep->kind == util::Endpoint::Kind::udp ? Kind::udp : Kind::tcp;
        util::ListenOptions lo;
        auto fd = util::listen_endpoint(*ep, lo);
        if (!fd) return make_error("listen " + text + ": " + fd.error().message);
        l->fd = std::move(*fd);
        l->text = local_name(l->fd.get(), l->kind == Kind::udp ? "udp" : l->tls ? "tls" : "tcp");
    }
    if (l->kind != Kind::tcp) tune_datagram_socket(*l);
    listeners_.push_back(std::move(l));
    return core::ok();
}

SyslogSource::~SyslogSource() {
    if (loop_ != nullptr) stop(*loop_);
    for (const auto& l : listeners_)
        if (l->kind == Kind::unix_dgram) util::remove_socket_file(l->unix_path, 0, 0);  // a socket, never a symlink
}

std::vector<std::string> SyslogSource::local_endpoints() const {
    std::vector<std::string> out;
    for (const auto& l : listeners_) out.push_back(l->text);
    return out;
}

core::Status SyslogSource::start(util::EventLoop& loop) {
    loop_ = &loop;
    util::AcceptorLimits limits;
    limits.max_connections = opts_.max_connections;
    limits.max_per_peer = opts_.max_connections_per_peer;
    limits.idle_timeout = opts_.idle_timeout;
    acceptor_ = std::make_unique<util::Acceptor>(
        loop, "syslog source " + name_, limits, filter_,
        util::Acceptor::Hooks{[this](std::uint64_t id, util::UniqueFd fd, const util::Peer& peer,
                                     int tls) { on_open(id, std::move(fd), peer, tls != 0); },
                              [this](std::uint64_t id, util::Acceptor::CloseReason) { close_conn(id, false); },
                              {}});
    for (auto& lp : listeners_) {
        Listener* l = lp.get();
        if (l->kind == Kind::tcp)
            acceptor_->watch(l->fd.get(), l->text, l->tls ? 1 : 0);
        else
            loop.add(l->fd.get(), EPOLLIN, [this, l](std::uint32_t) { on_datagrams(*l); });
    }
    util::log(Level::info, "syslog source {}: listening on {}", name_, fmt::join(local_endpoints(), ", "));
    return core::ok();
}

void SyslogSource::stop(util::EventLoop& loop) {
    if (loop_ == nullptr) return;
    for (auto& l : listeners_)
        if (l->kind != Kind::tcp) loop.remove(l->fd.get());
    while (!conns_.empty()) close_conn(conns_.begin()->first);
    accept_seen_ = connection_stats();
    acceptor_.reset();  // stops watching the tcp/tls listeners (they stay bound)
    if (retry_timer_ != 0) {
        loop.cancel(retry_timer_);
        retry_timer_ = 0;
    }
    flush_pending();  // best effort
    if (!pending_.empty()) {
        warn_.log(Level::warning, "syslog source {}: {} login(s) not stored at stop", name_, pending_.size());
        dropped_other_ += pending_.size();
        pending_.clear();
    }
    loop_ = nullptr;
}

SourceCounters SyslogSource::counters() const {
    SourceCounters c;
    c.lines = framing_.messages;
    c.matches = matches_;
    c.malformed = framing_.malformed;
    c.untrusted = untrusted_ + connection_stats().refused_filter;
    c.dropped = framing_.oversize + framing_.truncated + dropped_other_ + kernel_dropped_;
    c.filtered = filtered_;
    return c;
}

util::AcceptorStats SyslogSource::connection_stats() const {
    if (!acceptor_) return accept_seen_;
    auto s = acceptor_->stats();  // counts since start(); add what earlier runs counted
    const auto& o = accept_seen_;
    s.accepted += o.accepted;
    s.refused_filter += o.refused_filter;
    s.refused_check += o.refused_check;
    s.evicted_full += o.evicted_full;
    s.evicted_peer_cap += o.evicted_peer_cap;
    s.closed_idle += o.closed_idle;
    s.accept_wakeups += o.accept_wakeups;
    s.fd_pauses += o.fd_pauses;
    return s;
}

void SyslogSource::on_open(std::uint64_t id, util::UniqueFd fd, const util::Peer& peer, bool tls) {
    auto c = std::make_unique<Conn>();
    c->fd = std::move(fd);
    c->peer = peer.name;
    c->framer = StreamFramer(opts_.framing);
    const int cfd = c->fd.get();
    if (tls) {
        gnutls_session_t s = nullptr;
        if (const int r = gt.gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL); r < 0) {
            warn_.log(Level::warning, "syslog source {}: TLS session: {}", name_, gt.gnutls_strerror(r));
            acceptor_->release(id);
            return;  // closes
        }
        c->tls.reset(new TlsSession{s});
        gt.gnutls_set_default_priority(s);
        gt.gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tls_->cred);
        gt.gnutls_certificate_server_set_request(s, tls_->require_client ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_IGNORE);
        gt.gnutls_transport_set_int2(s, cfd, cfd);
        c->handshaking = true;
        c->handshake_timer = loop_->call_after(opts_.handshake_timeout, [this, id] {
            auto cit = conns_.find(id);
            if (cit == conns_.end()) return;
            cit->second->handshake_timer = 0;
            warn_.log(Level::warning, "syslog source {}: TLS handshake with {} timed out", name_, cit->second->peer);
            close_conn(id);
        });
    }
    conns_.emplace(id, std::move(c));
    loop_->add(cfd, EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t) { on_conn(id); });
}

// Reads what connection `c` has, within `budget` bytes, and frames it into lines_. True when the
// connection is to be closed (end of stream, a read error, a broken octet count).
bool SyslogSource::read_conn(Conn& c, std::size_t& budget) {
    bool closing = false;
    while (budget > 0) {
        const std::size_t want = std::min(budget, opts_.read_chunk);
        ssize_t r = 0;
        if (c.tls) {
            r = gt.gnutls_record_recv(c.tls->s, buf_.data(), want);
            if (r == GNUTLS_E_AGAIN) {
                loop_->modify(c.fd.get(), gt.gnutls_record_get_direction(c.tls->s) == 1 ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
                break;
            }
            if (r == GNUTLS_E_INTERRUPTED) continue;
            if (r < 0) {
                if (r != GNUTLS_E_REHANDSHAKE && gt.gnutls_error_is_fatal(static_cast<int>(r)) == 0) continue;
                if (r != GNUTLS_E_PREMATURE_TERMINATION)
                    warn_.log(Level::warning, "syslog source {}: TLS connection from {}: {}", name_, c.peer,
                              gt.gnutls_strerror(static_cast<int>(r)));
                c.framer.finish(lines_, framing_);
                closing = true;
                break;
            }
        } else {
            r = ::read(c.fd.get(), buf_.data(), want);
        }
        if (r > 0) {
            const auto got = static_cast<std::size_t>(r);
            budget -= std::min(budget, got);
            if (!c.framer.feed(std::string_view(buf_.data(), got), lines_, framing_)) {
                warn_.log(Level::warning, "syslog source {}: closing connection from {}: bad octet count", name_, c.peer);
                closing = true;
                break;
            }
            if (!c.tls && got < want) break;  // drained for now (a TLS read returns one record)
            continue;
        }
        if (r == 0) {
            c.framer.finish(lines_, framing_);
            closing = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c.framer.finish(lines_, framing_);
            closing = true;
        }
        break;
    }
    return closing;
}

void SyslogSource::on_conn(std::uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (c.handshaking && !tls_handshake(id, c)) return;
    const auto messages_before = framing_.messages;
    std::size_t budget = opts_.max_bytes_per_wakeup;
    const bool closing = read_conn(c, budget);
    if (framing_.messages != messages_before) acceptor_->touch(id);  // a complete message: not idle
    process_lines();
    if (closing) {
        close_conn(id);
        return;
    }
    // Decrypted bytes waiting inside GnuTLS do not wake epoll: continue from a 0 ms timer.
    if (c.tls && budget == 0 && gt.gnutls_record_check_pending(c.tls->s) > 0 && c.continue_timer == 0)
        c.continue_timer = loop_->call_after(std::chrono::milliseconds(0), [this, id] {
            auto cit = conns_.find(id);
            if (cit == conns_.end()) return;
            cit->second->continue_timer = 0;
            on_conn(id);
        });
}

bool SyslogSource::tls_handshake(std::uint64_t id, Conn& c) {
    int r = 0;
    do {
        r = gt.gnutls_handshake(c.tls->s);
    } while (r < 0 && r != GNUTLS_E_AGAIN && gt.gnutls_error_is_fatal(r) == 0);
    if (r == GNUTLS_E_AGAIN) {
        loop_->modify(c.fd.get(), gt.gnutls_record_get_direction(c.tls->s) == 1 ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
        return false;
    }
    if (r < 0) {
        ++untrusted_;
        warn_.log(Level::warning, "syslog source {}: TLS handshake with {} failed: {}", name_, c.peer, gt.gnutls_strerror(r));
        close_conn(id);
        return false;
    }
    if (tls_->require_client) {
        unsigned status = 0;
        const int v = gt.gnutls_certificate_verify_peers2(c.tls->s, &status);
        if (v < 0 || status != 0) {
            ++untrusted_;
            gnutls_datum_t text{};
            std::string why = v < 0 ? gt.gnutls_strerror(v) : "unverified";
            if (v >= 0 && gt.gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
                why.assign(reinterpret_cast<const char*>(text.data), text.size);
                (*gt.free)(text.data);
            }
            warn_.log(Level::warning, "syslog source {}: refused TLS client {}: certificate not accepted ({})", name_,
                      c.peer, why);
            close_conn(id);
            return false;
        }
    }
    c.handshaking = false;
    if (c.handshake_timer != 0) {
        loop_->cancel(c.handshake_timer);
        c.handshake_timer = 0;
    }
    loop_->modify(c.fd.get(), EPOLLIN | EPOLLRDHUP);
    return true;
}

void SyslogSource::close_conn(std::uint64_t id, bool release) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    if (release && acceptor_) acceptor_->release(id);
    Conn& c = *it->second;
    if (loop_ != nullptr) {
        loop_->remove(c.fd.get());
        if (c.handshake_timer != 0) loop_->cancel(c.handshake_timer);
        if (c.continue_timer != 0) loop_->cancel(c.continue_timer);
    }
    conns_.erase(it);
}

// ---- datagram receivers (udp:, unix:) ------------------------------------------------------
// Nothing is queued before the prefilter: each wake-up reads a bounded number of datagrams,
// keeps the candidate lines, parses them at once and queues only events (pending_, bounded).
// The only queue a noise flood can fill is the kernel's: a large receive buffer (forced when we
// may, before privileges are dropped), and the kernel's own drop count (SO_RXQ_OVFL) is read
// with every datagram (the kernel reports it with the next datagram it queues), so that a loss
// there is counted and logged, never silent.

void SyslogSource::tune_datagram_socket(Listener& l) {
    const int size = opts_.datagram_rcvbuf;
    if (setsockopt(l.fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        (void)setsockopt(l.fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    const int on = 1;
    if (l.kind == Kind::udp) (void)setsockopt(l.fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(l.fd.get(), SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got < size)
        util::log(Level::info, "syslog source {}: receive buffer of {} is {} bytes (asked for {}; net.core.rmem_max limits it)",
                  name_, l.text, got, size);
}

void SyslogSource::on_datagrams(Listener& l) {
    const bool network = l.kind == Kind::udp;
    for (std::size_t i = 0; i < opts_.max_datagrams_per_wakeup; ++i) {
        sockaddr_storage ss{};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint32_t))];
        iovec iov{buf_.data(), buf_.size()};
        msghdr msg{};
        msg.msg_name = network ? &ss : nullptr;
        msg.msg_namelen = network ? sizeof ss : 0;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t r = recvmsg(l.fd.get(), &msg, MSG_TRUNC);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                warn_.log(Level::warning, "syslog source {}: receive on {}: {}", name_, l.text, errno_text());
            break;
        }
        note_kernel_drops(l, msg);
        if (network) {
            const auto peer = util::to_address(ss);
            if (!peer || !filter_.admits(*peer)) {
                ++untrusted_;
                warn_.log(Level::warning, "syslog source {}: ignored datagram from {} on {} (not in allow_from)", name_,
                          peer ? peer->to_string() : std::string("?"), l.text);
                continue;
            }
        }
        const auto size = static_cast<std::size_t>(r);
        if (size > buf_.size()) {  // truncated by the kernel: longer than any frame we accept
            ++framing_.oversize;
            continue;
        }
        frame_datagram(std::string_view(buf_.data(), size), lines_, framing_, opts_.framing);
    }
    process_lines();
}

// SO_RXQ_OVFL: the count of datagrams the kernel dropped on this socket since it was created.
void SyslogSource::note_kernel_drops(Listener& l, msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
        std::uint32_t total = 0;
        std::memcpy(&total, CMSG_DATA(c), sizeof total);
        if (total == l.kernel_drops) continue;
        const std::uint32_t fresh = total - l.kernel_drops;  // wraps like the kernel's counter
        l.kernel_drops = total;
        kernel_dropped_ += fresh;
        warn_.log(Level::warning,
                  "syslog source {}: the kernel dropped {} datagram(s) on {} (receive buffer full; {} in all): "
                  "raise net.core.rmem_max or send over tcp:",
                  name_, fresh, l.text, kernel_dropped_);
    }
}

// Lines -> candidates (the prefilter) -> events, queued for delivery. Events meet a full queue
// only while the store refuses them; those are the drops that may cost a login, logged as such.
void SyslogSource::process_lines() {
    if (lines_.empty()) return;
    std::size_t lines = 0, kept = 0;
    for (char c : lines_) lines += c == '\n' ? 1 : 0;
    candidates_.clear();
    parser_.for_each_candidate(lines_, [&](std::size_t b, std::size_t e) {
        ++kept;
        candidates_.append(lines_, b, e - b);
        candidates_.push_back('\n');
    });
    filtered_ += lines - std::min(lines, kept);
    lines_.clear();
    if (lines_.capacity() > 4 * opts_.max_bytes_per_wakeup) lines_.shrink_to_fit();
    if (candidates_.empty()) return;
    const core::Time now = clock_.now();
    events_.clear();
    parser_(candidates_, now, events_);
    if (events_.empty()) return;
    for (auto& e : events_)
        if (e.source.empty()) e.source = name_;
    matches_ += events_.size();
    const std::size_t room = opts_.max_pending_events > pending_.size() ? opts_.max_pending_events - pending_.size() : 0;
    const std::size_t take = std::min(room, events_.size());
    if (take < events_.size()) {
        dropped_other_ += events_.size() - take;
        warn_.log(Level::warning, "syslog source {}: {} login(s) dropped: the store is not accepting them", name_,
                  events_.size() - take);
    }
    pending_.insert(pending_.end(), std::make_move_iterator(events_.begin()),
                    std::make_move_iterator(events_.begin() + static_cast<std::ptrdiff_t>(take)));
    events_.clear();
    if (retry_timer_ == 0) flush_pending();
}

void SyslogSource::flush_pending() {
    if (pending_.empty()) return;
    const auto st = sink_.deliver(pending_, core::Checkpoint{});
    if (st) {
        pending_.clear();
        return;
    }
    warn_.log(Level::warning, "syslog source {}: could not store {} login(s): {}; retrying in {} ms", name_,
              pending_.size(), st.error().message, opts_.retry_delay.count());
    if (loop_ != nullptr && retry_timer_ == 0)
        retry_timer_ = loop_->call_after(opts_.retry_delay, [this] { on_retry(); });
}

void SyslogSource::on_retry() {
    retry_timer_ = 0;
    flush_pending();
}

core::Result<std::unique_ptr<Source>> open_syslog_source(const config::SourceConfig& cfg, LineParser parser,
                                                         LoginSink& sink, const core::Clock& clock) {
    std::string name = cfg.name;
    if (name.empty()) name = "syslog:" + (cfg.listen.empty() ? std::string() : cfg.listen.front());
    SyslogOptions opts;
    opts.tls_cert = cfg.tls_cert;
    opts.tls_key = cfg.tls_key;
    opts.tls_ca = cfg.tls_ca;
    auto s = SyslogSource::open(std::move(name), cfg.listen, cfg.allow_from, std::move(parser), sink, clock, opts);
    if (!s) return s.error();
    return std::unique_ptr<Source>(std::move(*s));
}

}  // namespace rp::sources
