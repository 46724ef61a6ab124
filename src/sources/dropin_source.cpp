#include "sources/dropin_source.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/endpoint.hpp"

namespace rp::sources {
namespace {

constexpr std::size_t k_datagrams_per_wakeup = 64;
constexpr std::size_t k_datagram_buffer = 8192;

// The local port of a bound socket (the kernel's choice when 0 was asked).
int local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

core::Address bound_address(const util::Endpoint& ep) {
    return core::Address::parse(ep.host).value_or(core::Address::v4(0));
}

}  // namespace

DropinSource::DropinSource(std::string name, DropinOptions opts, std::unique_ptr<DropinProtocol> protocol)
    : name_(std::move(name)), opts_(std::move(opts)), protocol_(std::move(protocol)) {}

DropinSource::~DropinSource() {
    if (loop_ != nullptr) stop(*loop_);
}

core::Result<std::unique_ptr<DropinSource>> DropinSource::open(std::string name, DropinOptions opts,
                                                               std::unique_ptr<DropinProtocol> protocol) {
    if (opts.listen.empty()) return core::make_error(opts.protocol + " source " + name + ": no listen endpoint");
    std::unique_ptr<DropinSource> s(new DropinSource(std::move(name), std::move(opts), std::move(protocol)));
    for (const auto& text : s->opts_.listen)
        if (auto st = s->bind(text); !st) return core::make_error(s->name_ + ": " + st.error().message);
    return s;
}

core::Status DropinSource::bind(const std::string& text) {
    auto ep = util::parse_endpoint(text);
    if (!ep) return ep.error();
    if (ep->kind == util::Endpoint::Kind::unix_stream)
        return core::make_error("listen " + text + ": " + opts_.protocol + " runs over TCP or UDP");
    const bool datagram = ep->kind == util::Endpoint::Kind::udp;
    if (datagram && !opts_.datagram) return core::make_error("listen " + text + ": " + opts_.protocol + " runs over TCP, not UDP");
    if (!datagram && !opts_.stream) return core::make_error("listen " + text + ": " + opts_.protocol + " runs over UDP, not TCP");
    if (datagram) {
        auto fd = util::listen_endpoint(*ep);
        if (!fd) return core::make_error("listen " + text + ": " + fd.error().message);
        auto d = std::make_unique<Datagram>();
        d->fd = std::move(*fd);
        d->endpoint = *ep;
        d->endpoint.port = local_port(d->fd.get());
        endpoints_.push_back({true, bound_address(*ep), d->endpoint.port});
        order_.push_back(d->endpoint.to_string());
        datagrams_.push_back(std::move(d));
        return core::ok();
    }
    auto bound = util::bind_listener(*ep);
    if (!bound) return core::make_error("listen " + text + ": " + bound.error().message);
    endpoints_.push_back({false, bound_address(*ep), bound->endpoint.port});
    order_.push_back(bound->endpoint.to_string());
    stream_.push_back(std::move(*bound));
    return core::ok();
}

core::Status DropinSource::start(util::EventLoop& loop) {
    if (loop_ != nullptr) return core::ok();
    loop_ = &loop;
    if (!stream_.empty()) {
        util::ConnServerLimits limits;
        limits.accept.max_connections = opts_.max_clients;
        limits.accept.max_per_peer = opts_.max_clients_per_peer;
        limits.accept.idle_timeout = opts_.idle_timeout;
        server_ = std::make_unique<util::ConnServer>(loop, name_, limits, opts_.filter,
                                                     [this](const util::Peer& peer) { return protocol_->session(peer); });
        for (auto& b : stream_) server_->adopt(std::move(b));
        stream_.clear();
    }
    for (auto& d : datagrams_) {
        Datagram* raw = d.get();
        loop.add(raw->fd.get(), EPOLLIN, [this, raw](std::uint32_t) { on_datagrams(*raw); });
    }
    util::log(util::Level::info, "{} source {}: listening on {}", opts_.protocol, name_, fmt::join(order_, ", "));
    protocol_->started(endpoints_);
    return core::ok();
}

void DropinSource::stop(util::EventLoop& loop) {
    if (loop_ == nullptr) return;
    protocol_->stopping();
    for (auto& d : datagrams_) loop.remove(d->fd.get());
    if (server_) {
        const auto st = server_->stats();
        refused_streams_ += st.accept.refused_filter;
        overflow_seen_ += st.overflow;
        malformed_seen_ += st.malformed;
        server_.reset();  // closes the TCP listeners and connections: the daemon destroys a stopped source
    }
    loop_ = nullptr;
}

SourceCounters DropinSource::counters() const {
    SourceCounters c = protocol_->counters;
    c.untrusted += refused_datagrams_ + refused_streams_;
    c.malformed += truncated_ + malformed_seen_;
    c.dropped += overflow_seen_;
    if (server_) {
        const auto s = server_->stats();
        c.untrusted += s.accept.refused_filter;
        c.dropped += s.overflow;
        c.malformed += s.malformed;
    }
    return c;
}

std::vector<std::string> DropinSource::local_endpoints() const { return order_; }

void DropinSource::on_datagrams(Datagram& d) {
    std::array<char, k_datagram_buffer> buf;
    std::string reply;
    for (std::size_t i = 0; i < k_datagrams_per_wakeup; ++i) {
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        const ssize_t n = recvfrom(d.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                                   reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                warn_.log(util::Level::warning, "{}: recvfrom: {}", name_, std::strerror(errno));
            return;
        }
        const auto peer = util::to_address(from);
        if (!peer || !opts_.filter.admits(*peer)) {
            ++refused_datagrams_;
            warn_.log(util::Level::warning, "{}: datagram from {} refused (not in allow_from)", name_,
                      peer ? peer->to_string() : std::string("?"));
            continue;
        }
        if (static_cast<std::size_t>(n) > buf.size()) {
            ++truncated_;
            warn_.log(util::Level::warning, "{}: oversized datagram ({} bytes) from {} ignored", name_, n,
                      peer->to_string());
            continue;
        }
        reply.clear();
        protocol_->datagram(std::string_view(buf.data(), static_cast<std::size_t>(n)), *peer, reply);
        if (!reply.empty())
            (void)sendto(d.fd.get(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&from), from_len);
    }
}

core::Status deliver_now(LoginSink& sink, const core::Address& ip, std::string user, std::string server,
                         const std::string& source, const core::Clock& clock) {
    const core::LoginEvent ev{ip, std::move(user), std::move(server), source, clock.now(), core::TimeOrigin::push, false};
    return sink.deliver(std::span<const core::LoginEvent>(&ev, 1), core::Checkpoint{});
}

bool is_dropin_type(std::string_view type) {
    return type == "drac" || type == "whoson" || type == "relay-ctrl-udp";
}

core::Result<std::unique_ptr<Source>> open_dropin_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                         PermitAccess& access, const core::Clock& clock) {
    if (cfg.type == "drac") return open_drac_source(cfg, sink, clock);
    if (cfg.type == "whoson") return open_whoson_source(cfg, sink, access, clock);
    if (cfg.type == "relay-ctrl-udp") return open_relay_ctrl_source(cfg, sink, clock);
    return core::make_error("not a drop-in source type: " + cfg.type);
}

}  // namespace rp::sources
