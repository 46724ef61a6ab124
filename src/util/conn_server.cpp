#include "util/conn_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace rp::util {
namespace {

constexpr std::size_t k_read_buffer_size = 64 * 1024;
constexpr std::size_t k_feed_slice = 4 * 1024;
// produce() calls per connection and loop turn: enough to keep a fast reader's socket buffer
// full, few enough that other connections wait at most a few pieces' work.
constexpr int k_produce_rounds = 2;

}  // namespace

struct ConnServer::Connection {
    ConnId id = 0;
    UniqueFd fd;
    std::string peer;
    std::unique_ptr<StreamSession> session;
    std::string out;     // replies not yet written; its capacity is reused
    std::string unfed;   // read but not yet given to the session (paused at the output cap)
    std::uint32_t interest = EPOLLIN;
    bool closing = false;  // the session is done: close once `out` is sent
};

ConnServer::ConnServer(EventLoop& loop, std::string service, ConnServerLimits limits, PeerFilter filter,
                       SessionFactory factory, CheckHook check)
    : loop_(loop),
      service_(std::move(service)),
      limits_(limits),
      factory_(std::move(factory)),
      read_buffer_(new char[k_read_buffer_size]),
      acceptor_(loop, service_, limits.accept, std::move(filter),
                Acceptor::Hooks{
                    [this](ConnId id, UniqueFd fd, const Peer& peer, int) { on_open(id, std::move(fd), peer); },
                    [this](ConnId id, Acceptor::CloseReason) {
                        auto it = connections_.find(id);
                        if (it != connections_.end()) close_connection(*it->second, /*release=*/false);
                    },
                    std::move(check)}) {}

ConnServer::~ConnServer() { close(); }

core::Status ConnServer::listen(const std::vector<std::string>& endpoints, std::string_view protocol,
                                bool unix_only) {
    auto bound = bind_stream_listeners(service_, endpoints, protocol, unix_only);
    if (!bound) return bound.error();
    for (auto& l : *bound) {
        log(Level::info, "{} listening on {}", service_, l.endpoint.to_string());
        adopt(std::move(l));
    }
    return core::ok();
}

void ConnServer::adopt(BoundListener listener) {
    acceptor_.watch(listener.fd.get(), listener.endpoint.to_string(),
                    listener.endpoint.kind == Endpoint::Kind::tcp ? 1 : 0);
    listeners_.push_back(std::move(listener));
}

void ConnServer::close() {
    acceptor_.unwatch_all();
    for (auto& l : listeners_) l.remove_socket_file();
    listeners_.clear();
    acceptor_.evict_all();
}

std::vector<std::string> ConnServer::local_endpoints() const {
    std::vector<std::string> out;
    out.reserve(listeners_.size());
    for (const auto& l : listeners_) out.push_back(l.endpoint.to_string());
    return out;
}

ConnServerStats ConnServer::stats() const {
    ConnServerStats s = counts_;
    s.accept = acceptor_.stats();
    s.active = connections_.size();
    s.pending_bytes = 0;
    for (const auto& [id, c] : connections_) s.pending_bytes += c->out.size();
    return s;
}

