#include "frontends/socketmap_frontend.hpp"

#include <memory>

#include "frontends/netstring_codec.hpp"
#include "frontends/pipelined_session.hpp"

namespace rp::frontends {
namespace {

class SocketmapSession final : public PipelinedSession<NetstringParser, NetstringParser::Step::Kind::payload> {
public:
    SocketmapSession(const PermitOracle& oracle, const std::shared_ptr<const StaticAnswers>& statics,
                     FrontendCounters& counters, std::size_t max_payload)
        : PipelinedSession(NetstringParser(max_payload), counters), oracle_(oracle), statics_(statics) {}

    std::string_view error_text() const override { return describe(parser_.error()); }

private:
    bool answer(std::string& out) override {
        bool permitted = false;
        append_netstring(socketmap_answer(parser_.payload(), oracle_, permitted, statics_.get()), out);
        return permitted;
    }

    const PermitOracle& oracle_;
    const std::shared_ptr<const StaticAnswers>& statics_;  // the frontend's, which outlives us
};

}  // namespace

SocketmapFrontend::SocketmapFrontend(util::EventLoop& loop, const PermitOracle& oracle, SocketmapLimits limits)
    : StreamFrontend(loop, "socketmap", StreamLimits{limits.idle_timeout, limits.max_clients},
                     [this, &oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                         return std::make_unique<SocketmapSession>(oracle, statics_, counters, max);
                     }) {}

}  // namespace rp::frontends
