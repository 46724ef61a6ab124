// `type = "whoson"`: a whosond replacement (whoson_codec.hpp) on `listen` (tcp and udp
// endpoints; conventionally port 9876) for peers in `allow_from` (default loopback; others are
// refused at accept, or their datagrams get no answer). LOGIN grants (user = the name, server
// "whoson") through the PermitPolicy, LOGOUT revokes the address, QUERY answers from the live
// permits (PermitAccess::find). A bad request gets `*` and, over TCP, the connection stays open;
// a request longer than the framer's limit closes it (malformed).
#include "sources/dropin_source.hpp"
#include "sources/whoson_codec.hpp"

namespace rp::sources {
namespace {

class WhosonProtocol final : public DropinProtocol {
public:
    WhosonProtocol(std::string name, LoginSink& sink, PermitAccess& access, const core::Clock& clock)
        : name_(std::move(name)), sink_(sink), access_(access), clock_(clock) {}

    std::unique_ptr<util::StreamSession> session(const util::Peer& peer) override;
    void datagram(std::string_view data, const core::Address& peer, std::string& reply) override {
        const auto req = parse_whoson_datagram(data);
        if (req.kind == WhosonRequest::Kind::quit) return;  // nothing to close over UDP
        reply = answer(req, peer.to_string());
    }

    // The reply to one request.
    std::string answer(const WhosonRequest& req, const std::string& peer) {
        ++counters.lines;
        switch (req.kind) {
            case WhosonRequest::Kind::login: {
                ++counters.matches;
                auto st = deliver_now(sink_, req.ip, req.name, "whoson", name_, clock_);
                if (!st) {
                    ++counters.dropped;
                    warn_.log(util::Level::warning, "{}: could not store the login of {} from {}: {}", name_,
                              util::esc(req.name), req.ip.to_string(), st.error().message);
                    return whoson_reply('-', "not stored");
                }
                return whoson_reply('+', "LOGIN OK");
            }
            case WhosonRequest::Kind::logout: {
                auto n = access_.revoke(req.ip, name_);
                if (!n) return whoson_reply('-', "not removed");
                return *n > 0 ? whoson_reply('+', "LOGOUT OK") : whoson_reply('-', "not logged in");
            }
            case WhosonRequest::Kind::query: {
                const auto p = access_.find(req.ip);
                return p ? whoson_reply('+', p->user) : whoson_reply('-', "not logged in");
            }
            case WhosonRequest::Kind::quit:
                return whoson_reply('+', "BYE");
            case WhosonRequest::Kind::bad:
                break;
        }
        ++counters.malformed;
        warn_.log(util::Level::warning, "{}: bad request from {}: {}", name_, peer, req.error);
        return whoson_reply('*', req.error);
    }

private:
    std::string name_;
    LoginSink& sink_;
    PermitAccess& access_;
    const core::Clock& clock_;
    util::RateLimitedLog warn_;
};

class WhosonSession final : public util::StreamSession {
public:
    WhosonSession(WhosonProtocol& protocol, std::string peer) : protocol_(protocol), peer_(std::move(peer)) {}

    Next on_data(std::string_view in, std::string& out) override {
        framer_.feed(in);
        std::string line;
        for (;;) {
            switch (framer_.next(line)) {
                case WhosonFramer::State::need_more:
                    return Next::more;
                case WhosonFramer::State::error:
                    out += whoson_reply('*', "request too long");
                    return Next::malformed;
                case WhosonFramer::State::request:
                    break;
            }
            const auto req = parse_whoson_request(line);
            out += protocol_.answer(req, peer_);
            if (req.kind == WhosonRequest::Kind::quit) return Next::close;
        }
    }
    std::string_view error_text() const override { return "whoson request too long"; }

private:
    WhosonProtocol& protocol_;
    std::string peer_;
    WhosonFramer framer_;
};

std::unique_ptr<util::StreamSession> WhosonProtocol::session(const util::Peer& peer) {
    return std::make_unique<WhosonSession>(*this, peer.name);
}

}  // namespace

core::Result<std::unique_ptr<Source>> open_whoson_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                         PermitAccess& access, const core::Clock& clock) {
    DropinOptions o{.protocol = "whoson", .listen = cfg.listen, .filter = util::PeerFilter::allow_from(cfg.allow_from)};
    auto src = DropinSource::open(cfg.name, std::move(o), std::make_unique<WhosonProtocol>(cfg.name, sink, access, clock));
    if (!src) return src.error();
    return std::unique_ptr<Source>(std::move(*src));
}

}  // namespace rp::sources
