#include "frontends/socketmap_frontend.hpp"

#include <memory>

#include "frontends/netstring_codec.hpp"

namespace rp::frontends {
namespace {

class SocketmapSession final : public StreamSession {
public:
    SocketmapSession(const PermitOracle& oracle, FrontendCounters& counters, std::size_t max_payload)
        : oracle_(oracle), counters_(counters), parser_(max_payload) {}

    Next on_data(std::string_view in, std::string& out) override {
        while (!in.empty()) {
            const auto step = parser_.feed(in);
            in.remove_prefix(step.consumed);
            if (step.kind == NetstringParser::Step::Kind::payload) {
                ++counters_.requests;
                bool permitted = false;
                append_netstring(socketmap_answer(parser_.payload(), oracle_, permitted), out);
                if (permitted) ++counters_.permitted;
            } else if (step.kind == NetstringParser::Step::Kind::error) {
                return Next::malformed;
            } else {
                break;
            }
        }
        return Next::more;
    }

    std::string_view error_text() const override { return describe(parser_.error()); }

private:
    const PermitOracle& oracle_;
    FrontendCounters& counters_;
    NetstringParser parser_;
};

}  // namespace

SocketmapFrontend::SocketmapFrontend(util::EventLoop& loop, const PermitOracle& oracle, SocketmapLimits limits)
    : server_(loop, "socketmap", StreamLimits{limits.idle_timeout, limits.max_clients},
              [&oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                  return std::make_unique<SocketmapSession>(oracle, counters, max);
              }) {}

}  // namespace rp::frontends
