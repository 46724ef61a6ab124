#include "frontends/readsocket_frontend.hpp"

#include <memory>

#include "frontends/line_codec.hpp"

namespace rp::frontends {
namespace {

class ReadsocketSession final : public StreamSession {
public:
    ReadsocketSession(const PermitOracle& oracle, FrontendCounters& counters, std::size_t max_line)
        : oracle_(oracle), counters_(counters), reader_(max_line) {}

    Next on_data(std::string_view in, std::string& out) override {
        const auto step = reader_.feed(in);
        if (step.kind == RequestLineReader::Step::Kind::need_more) return Next::more;
        ++counters_.requests;
        if (step.kind == RequestLineReader::Step::Kind::error) {
            ++counters_.malformed;
            out.append("no");
        } else {
            answer(reader_.line(), out);
        }
        return Next::close;  // bytes after the first line are ignored
    }

    void on_eof(std::string& out) override {
        if (!reader_.finish()) return;  // nothing sent: close without a reply
        ++counters_.requests;
        answer(reader_.line(), out);
    }

private:
    void answer(std::string_view line, std::string& out) {
        bool permitted = false;
        out.append(readsocket_answer(line, oracle_, permitted));
        if (permitted) ++counters_.permitted;
    }

    const PermitOracle& oracle_;
    FrontendCounters& counters_;
    RequestLineReader reader_;
};

}  // namespace

ReadsocketFrontend::ReadsocketFrontend(util::EventLoop& loop, const PermitOracle& oracle, ReadsocketLimits limits)
    : StreamFrontend(loop, "readsocket", StreamLimits{limits.request_timeout, limits.max_clients},
                     [&oracle, max = limits.max_request_bytes](FrontendCounters& counters) -> std::unique_ptr<StreamSession> {
                         return std::make_unique<ReadsocketSession>(oracle, counters, max);
                     }) {}

}  // namespace rp::frontends
