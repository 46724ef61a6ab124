// MetricsServer: the [metrics] HTTP listener (GET /metrics, GET /health) on util::ConnServer.
//
// Each connection carries one request (metrics_http.hpp), answered from a Handler that the daemon
// implements by collecting DaemonStats on the loop thread (no locks, no waiting), then closed.
// Limits: 64 connections, 8 per non-loopback peer, a request must be complete within 10 s of
// connecting, 8 KiB per request; peers outside `allow_from` (default loopback) are refused.
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: peers are untrusted. What is served is counters only: no user names or addresses
// (metrics_text.hpp). Malformed requests are counted and logged with a rate limit.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "daemon/metrics_http.hpp"
#include "util/conn_server.hpp"
#include "util/event_loop.hpp"

namespace rp::daemon {

struct MetricsReply {
    int status = 200;
    std::string content_type;
    std::string body;
};

class MetricsServer {
public:
    using Handler = std::function<MetricsReply(MetricsRoute)>;

    // `allow_from` empty = loopback only. `idle_timeout`: tests may shorten it.
    MetricsServer(util::EventLoop& loop, const std::vector<core::Cidr>& allow_from, Handler handler,
                  std::chrono::milliseconds idle_timeout = std::chrono::seconds(10));

    // Binds every endpoint (all or nothing) and starts accepting.
    core::Status listen(const std::vector<std::string>& endpoints);
    void close();
    std::vector<std::string> local_endpoints() const { return server_.local_endpoints(); }
    util::ConnServerStats stats() const { return server_.stats(); }
    std::uint64_t requests() const { return requests_; }

private:
    class Session;
    Handler handler_;
    std::uint64_t requests_ = 0;
    util::ConnServer server_;
};

}  // namespace rp::daemon
