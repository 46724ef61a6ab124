#include "daemon/control_session.hpp"

#include "daemon/control_codec.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

util::RateLimitedLog& session_log() {
    static util::RateLimitedLog log;
    return log;
}

}  // namespace

util::ConnServerLimits control_server_limits() {
    util::ConnServerLimits l;
    l.accept.max_connections = 64;
    l.accept.max_per_peer = 0;  // unix peers only
    l.accept.idle_timeout = std::chrono::seconds(60);
    l.soft_output = 64 * 1024;
    // A session answers only below soft_output, so the unsent output is at most that plus one
    // reply (status with many sources and exports: a few KiB).
    l.hard_output = 16 * 1024 * 1024;
    return l;
}

ControlPeer ControlSession::peer_of(const util::Peer& peer) {
    ControlPeer p;
    if (peer.cred) {
        p.uid = peer.cred->uid;
        p.gid = peer.cred->gid;
        p.pid = peer.cred->pid;
    }
    return p;
}

ControlSession::ControlSession(ControlPeer peer, const Answer& answer, ControlSessionLimits limits,
                               ControlSessionCounters& counters)
    : peer_(peer), answer_(answer), limits_(limits), counters_(counters) {}

util::StreamSession::Next ControlSession::on_data(std::string_view in, std::string& out) {
    in_.append(in);
    return answer_lines(out);
}

util::StreamSession::Next ControlSession::produce(std::string& out) {
    if (stream_) {
        if (!stream_->next(out)) stream_.reset();
        return Next::more;
    }
    return answer_lines(out);
}

// Answers complete lines while the output is below the budget and no stream runs; the rest
// waits in in_ (held_), answered by produce() as the client drains.
util::StreamSession::Next ControlSession::answer_lines(std::string& out) {
    std::size_t pos = 0;
    while (!stream_ && out.size() < limits_.output_budget) {
        const auto nl = in_.find('\n', pos);
        if (nl == std::string::npos) break;
        ++counters_.requests;
        auto reply = answer_(std::string_view(in_).substr(pos, nl - pos), peer_);
        out += reply.line;
        if (reply.stream) {
            ++counters_.streams;
            stream_ = std::move(reply.stream);
        }
        pos = nl + 1;
    }
    in_.erase(0, pos);
    const auto nl = in_.find('\n');
    held_ = nl != std::string::npos;
    if (!held_ && in_.size() > limits_.max_line) {
        ++counters_.too_long;
        session_log().log(util::Level::warning, "control: uid {} sent a request line over {} bytes; closing",
                          static_cast<long>(peer_.uid), limits_.max_line);
        out += control_error_reply("request line too long (at most " + std::to_string(limits_.max_line) + " bytes)");
        in_.clear();
        return Next::close;
    }
    return Next::more;
}

}  // namespace rp::daemon
