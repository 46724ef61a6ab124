#include "frontends/stream_server.hpp"

namespace rp::frontends {

util::ConnServerLimits StreamServer::conn_limits(const StreamLimits& limits) {
    util::ConnServerLimits l;
    l.accept.max_connections = limits.max_clients;
    l.accept.max_per_peer = limits.max_clients_per_peer;
    l.accept.idle_timeout = limits.idle_timeout;
    return l;
}

StreamServer::StreamServer(util::EventLoop& loop, std::string service, StreamLimits limits, SessionFactory factory,
                           bool unix_only, std::string protocol)
    : unix_only_(unix_only),
      protocol_(std::move(protocol)),
      server_(loop, std::move(service), conn_limits(limits), util::PeerFilter::any(),
              [this, factory = std::move(factory)](const util::Peer&) { return factory(counters_); }) {}

StreamServer::~StreamServer() { close(); }

core::Status StreamServer::listen(const std::vector<std::string>& endpoints) {
    return server_.listen(endpoints, protocol_, unix_only_);
}

void StreamServer::close() { server_.close(); }

std::vector<std::string> StreamServer::local_endpoints() const { return server_.local_endpoints(); }

FrontendCounters StreamServer::counters() const {
    const auto s = server_.stats();
    FrontendCounters c = counters_;
    c.connections = s.accept.accepted;
    c.malformed += s.malformed;
    c.active = s.active;
    c.refused = s.accept.refused_filter + s.accept.refused_check + s.accept.evicted_full + s.accept.evicted_peer_cap;
    return c;
}

}  // namespace rp::frontends
