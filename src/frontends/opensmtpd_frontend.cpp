#include "frontends/opensmtpd_frontend.hpp"

#include <memory>

#include "frontends/line_codec.hpp"
#include "frontends/pipelined_session.hpp"

namespace rp::frontends {
namespace {

class OpensmtpdSession final : public PipelinedSession<RequestLineReader, RequestLineReader::Step::Kind::line> {
public:
    OpensmtpdSession(const PermitOracle& oracle, FrontendCounters& counters, std::size_t max_line)
        : PipelinedSession(RequestLineReader(max_line), counters), oracle_(oracle) {}

    std::string_view error_text() const override { return "line too long or NUL byte"; }

private:
    bool answer(std::string& out) override {
        bool permitted = false;
        opensmtpd_answer(parser_.line(), oracle_, out, permitted);
        return permitted;
    }

    const PermitOracle& oracle_;
};

}  // namespace

OpensmtpdFrontend::OpensmtpdFrontend(util::EventLoop& loop, const PermitOracle& oracle, OpensmtpdLimits limits)
    : StreamFrontend(loop, "opensmtpd table", StreamLimits{limits.idle_timeout, limits.max_clients},
                     [&oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                         return std::make_unique<OpensmtpdSession>(oracle, counters, max);
                     },
                     /*unix_only=*/true) {}

}  // namespace rp::frontends