void ConnServer::on_open(ConnId id, UniqueFd fd, const Peer& peer) {
    if (peer.network()) {
        // Replies are small and must leave at once, even when an earlier one is unacknowledged.
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto conn = std::make_unique<Connection>();
    conn->id = id;
    conn->session = factory_(peer);
    conn->fd = std::move(fd);
    conn->peer = peer.name;
    Connection* raw = conn.get();
    loop_.add(raw->fd.get(), EPOLLIN, [this, raw](std::uint32_t events) { on_event(*raw, events); });
    connections_.emplace(id, std::move(conn));
}

void ConnServer::on_event(Connection& c, std::uint32_t events) {
    if ((events & EPOLLERR) != 0) {
        close_connection(c);
        return;
    }
    if ((events & EPOLLOUT) != 0) {
        if (!flush(c) || (c.closing && c.out.empty())) {
            close_connection(c);
            return;
        }
        if (!pump(c)) return;
        if (!c.unfed.empty() && !c.session->producing() && !feed(c, {}))
            return;  // what waited at the cap, once below it
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

bool ConnServer::read_and_answer(Connection& c) {
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
    return feed(c, std::string_view(buf, static_cast<std::size_t>(r)));
}

bool ConnServer::feed(Connection& c, std::string_view data) {
    std::string waiting;  // holds what waited while `data` views it
    for (;;) {
        while (!data.empty()) {
            if (c.out.size() >= limits_.soft_output || c.session->producing()) {
                c.unfed.append(data);  // at most one read: reading stops until the peer drains
                break;
            }
            const auto slice = data.substr(0, k_feed_slice);
            data.remove_prefix(slice.size());
            const std::size_t before = c.out.size();
            const auto next = c.session->on_data(slice, c.out);
            if (c.out.size() > before) acceptor_.touch(c.id);  // a reply: a request completed
            counts_.peak_pending = std::max<std::uint64_t>(counts_.peak_pending, c.out.size());
            if (next != StreamSession::Next::more || c.out.size() > limits_.hard_output)
                return after_session(c, next);
        }
        if (!flush(c) || (c.closing && c.out.empty())) {
            close_connection(c);
            return false;
        }
        if (!pump(c)) return false;
        if (c.unfed.empty() || c.out.size() >= limits_.soft_output || c.session->producing()) return true;
        waiting = std::move(c.unfed);  // the peer read enough: go on with what waited
        c.unfed.clear();
        data = waiting;
    }
}

bool ConnServer::after_session(Connection& c, StreamSession::Next next) {
    if (c.out.size() > limits_.hard_output) {
        ++counts_.overflow;
        malformed_log_.log(Level::warning, "{}: {} does not read its replies ({} bytes pending); closing", service_,
                           c.peer, c.out.size());
        close_connection(c);
        return false;
    }
    if (next == StreamSession::Next::malformed) {
        ++counts_.malformed;
        malformed_log_.log(Level::warning, "{}: malformed request from {}: {}; closing the connection", service_,
                           c.peer, c.session->error_text());
        flush(c);  // the requests before the bad one are answered
        ::shutdown(c.fd.get(), SHUT_WR);
        close_connection(c);
        return false;
    }
    c.closing = true;  // Next::close: bytes after the last request are ignored
    c.unfed.clear();
    if (!flush(c) || c.out.empty()) {
        if (c.out.empty()) ::shutdown(c.fd.get(), SHUT_WR);
        close_connection(c);
        return false;
    }
    return true;
}

bool ConnServer::pump(Connection& c) {
    for (int round = 0; round < k_produce_rounds && !c.closing && c.session->producing() &&
                        c.out.size() < limits_.soft_output;
         ++round) {
        const std::size_t before = c.out.size();
        const auto next = c.session->produce(c.out);
        if (c.out.size() > before) acceptor_.touch(c.id);  // progress: the peer reads what it asked for
        counts_.peak_pending = std::max<std::uint64_t>(counts_.peak_pending, c.out.size());
        if (next != StreamSession::Next::more || c.out.size() > limits_.hard_output) return after_session(c, next);
        if (!flush(c)) {
            close_connection(c);
            return false;
        }
    }
    return true;
}

bool ConnServer::flush(Connection& c) {
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

void ConnServer::update_interest(Connection& c) {
    std::uint32_t want = 0;
    const bool producing = !c.closing && c.session->producing();
    const bool capped = c.out.size() >= limits_.soft_output;
    const bool below_cap = !capped && c.unfed.empty() && !producing;
    if (below_cap && !c.closing) want |= EPOLLIN;
    // Producing: the socket is writable at once when the peer keeps up, so the next piece comes
    // on the next loop turn (level-triggered), after every other ready descriptor.
    if (!c.out.empty() || producing) want |= EPOLLOUT;
    if ((want & EPOLLIN) == 0 && (c.interest & EPOLLIN) != 0 && !c.closing && (capped || !producing))
        ++counts_.paused;
    if (want != c.interest) {
        c.interest = want;
        loop_.modify(c.fd.get(), want);
    }
}

void ConnServer::close_connection(Connection& c, bool release) {
    loop_.remove(c.fd.get());
    if (release) acceptor_.release(c.id);
    connections_.erase(c.id);  // destroys c (its handler is kept alive by the loop while it runs)
}

}  // namespace rp::util
