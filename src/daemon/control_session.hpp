// ControlSession: one control-socket connection's protocol state, served by util::ConnServer
// (conn_server.hpp: accepting, SO_PEERCRED check hook, idle rule, longest-idle eviction, output
// caps, EMFILE back-off). Line in, line out: it cuts requests at '\n' and asks `answer` for
// each reply; what a request means is the command table's business (control_commands.cpp).
//
// Nothing here waits for a client (issue 12 items 5 and 10). Replies are answered only while the
// connection's unsent output is below `output_budget`; the complete request lines that remain are
// held (the session is then producing(), so ConnServer neither feeds nor reads the connection)
// and answered as the client drains its replies. A reply may be a stream (ControlReplyStream:
// `list` at any size): it is produced piece by piece the same way, with bounded work per piece,
// and the requests after it wait for its end. So a client that sends requests and never reads
// costs at most one read slice of held input plus `output_budget` plus one reply, and no loop time.
//
// Thread-safety: not thread-safe; the loop's thread only.
// Security: peers are local users that passed the credential check, still untrusted: a line is
// at most `max_line` bytes (a longer one gets an error reply and the connection closes).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/conn_server.hpp"

namespace rp::daemon {

// What a control client may do. Every peer that passes the credential check (root, the daemon's
// user, control_group) holds `write` today; the command table says what each command needs.
enum class ControlPrivilege : std::uint8_t { read = 1, write = 2 };

struct ControlPeer {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t pid = 0;
    ControlPrivilege privilege = ControlPrivilege::read;
};

// A reply produced in pieces (list). REQUIRES of next(): bounded work and bytes per call.
class ControlReplyStream {
public:
    virtual ~ControlReplyStream() = default;
    // Appends the next piece; returns false once the reply is complete (its '\n' appended).
    virtual bool next(std::string& out) = 0;
};

// The reply to one request: a complete line (ending in '\n'), or a stream.
struct ControlReply {
    std::string line;
    std::unique_ptr<ControlReplyStream> stream;
};

struct ControlSessionLimits {
    std::size_t max_line = 64 * 1024;
    std::size_t output_budget = 64 * 1024;  // the ConnServer's soft_output
};

struct ControlSessionCounters {
    std::uint64_t requests = 0;
    std::uint64_t too_long = 0;  // lines over max_line
    std::uint64_t streams = 0;   // streamed replies started
};

class ControlSession final : public util::StreamSession {
public:
    using Answer = std::function<ControlReply(std::string_view line, const ControlPeer&)>;

    // `answer` and `counters` must outlive the session.
    ControlSession(ControlPeer peer, const Answer& answer, ControlSessionLimits limits, ControlSessionCounters& counters);

    Next on_data(std::string_view in, std::string& out) override;
    bool producing() const override { return stream_ != nullptr || held_; }
    Next produce(std::string& out) override;
    std::string_view error_text() const override { return "request line too long"; }

    // The peer's credentials (SO_PEERCRED) as the check hook saw them.
    static ControlPeer peer_of(const util::Peer& peer);

private:
    Next answer_lines(std::string& out);

    ControlPeer peer_;
    const Answer& answer_;
    ControlSessionLimits limits_;
    ControlSessionCounters& counters_;
    std::string in_;
    std::unique_ptr<ControlReplyStream> stream_;
    bool held_ = false;  // in_ holds a complete line not answered yet (output budget reached)
};

// The ConnServer limits of the control socket: 64 connections (a full table closes the longest
// idle: admin traffic, the newest caller is likely the administrator), idle 60 s, 64 KiB soft
// output cap; the hard cap only guards against a single reply far beyond any real one.
util::ConnServerLimits control_server_limits();

}  // namespace rp::daemon
