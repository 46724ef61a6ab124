#include "daemon/control_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/control_codec.hpp"

namespace rp::daemon {

using util::Level;
using Steady = util::EventLoop::Steady;

struct ControlServer::Connection {
    util::UniqueFd fd;
    ControlPeer peer;
    std::string in, out;
    Steady::time_point last_progress = Steady::now();
    std::uint32_t interest = 0;
    bool closing = false;  // close once `out` is written (the peer hung up, or broke the protocol)
    std::uint64_t id = 0;  // never reused, unlike the fd: a late timer finds no connection
    util::EventLoop::TimerId resume = 0;  // resume_later's timer, cancelled on close
};

namespace {
constexpr std::size_t k_read_chunk = 16 * 1024;
constexpr auto k_accept_pause = std::chrono::milliseconds(100);
}  // namespace

ControlServer::ControlServer(util::EventLoop& loop, util::UniqueFd listener, Authorize authorize, Answer answer,
                             ControlServerLimits limits)
    : loop_(loop), listener_(std::move(listener)), authorize_(std::move(authorize)), answer_(std::move(answer)),
      limits_(limits) {
    loop_.add(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
}

ControlServer::~ControlServer() {
    if (sweep_timer_) loop_.cancel(sweep_timer_);
    if (resume_timer_) loop_.cancel(resume_timer_);
    else loop_.remove(listener_.get());
    while (!connections_.empty()) close_connection(*connections_.back());
}

ControlServerCounters ControlServer::counters() const {
    auto c = counters_;
    c.active = connections_.size();
    return c;
}

void ControlServer::on_accept() {
    while (true) {
        const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(util::UniqueFd(fd));
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting();
        return;
    }
}

// Out of descriptors: the pending connection stays queued and the listener stays readable, so
// accepting again at once would spin. Stop listening for a moment instead.
void ControlServer::pause_accepting() {
    ++counters_.accept_pauses;
    log_.log(Level::warning, "control: cannot accept ({}); pausing for {} ms", std::strerror(errno),
             k_accept_pause.count());
    loop_.remove(listener_.get());
    resume_timer_ = loop_.call_after(k_accept_pause, [this] {
        resume_timer_ = 0;
        loop_.add(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
    });
}

void ControlServer::admit(util::UniqueFd fd) {
    ControlPeer peer;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer = {cred.uid, cred.gid, cred.pid};
    if (!authorize_(peer)) {
        ++counters_.refused;
        log_.log(Level::warning, "control: refused uid {} (not root, not in control_group)", static_cast<long>(peer.uid));
        const std::string msg = control_error_reply("permission denied");
        [[maybe_unused]] const auto n = ::send(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return;  // closes
    }
    if (connections_.size() >= limits_.max_clients) {
        // Admin traffic only: a full table means someone holds connections open; the newest
        // caller (likely the administrator) gets the slot of the longest idle one.
        ++counters_.evicted;
        close_connection(*longest_idle());
    }
    ++counters_.connections;
    auto c = std::make_unique<Connection>();
    c->fd = std::move(fd);
    c->peer = peer;
    c->id = ++next_id_;
    c->interest = EPOLLIN | EPOLLRDHUP;
    Connection* raw = c.get();
    connections_.push_back(std::move(c));
    loop_.add(raw->fd.get(), raw->interest, [this, raw](std::uint32_t ev) { on_event(*raw, ev); });
    schedule_sweep();
}

void ControlServer::on_event(Connection& c, std::uint32_t events) {
    if (events & EPOLLERR) return close_connection(c);
    if ((events & EPOLLOUT) && !flush(c)) return close_connection(c);
    const bool reading = !c.closing && c.out.size() < limits_.max_pending_output;
    if (reading && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) && !read_some(c)) c.closing = true;
    // Answer, write, and again while the client keeps up: lines held back by the output cap get
    // no further event of their own. A few rounds per wake-up, then a turn for everyone else.
    for (int round = 0;; ++round) {
        answer_lines(c);
        if (!flush(c)) return close_connection(c);
        if (!c.out.empty() || c.in.find('\n') == std::string::npos) break;
        if (round == 8) {
            resume_later(c);
            break;
        }
    }
    if (c.closing && c.out.empty()) return close_connection(c);
    update_interest(c);
}

void ControlServer::resume_later(Connection& c) {
    if (c.resume) return;
    c.resume = loop_.call_after(std::chrono::milliseconds(0), [this, id = c.id] {
        const auto it = std::find_if(connections_.begin(), connections_.end(), [&](const auto& x) { return x->id == id; });
        if (it == connections_.end()) return;
        (*it)->resume = 0;
        on_event(**it, 0);
    });
}

bool ControlServer::read_some(Connection& c) {
    char buf[k_read_chunk];
    while (true) {
        const auto n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            c.last_progress = Steady::now();
            return true;  // one chunk per wake-up: other connections and the frontends get their turn
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && errno == EAGAIN;
    }
}

// Answers complete lines while the queued output is below the cap; the rest waits in `in`.
void ControlServer::answer_lines(Connection& c) {
    std::size_t pos = 0;
    while (c.out.size() < limits_.max_pending_output) {
        const auto nl = c.in.find('\n', pos);
        if (nl == std::string::npos) break;
        ++counters_.requests;
        c.out += answer_(std::string_view(c.in).substr(pos, nl - pos), c.peer);
        pos = nl + 1;
    }
    c.in.erase(0, pos);
    if (c.in.size() > limits_.max_line && c.in.find('\n') == std::string::npos) {
        ++counters_.too_long;
        log_.log(Level::warning, "control: uid {} sent a request line over {} bytes; closing",
                 static_cast<long>(c.peer.uid), limits_.max_line);
        c.out += control_error_reply("request line too long (at most " + std::to_string(limits_.max_line) + " bytes)");
        c.in.clear();
        c.closing = true;
    }
}

bool ControlServer::flush(Connection& c) {
    while (!c.out.empty()) {
        const auto n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.out.erase(0, static_cast<std::size_t>(n));
            c.last_progress = Steady::now();
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && errno == EAGAIN;  // the rest goes out when the socket is writable
    }
    return true;
}

void ControlServer::update_interest(Connection& c) {
    std::uint32_t want = c.out.empty() ? 0u : static_cast<std::uint32_t>(EPOLLOUT);
    if (!c.closing && c.out.size() < limits_.max_pending_output) want |= EPOLLIN | EPOLLRDHUP;
    if (want != c.interest) {
        c.interest = want;
        loop_.modify(c.fd.get(), want);
    }
}

void ControlServer::close_connection(Connection& c) {
    if (c.resume) loop_.cancel(c.resume);
    loop_.remove(c.fd.get());
    std::erase_if(connections_, [&](const auto& x) { return x.get() == &c; });
}

ControlServer::Connection* ControlServer::longest_idle() {
    const auto it = std::min_element(connections_.begin(), connections_.end(), [](const auto& a, const auto& b) {
        return a->last_progress < b->last_progress;
    });
    return it == connections_.end() ? nullptr : it->get();
}

void ControlServer::schedule_sweep() {
    if (sweep_timer_ || connections_.empty()) return;
    const auto every = std::max<std::chrono::milliseconds>(limits_.idle_timeout / 4, std::chrono::milliseconds(10));
    sweep_timer_ = loop_.call_after(every, [this] {
        sweep_timer_ = 0;
        const auto limit = Steady::now() - limits_.idle_timeout;
        while (auto* c = longest_idle()) {
            if (c->last_progress > limit) break;
            ++counters_.evicted;
            close_connection(*c);
        }
        schedule_sweep();
    });
}

}  // namespace rp::daemon
