#include "sources/auth_policy_source.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/endpoint.hpp"

namespace rp::sources {
namespace {

constexpr std::size_t k_read_chunk = 16 * 1024;
constexpr std::size_t k_max_pending_reply = 64 * 1024;
constexpr const char* k_server = "dovecot-auth-policy";

bool is_loopback(const core::Address& a) {
    static const std::vector<core::Cidr> loopback = {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1/128")};
    return std::any_of(loopback.begin(), loopback.end(), [&](const core::Cidr& c) { return c.contains(a); });
}

}  // namespace

struct AuthPolicySource::Listener : util::BoundListener {
    bool registered = false;
    util::EventLoop::TimerId resume_timer = 0;
};

struct AuthPolicySource::Connection {
    util::UniqueFd fd;
    std::size_t index = 0;
    std::string peer;
    HttpRequestParser parser;
    std::string out;
    bool close_after_flush = false;
    bool want_write = false;
    util::EventLoop::Steady::time_point last_activity;
    explicit Connection(HttpLimits limits) : parser(limits) {}
};

AuthPolicySource::AuthPolicySource(std::string name, AuthPolicyOptions opts, LoginSink& sink, const core::Clock& clock)
    : name_(std::move(name)), opts_(std::move(opts)), api_header_(parse_api_header(opts_.api_header)), sink_(sink),
      clock_(clock) {}

AuthPolicySource::~AuthPolicySource() {
    if (loop_ != nullptr) stop(*loop_);
    else
        for (auto& l : listeners_) l->remove_socket_file();  // bound by bind(), never started
}

core::Status AuthPolicySource::bind() {
    if (!listeners_.empty()) return core::ok();
    std::vector<std::unique_ptr<Listener>> fresh;
    auto discard_fresh = [&fresh] {  // an error after some listeners were bound: remove their files
        for (auto& l : fresh) l->remove_socket_file();
    };
    for (const auto& text : opts_.listen) {
        auto ep = util::parse_endpoint(text);
        if (!ep) {
            discard_fresh();
            return core::make_error(name_ + ": " + ep.error().message);
        }
        if (ep->kind == util::Endpoint::Kind::udp) {
            discard_fresh();
            return core::make_error(name_ + ": '" + text + "': the auth policy protocol is HTTP over TCP or unix sockets, not UDP");
        }
        auto bound = util::bind_listener(*ep);  // unix sockets 0666: the directory guards access
        if (!bound) {
            discard_fresh();
            return core::make_error(name_ + ": " + bound.error().message);
        }
        auto l = std::make_unique<Listener>();
        static_cast<util::BoundListener&>(*l) = std::move(*bound);
        fresh.push_back(std::move(l));
    }
    listeners_ = std::move(fresh);
    return core::ok();
}

core::Status AuthPolicySource::start(util::EventLoop& loop) {
    loop_ = &loop;
    if (auto st = bind(); !st) return st;
    for (auto& l : listeners_) {
        Listener* raw = l.get();
        loop.add(raw->fd.get(), EPOLLIN, [this, raw](std::uint32_t) { on_accept(*raw); });
        raw->registered = true;
        util::log(util::Level::info, "{}: Dovecot auth policy server listening on {}", name_, raw->endpoint.to_string());
    }
    const auto period = std::max(std::chrono::milliseconds(10), opts_.idle_timeout / 4);
    sweep_timer_ = loop.call_after(period, [this] { sweep(); });
    return core::ok();
}

void AuthPolicySource::stop(util::EventLoop& loop) {
    for (auto& l : listeners_) {
        if (l->registered) loop.remove(l->fd.get());
        if (l->resume_timer != 0) loop.cancel(l->resume_timer);
        l->remove_socket_file();
    }
    listeners_.clear();
    for (auto& c : connections_) loop.remove(c->fd.get());
    connections_.clear();
    if (sweep_timer_ != 0) loop.cancel(sweep_timer_);
    sweep_timer_ = 0;
    loop_ = nullptr;
}

std::vector<std::string> AuthPolicySource::local_endpoints() const {
    std::vector<std::string> out;
    for (const auto& l : listeners_) out.push_back(l->endpoint.to_string());
    return out;
}

std::size_t AuthPolicySource::open_connections() const { return connections_.size(); }

void AuthPolicySource::on_accept(Listener& l) {
    for (int i = 0; i < 64; ++i) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int raw = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (raw < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: stop accepting for a moment instead of spinning.
                warn_.log(util::Level::warning, "{}: accept: {}; pausing 100 ms", name_, std::strerror(errno));
                loop_->remove(l.fd.get());
                l.registered = false;
                Listener* lp = &l;
                l.resume_timer = loop_->call_after(std::chrono::milliseconds(100), [this, lp] {
                    lp->resume_timer = 0;
                    loop_->add(lp->fd.get(), EPOLLIN, [this, lp](std::uint32_t) { on_accept(*lp); });
                    lp->registered = true;
                });
            }
            return;
        }
        util::UniqueFd fd(raw);
        std::string peer = "unix";
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            peer = util::peer_name(raw);
            auto a = core::Address::parse(peer);
            const bool ok = a && (opts_.allow_from.empty()
                                      ? is_loopback(*a)
                                      : std::any_of(opts_.allow_from.begin(), opts_.allow_from.end(),
                                                    [&](const core::Cidr& c) { return c.contains(*a); }));
            if (!ok) {
                ++counters_.untrusted;
                warn_.log(util::Level::warning, "{}: refused connection from {} (not in allow_from)", name_, peer);
                continue;  // fd closes
            }
        }
        if (connections_.size() >= opts_.max_clients) {
            ++counters_.dropped;
            warn_.log(util::Level::warning, "{}: {} connections open, refusing {}", name_, connections_.size(), peer);
            continue;
        }
        auto c = std::make_unique<Connection>(opts_.limits);
        c->fd = std::move(fd);
        c->peer = std::move(peer);
        c->index = connections_.size();
        c->last_activity = util::EventLoop::Steady::now();
        Connection* cp = c.get();
        connections_.push_back(std::move(c));
        loop_->add(cp->fd.get(), EPOLLIN | EPOLLRDHUP, [this, cp](std::uint32_t ev) { on_event(*cp, ev); });
    }
}

