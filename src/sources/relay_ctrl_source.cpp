// `type = "relay-ctrl-udp"`: relay-ctrl-send's datagrams (relay_ctrl_codec.hpp) on `listen`
// (udp endpoints only; conventionally port 811) from peers in `allow_from` (default loopback).
// Each valid address is granted (user "", server "relay-ctrl") and acknowledged with 0x01; an
// invalid datagram is counted malformed and not answered.
#include "sources/dropin_source.hpp"
#include "sources/relay_ctrl_codec.hpp"

namespace rp::sources {
namespace {

class RelayCtrlProtocol final : public DropinProtocol {
public:
    RelayCtrlProtocol(std::string name, LoginSink& sink, const core::Clock& clock)
        : name_(std::move(name)), sink_(sink), clock_(clock) {}

    std::unique_ptr<util::StreamSession> session(const util::Peer&) override { return nullptr; }  // udp only

    void datagram(std::string_view data, const core::Address& peer, std::string& reply) override {
        ++counters.lines;
        const auto ip = parse_relay_ctrl_datagram(data);
        if (!ip) {
            ++counters.malformed;
            warn_.log(util::Level::warning, "{}: datagram from {} is not an address", name_, peer.to_string());
            return;
        }
        ++counters.matches;
        if (auto st = deliver_now(sink_, *ip, "", "relay-ctrl", name_, clock_); !st) {
            ++counters.dropped;
            warn_.log(util::Level::warning, "{}: could not store {}: {}", name_, ip->to_string(), st.error().message);
            return;  // no acknowledgement: relay-ctrl-send tries again
        }
        reply.push_back(k_relay_ctrl_ack);
    }

private:
    std::string name_;
    LoginSink& sink_;
    const core::Clock& clock_;
    util::RateLimitedLog warn_;
};

}  // namespace

core::Result<std::unique_ptr<Source>> open_relay_ctrl_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                             const core::Clock& clock) {
    DropinOptions o{.protocol = "relay-ctrl-udp",
                    .listen = cfg.listen,
                    .filter = util::PeerFilter::allow_from(cfg.allow_from),
                    .stream = false};
    auto src = DropinSource::open(cfg.name, std::move(o), std::make_unique<RelayCtrlProtocol>(cfg.name, sink, clock));
    if (!src) return src.error();
    return std::unique_ptr<Source>(std::move(*src));
}

}  // namespace rp::sources
