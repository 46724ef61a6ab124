#include "daemon/metrics_server.hpp"

namespace rp::daemon {

class MetricsServer::Session final : public util::StreamSession {
public:
    explicit Session(MetricsServer& owner) : owner_(owner) {}

    Next on_data(std::string_view in, std::string& out) override {
        const auto r = codec_.feed(in);
        switch (r.kind) {
            case MetricsHttpCodec::Result::Kind::need_more: return Next::more;
            case MetricsHttpCodec::Result::Kind::error:
                out += metrics_http_error(r.status);
                error_ = r.reason;
                // A wrong path or method is a well-formed request: answered, not a protocol violation.
                return r.status == 404 || r.status == 405 ? Next::close : Next::malformed;
            case MetricsHttpCodec::Result::Kind::request: break;
        }
        ++owner_.requests_;
        const auto reply = owner_.handler_(r.route);
        out += metrics_http_response(reply.status, reply.content_type, reply.body, r.head);
        return Next::close;
    }
    std::string_view error_text() const override { return error_; }

private:
    MetricsServer& owner_;
    MetricsHttpCodec codec_;
    std::string error_;
};

namespace {

util::ConnServerLimits limits(std::chrono::milliseconds idle_timeout) {
    util::ConnServerLimits l;
    l.accept.max_connections = 64;
    l.accept.max_per_peer = 8;
    l.accept.idle_timeout = idle_timeout;
    l.soft_output = 4 * 1024 * 1024;  // a page is written whole; a client that does not read is closed by idle_timeout
    l.hard_output = 16 * 1024 * 1024;
    return l;
}

}  // namespace

MetricsServer::MetricsServer(util::EventLoop& loop, const std::vector<core::Cidr>& allow_from, Handler handler,
                             std::chrono::milliseconds idle_timeout)
    : handler_(std::move(handler)),
      server_(loop, "metrics", limits(idle_timeout), util::PeerFilter::allow_from(allow_from),
              [this](const util::Peer&) { return std::make_unique<Session>(*this); }) {}

core::Status MetricsServer::listen(const std::vector<std::string>& endpoints) {
    return server_.listen(endpoints, "HTTP");
}

void MetricsServer::close() { server_.close(); }

}  // namespace rp::daemon
