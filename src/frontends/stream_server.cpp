#include "frontends/stream_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/endpoint.hpp"

namespace rp::frontends {
namespace {

using Steady = std::chrono::steady_clock;

constexpr std::size_t k_read_buffer_size = 64 * 1024;
// Above this many unsent reply bytes a connection is no longer read (its peer is not reading).
constexpr std::size_t k_max_pending_output = 64 * 1024;
constexpr auto k_accept_pause = std::chrono::milliseconds(100);

std::string errno_text() { return std::strerror(errno); }

}  // namespace

struct StreamServer::Listener : util::BoundListener {
    bool registered = false;
    util::EventLoop::TimerId resume_timer = 0;  // set while accepting is paused (EMFILE)
};

struct StreamServer::Connection {
    util::UniqueFd fd;
    std::unique_ptr<StreamSession> session;
    std::string out;  // replies not yet written; its capacity is reused
    Steady::time_point last_active;
    std::uint32_t interest = EPOLLIN;
    std::size_t index = 0;  // slot in connections_
    bool closing = false;   // the session is done: close once `out` is sent
};

StreamServer::StreamServer(util::EventLoop& loop, std::string service, StreamLimits limits, SessionFactory factory,
                           bool unix_only, std::string protocol)
    : loop_(loop),
      service_(std::move(service)),
      limits_(limits),
      factory_(std::move(factory)),
      unix_only_(unix_only),
      protocol_(std::move(protocol)),
      read_buffer_(new char[k_read_buffer_size]) {}

StreamServer::~StreamServer() { close(); }

core::Status StreamServer::listen(const std::vector<std::string>& endpoints) {
    std::vector<std::unique_ptr<Listener>> fresh;
    auto discard_fresh = [&fresh] {  // an error after some listeners were bound: remove their files
        for (auto& l : fresh) l->remove_socket_file();
    };
    for (const auto& text : endpoints) {
        auto ep = util::parse_endpoint(text);
        if (!ep) {
            discard_fresh();
            return core::make_error(service_ + ": " + ep.error().message);
        }
        if (ep->kind == util::Endpoint::Kind::udp) {
            discard_fresh();
            return core::make_error(service_ + ": '" + text +
                                    "': " + protocol_ + " runs over TCP or unix stream sockets, not UDP");
        }
        if (unix_only_ && ep->kind != util::Endpoint::Kind::unix_stream) {
            discard_fresh();
            return core::make_error(service_ + ": '" + text + "': only unix:/path endpoints are supported");
        }
        auto bound = util::bind_listener(*ep);  // unix sockets are chmod 0666 by default
        if (!bound) {
            discard_fresh();
            return core::make_error(service_ + ": " + bound.error().message);
        }
        auto l = std::make_unique<Listener>();
        static_cast<util::BoundListener&>(*l) = std::move(*bound);
        fresh.push_back(std::move(l));
    }
    for (auto& l : fresh) {
        Listener* raw = l.get();
        loop_.add(raw->fd.get(), EPOLLIN, [this, raw](std::uint32_t) { on_accept(*raw); });
        raw->registered = true;
        util::log(util::Level::info, "{} listening on {}", service_, raw->endpoint.to_string());
        listeners_.push_back(std::move(l));
    }
    schedule_sweep();
    return core::ok();
}

void StreamServer::close() {
    for (auto& l : listeners_) {
        if (l->registered) loop_.remove(l->fd.get());
        if (l->resume_timer != 0) loop_.cancel(l->resume_timer);
        l->remove_socket_file();
    }
    listeners_.clear();
    for (auto& c : connections_) loop_.remove(c->fd.get());
    connections_.clear();
    if (sweep_scheduled_) loop_.cancel(sweep_timer_);
    sweep_scheduled_ = false;
}

std::vector<std::string> StreamServer::local_endpoints() const {
    std::vector<std::string> out;
    out.reserve(listeners_.size());
    for (const auto& l : listeners_) out.push_back(l->endpoint.to_string());
    return out;
}

FrontendCounters StreamServer::counters() const {
    FrontendCounters c = counters_;
    c.active = connections_.size();
    return c;
}

void StreamServer::on_accept(Listener& l) {
    for (;;) {
        const int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            // Out of descriptors or memory: the listener stays readable, so stop watching it for
            // a moment instead of spinning.
            overload_log_.log(util::Level::warning, "{}: accept on {}: {}; pausing accepts",
                              service_, l.endpoint.to_string(), errno_text());
            loop_.modify(l.fd.get(), 0);
            Listener* raw = &l;
            l.resume_timer = loop_.call_after(k_accept_pause, [this, raw] {
                raw->resume_timer = 0;
                loop_.modify(raw->fd.get(), EPOLLIN);
            });
            return;
        }
        util::UniqueFd cfd(fd);
        if (connections_.size() >= limits_.max_clients) {
            overload_log_.log(util::Level::warning,
                              "{}: {} clients connected (max_clients); refusing a connection from {}",
                              service_, connections_.size(), util::peer_name(fd));
            ++counters_.refused;
            continue;  // cfd closes it
        }
        if (l.endpoint.kind == util::Endpoint::Kind::tcp) {
            // Replies are small and must leave at once, even when an earlier one is unacknowledged.
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        auto conn = std::make_unique<Connection>();
        conn->session = factory_(counters_);
        conn->fd = std::move(cfd);
        conn->last_active = Steady::now();
        conn->index = connections_.size();
        Connection* raw = conn.get();
        loop_.add(fd, EPOLLIN, [this, raw](std::uint32_t events) { on_connection_event(*raw, events); });
        connections_.push_back(std::move(conn));
        ++counters_.connections;
    }
}

void StreamServer::on_connection_event(Connection& c, std::uint32_t events) {
    if ((events & EPOLLERR) != 0) {
        close_connection(c);
        return;
    }
    if ((events & EPOLLOUT) != 0 && (!flush(c) || (c.closing && c.out.empty()))) {
        close_connection(c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) != 0) {
        if ((c.interest & EPOLLIN) != 0) {
            if (!read_and_answer(c)) return;
        } else if ((events & EPOLLHUP) != 0) {
            close_connection(c);
            return;
        }
    }
    update_interest(c);
}

bool StreamServer::read_and_answer(Connection& c) {
    char* const buf = read_buffer_.get();
    ssize_t r;
    do {
        r = ::read(c.fd.get(), buf, k_read_buffer_size);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        close_connection(c);
        return false;
    }
    if (r == 0) {  // the client is done; send what is answered already, best effort
        if (!c.closing) c.session->on_eof(c.out);
        flush(c);
        close_connection(c);
        return false;
    }
    c.last_active = Steady::now();
    const auto next = c.session->on_data(std::string_view(buf, static_cast<std::size_t>(r)), c.out);
    if (next == StreamSession::Next::malformed) {
        ++counters_.malformed;
        malformed_log_.log(util::Level::warning, "{}: malformed request from {}: {}; closing the connection", service_,
                           util::peer_name(c.fd.get()), c.session->error_text());
        flush(c);  // the requests before the bad one are answered
        close_connection(c);
        return false;
    }
    if (next == StreamSession::Next::close) c.closing = true;
    if (!flush(c) || (c.closing && c.out.empty())) {
        close_connection(c);
        return false;
    }
    return true;
}

bool StreamServer::flush(Connection& c) {
    std::size_t sent = 0;
    while (sent < c.out.size()) {
        const ssize_t n = ::send(c.fd.get(), c.out.data() + sent, c.out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return false;
        }
    }
    if (sent == c.out.size()) c.out.clear();
    else if (sent > 0) c.out.erase(0, sent);
    return true;
}

void StreamServer::update_interest(Connection& c) {
    std::uint32_t want = 0;
    if (c.out.size() < k_max_pending_output && !c.closing) want |= EPOLLIN;
    if (!c.out.empty()) want |= EPOLLOUT;
    if (want != c.interest) {
        c.interest = want;
        loop_.modify(c.fd.get(), want);
    }
}

void StreamServer::close_connection(Connection& c) {
    loop_.remove(c.fd.get());
    const std::size_t i = c.index;
    if (i + 1 != connections_.size()) {
        std::swap(connections_[i], connections_.back());
        connections_[i]->index = i;
    }
    connections_.pop_back();  // destroys c (its handler is kept alive by the loop while it runs)
}

void StreamServer::schedule_sweep() {
    if (sweep_scheduled_) return;
    const auto interval = std::clamp(limits_.idle_timeout / 4, std::chrono::milliseconds(10),
                                     std::chrono::milliseconds(5000));
    sweep_timer_ = loop_.call_after(interval, [this] {
        sweep_scheduled_ = false;
        sweep();
    });
    sweep_scheduled_ = true;
}

void StreamServer::sweep() {
    const auto now = Steady::now();
    // Backwards: close_connection moves the last (already visited) connection into the hole.
    for (std::size_t i = connections_.size(); i-- > 0;) {
        if (now - connections_[i]->last_active >= limits_.idle_timeout) {
            util::log(util::Level::debug, "{}: closing idle connection from {}", service_,
                      util::peer_name(connections_[i]->fd.get()));
            close_connection(*connections_[i]);
        }
    }
    if (!listeners_.empty() || !connections_.empty()) schedule_sweep();
}

}  // namespace rp::frontends