void AuthPolicySource::on_event(Connection& c, std::uint32_t events) {
    c.last_activity = util::EventLoop::Steady::now();
    if (events & EPOLLOUT) {
        if (!flush(c)) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        if (c.close_after_flush) {
            // Discard further input from a connection we are closing.
            char sink[4096];
            const auto n = ::recv(c.fd.get(), sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_connection(c);
            return;
        }
        handle_requests(c);
    }
}

bool AuthPolicySource::handle_requests(Connection& c) {
    char buf[k_read_chunk];
    // A peer that pipelines requests without reading the answers is dropped.
    if (c.out.size() > k_max_pending_reply) {
        ++counters_.dropped;
        close_connection(c);
        return false;
    }
    const auto n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) {
        close_connection(c);
        return false;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        close_connection(c);
        return false;
    }
    c.parser.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    HttpRequest req;
    for (;;) {
        const auto st = c.parser.next(&req);
        if (st == HttpRequestParser::State::need_more) break;
        if (st == HttpRequestParser::State::error) {
            ++counters_.malformed;
            warn_.log(util::Level::warning, "{}: bad HTTP request from {}: {}", name_, c.peer, c.parser.error_reason());
            c.out += http_error_response(c.parser.error_status(), false);
            c.close_after_flush = true;
            break;
        }
        ++counters_.lines;
        if (api_header_ && !has_api_header(req, *api_header_)) {
            ++counters_.untrusted;
            warn_.log(util::Level::warning, "{}: request from {} without the api_header: 401", name_, c.peer);
            c.out += http_error_response(401, req.keep_alive);
        } else {
            handle_request(req, c.out);
        }
        if (!req.keep_alive) {
            c.close_after_flush = true;
            break;
        }
    }
    return flush(c);
}

void AuthPolicySource::handle_request(const HttpRequest& req, std::string& reply) {
    if (req.method == "POST" && is_report_command(req.target)) {
        const auto d = interpret_report(req.body);
        switch (d.kind) {
            case ReportDecision::Kind::grant: {
                ++counters_.matches;
                core::LoginEvent ev{*d.address, d.user, k_server, name_, clock_.now()};
                auto st = sink_.deliver(std::span<const core::LoginEvent>(&ev, 1), core::Checkpoint{});
                if (!st) {
                    ++counters_.dropped;
                    warn_.log(util::Level::warning, "{}: could not store the login of {} from {}: {}", name_, d.user,
                              d.address->to_string(), st.error().message);
                }
                break;
            }
            case ReportDecision::Kind::ignored:
                break;
            case ReportDecision::Kind::malformed:
                ++counters_.malformed;
                warn_.log(util::Level::warning, "{}: malformed report: {}", name_, d.reason);
                break;
        }
    }
    reply += http_ok_json_response(req.keep_alive);
}

bool AuthPolicySource::flush(Connection& c) {
    while (!c.out.empty()) {
        const auto n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            close_connection(c);
            return false;
        }
        c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.out.empty() && c.close_after_flush) {
        // Half-close so the peer reads the answer, then drop the connection.
        ::shutdown(c.fd.get(), SHUT_WR);
        close_connection(c);
        return false;
    }
    const bool want = !c.out.empty();
    if (want != c.want_write) {
        c.want_write = want;
        loop_->modify(c.fd.get(), EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
    }
    return true;
}

void AuthPolicySource::close_connection(Connection& c) {
    loop_->remove(c.fd.get());
    const std::size_t i = c.index;
    if (i + 1 != connections_.size()) {
        std::swap(connections_[i], connections_.back());
        connections_[i]->index = i;
    }
    connections_.pop_back();  // destroys c
}

void AuthPolicySource::sweep() {
    const auto now = util::EventLoop::Steady::now();
    for (std::size_t i = connections_.size(); i-- > 0;) {
        if (i >= connections_.size()) continue;
        if (now - connections_[i]->last_activity >= opts_.idle_timeout) close_connection(*connections_[i]);
    }
    const auto period = std::max(std::chrono::milliseconds(10), opts_.idle_timeout / 4);
    sweep_timer_ = loop_->call_after(period, [this] { sweep(); });
}

core::Result<std::unique_ptr<Source>> open_auth_policy_source(const config::SourceConfig& cfg, LineParser /*parser*/,
                                                              LoginSink& sink, const core::Clock& clock) {
    if (cfg.listen.empty()) return core::make_error(cfg.name + ": dovecot-auth-policy needs `listen`");
    AuthPolicyOptions o;
    o.listen = cfg.listen;
    o.allow_from = cfg.allow_from;
    o.api_header = cfg.api_header;
    const std::string name = cfg.name.empty() ? "dovecot-auth-policy:" + cfg.listen.front() : cfg.name;
    return std::unique_ptr<Source>(std::make_unique<AuthPolicySource>(name, std::move(o), sink, clock));
}

}  // namespace rp::sources
