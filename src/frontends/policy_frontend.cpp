#include "frontends/policy_frontend.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "frontends/pipelined_session.hpp"

namespace rp::frontends {
namespace {

// One connection's protocol state: the parser, fed every read in a loop; each complete request
// is answered in order, and a parse error ends the connection (earlier replies are still sent).
class PolicySession final : public PipelinedSession<PolicyParser, PolicyParser::Step::Kind::request> {
public:
    PolicySession(const PermitOracle& oracle, const PolicyLimits& limits, FrontendCounters& counters)
        : PipelinedSession(PolicyParser(PolicyCodecLimits{limits.max_request_bytes, limits.max_attributes}), counters),
          oracle_(oracle) {}

    std::string_view error_text() const override { return describe(parser_.error()); }

private:
    bool answer(std::string& out) override { return policy_answer(parser_.request(), oracle_, out); }

    const PermitOracle& oracle_;
};

}  // namespace

PolicyFrontend::PolicyFrontend(util::EventLoop& loop, const PermitOracle& oracle, PolicyLimits limits)
    : StreamFrontend(
          loop, "policy service", StreamLimits{limits.idle_timeout, limits.max_clients},
          [&oracle, limits](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
              return std::make_unique<PolicySession>(oracle, limits, counters);
          },
          /*unix_only=*/false, "the policy protocol") {}

PolicyFrontend::~PolicyFrontend() { close(); }

}  // namespace rp::frontends
