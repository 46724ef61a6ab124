#include "sources/auth_policy_source.hpp"


namespace rp::sources {
namespace {

constexpr const char* k_server = "dovecot-auth-policy";

}  // namespace

// One HTTP connection: every complete request is answered in order; a bad request gets its
// 4xx answer and ends the connection, as does a request without keep-alive.
class AuthPolicySource::Session final : public util::StreamSession {
public:
    Session(AuthPolicySource& src, std::string peer) : src_(src), peer_(std::move(peer)), parser_(src.opts_.limits) {}

    Next on_data(std::string_view in, std::string& out) override {
        parser_.feed(in);
        HttpRequest req;
        for (;;) {
            const auto st = parser_.next(&req);
            if (st == HttpRequestParser::State::need_more) return Next::more;
            if (st == HttpRequestParser::State::error) {
                ++src_.counters_.malformed;
                src_.warn_.log(util::Level::warning, "{}: bad HTTP request from {}: {}", src_.name_, peer_,
                               parser_.error_reason());
                out += http_error_response(parser_.error_status(), false);
                return Next::close;
            }
            ++src_.counters_.lines;
            if (src_.api_header_ && !has_api_header(req, *src_.api_header_)) {
                ++src_.counters_.untrusted;
                src_.warn_.log(util::Level::warning, "{}: request from {} without the api_header: 401", src_.name_,
                               peer_);
                out += http_error_response(401, req.keep_alive);
            } else {
                src_.handle_request(req, out);
            }
            if (!req.keep_alive) return Next::close;
        }
    }

private:
    AuthPolicySource& src_;
    std::string peer_;
    HttpRequestParser parser_;
};

AuthPolicySource::AuthPolicySource(std::string name, AuthPolicyOptions opts, LoginSink& sink, const core::Clock& clock)
    : name_(std::move(name)), opts_(std::move(opts)), api_header_(parse_api_header(opts_.api_header)), sink_(sink),
      clock_(clock) {}

AuthPolicySource::~AuthPolicySource() {
    if (loop_ != nullptr) stop(*loop_);
    else
        for (auto& b : bound_) b.remove_socket_file();  // bound by bind(), never started
}

core::Status AuthPolicySource::bind() {
    if (!bound_.empty()) return core::ok();
    auto bound = util::bind_stream_listeners(name_, opts_.listen, "the auth policy protocol (HTTP)");
    if (!bound) return bound.error();
    bound_ = std::move(*bound);
    return core::ok();
}

core::Status AuthPolicySource::start(util::EventLoop& loop) {
    if (auto st = bind(); !st) return st;
    util::ConnServerLimits limits;
    limits.accept.max_connections = opts_.max_clients;
    limits.accept.max_per_peer = opts_.max_clients_per_peer;
    limits.accept.idle_timeout = opts_.idle_timeout;
    auto server = std::make_unique<util::ConnServer>(
        loop, name_, limits, util::PeerFilter::allow_from(opts_.allow_from),
        [this](const util::Peer& peer) { return std::make_unique<Session>(*this, peer.name); });
    for (auto& b : bound_) {
        util::log(util::Level::info, "{} listening on {}", name_, b.endpoint.to_string());
        server->adopt(std::move(b));
    }
    bound_.clear();
    loop_ = &loop;
    server_ = std::move(server);
    return core::ok();
}

void AuthPolicySource::stop(util::EventLoop& /*loop*/) {
    if (!server_) return;
    const auto s = server_->stats();
    counters_.untrusted += s.accept.refused_filter;
    counters_.dropped += s.overflow;
    server_.reset();  // closes listeners (removing our socket files) and connections
    loop_ = nullptr;
}

SourceCounters AuthPolicySource::counters() const {
    SourceCounters c = counters_;
    if (server_) {
        const auto s = server_->stats();
        c.untrusted += s.accept.refused_filter;
        c.dropped += s.overflow;
    }
    return c;
}

std::vector<std::string> AuthPolicySource::local_endpoints() const {
    return server_ ? server_->local_endpoints() : std::vector<std::string>{};
}

std::size_t AuthPolicySource::open_connections() const { return server_ ? server_->stats().active : 0; }

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
                    warn_.log(util::Level::warning, "{}: could not store the login of {} from {}: {}", name_, util::esc(d.user),
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
