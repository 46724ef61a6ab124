#include "frontends/socketmap_frontend.hpp"

#include <memory>

#include "frontends/netstring_codec.hpp"

namespace rp::frontends {
namespace {

class SocketmapSession final : public StreamSession {
public:
    SocketmapSession(const PermitOracle& oracle, const std::shared_ptr<const StaticAnswers>& statics,
                     FrontendCounters& counters, std::size_t max_payload)
        : oracle_(oracle), statics_(statics), counters_(counters), parser_(max_payload) {}

    Next on_data(std::string_view in, std::string& out) override {
        while (!in.empty()) {
            const auto step = parser_.feed(in);
            in.remove_prefix(step.consumed);
            if (step.kind == NetstringParser::Step::Kind::payload) {
                ++counters_.requests;
                bool permitted = false;
                append_netstring(socketmap_answer(parser_.payload(), oracle_, permitted, statics_.get()), out);
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
    const std::shared_ptr<const StaticAnswers>& statics_;  // the frontend's, which outlives us
    FrontendCounters& counters_;
    NetstringParser parser_;
};

}  // namespace

SocketmapFrontend::SocketmapFrontend(util::EventLoop& loop, const PermitOracle& oracle, SocketmapLimits limits)
    : server_(loop, "socketmap", StreamLimits{limits.idle_timeout, limits.max_clients},
              [this, &oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                  return std::make_unique<SocketmapSession>(oracle, statics_, counters, max);
              }) {}

}  // namespace rp::frontends
