#include "frontends/opensmtpd_frontend.hpp"

#include <memory>

#include "frontends/line_codec.hpp"

namespace rp::frontends {
namespace {

class OpensmtpdSession final : public StreamSession {
public:
    OpensmtpdSession(const PermitOracle& oracle, FrontendCounters& counters, std::size_t max_line)
        : oracle_(oracle), counters_(counters), reader_(max_line) {}

    Next on_data(std::string_view in, std::string& out) override {
        while (!in.empty()) {
            const auto step = reader_.feed(in);
            in.remove_prefix(step.consumed);
            if (step.kind == RequestLineReader::Step::Kind::line) {
                ++counters_.requests;
                bool permitted = false;
                opensmtpd_answer(reader_.line(), oracle_, out, permitted);
                if (permitted) ++counters_.permitted;
            } else if (step.kind == RequestLineReader::Step::Kind::error) {
                return Next::malformed;
            } else {
                break;
            }
        }
        return Next::more;
    }

    std::string_view error_text() const override { return "line too long or NUL byte"; }

private:
    const PermitOracle& oracle_;
    FrontendCounters& counters_;
    RequestLineReader reader_;
};

}  // namespace

OpensmtpdFrontend::OpensmtpdFrontend(util::EventLoop& loop, const PermitOracle& oracle, OpensmtpdLimits limits)
    : server_(loop, "opensmtpd table", StreamLimits{limits.idle_timeout, limits.max_clients},
              [&oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                  return std::make_unique<OpensmtpdSession>(oracle, counters, max);
              },
              /*unix_only=*/true) {}

}  // namespace rp::frontends
