#include "frontends/policy_frontend.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace rp::frontends {
namespace {

// One connection's protocol state: the parser, fed every read in a loop; each complete request
// is answered in order, and a parse error ends the connection (earlier replies are still sent).
class PolicySession final : public StreamSession {
public:
    PolicySession(const PermitOracle& oracle, const PolicyLimits& limits, FrontendCounters& counters)
        : oracle_(oracle), counters_(counters),
          parser_(PolicyCodecLimits{limits.max_request_bytes, limits.max_attributes}) {}

    Next on_data(std::string_view in, std::string& out) override {
        while (!in.empty()) {
            const auto step = parser_.feed(in);
            in.remove_prefix(step.consumed);
            if (step.kind == PolicyParser::Step::Kind::request) {
                ++counters_.requests;
                if (policy_answer(parser_.request(), oracle_, out)) ++counters_.permitted;
            } else if (step.kind == PolicyParser::Step::Kind::error) {
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
    PolicyParser parser_;
};

}  // namespace

PolicyFrontend::PolicyFrontend(util::EventLoop& loop, const PermitOracle& oracle, PolicyLimits limits)
    : server_(
          loop, "policy service", StreamLimits{limits.idle_timeout, limits.max_clients},
          [&oracle, limits](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
              return std::make_unique<PolicySession>(oracle, limits, counters);
          },
          /*unix_only=*/false, "the policy protocol") {}

PolicyFrontend::~PolicyFrontend() { close(); }

core::Status PolicyFrontend::listen(const std::vector<std::string>& endpoints) { return server_.listen(endpoints); }

void PolicyFrontend::close() { server_.close(); }

std::vector<std::string> PolicyFrontend::local_endpoints() const { return server_.local_endpoints(); }

FrontendCounters PolicyFrontend::counters() const { return server_.counters(); }

}  // namespace rp::frontends
