// PipelinedSession: the session of a stream protocol whose requests may be pipelined on one
// connection (Postfix policy, socketmap, OpenSMTPD table-socketmap). Every complete request the
// incremental parser yields is answered in order, into the same output; a parse error ends the
// connection (the replies to earlier requests are still sent, StreamServer's rule). The protocol
// is the derived class's answer(); the loop, and counting requests and permits, are here once.
//
// `Parser` has feed(std::string_view) -> Step{kind, consumed}, consuming at most one request per
// call, with Step::Kind holding `k_request` (a request is complete), `error` and a need-more kind.
// Thread-safety: one connection's state, on the loop's thread (as StreamSession).
// Security: the bytes are untrusted; the parser bounds what it keeps.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "frontends/permit_oracle.hpp"
#include "frontends/stream_server.hpp"

namespace rp::frontends {

template <typename Parser, typename Parser::Step::Kind k_request>
class PipelinedSession : public StreamSession {
public:
    Next on_data(std::string_view in, std::string& out) final {
        while (!in.empty()) {
            const auto step = parser_.feed(in);
            in.remove_prefix(step.consumed);
            if (step.kind == k_request) {
                ++counters_.requests;
                if (answer(out)) ++counters_.permitted;
            } else if (step.kind == Parser::Step::Kind::error) {
                return Next::malformed;
            } else {
                break;
            }
        }
        return Next::more;
    }

protected:
    PipelinedSession(Parser parser, FrontendCounters& counters) : parser_(std::move(parser)), counters_(counters) {}
    // Appends the reply to the request parser_ holds now; true when it permitted relaying.
    virtual bool answer(std::string& out) = 0;

    Parser parser_;

private:
    FrontendCounters& counters_;
};

}  // namespace rp::frontends
