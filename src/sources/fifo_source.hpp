// FifoSource: reads log lines from a named pipe that a syslog daemon writes into (`type = "fifo"`).
//
// The pipe is created (mkfifo, then `mode` and `group` applied through the opened descriptor) if
// it is missing, and held open O_RDWR|O_NONBLOCK from start() to stop(): while the daemon runs a
// writer never meets a pipe without a reader (no ENXIO, no SIGPIPE, no blocking open), and the
// reader never sees EOF when a writer closes.
//
// Never stalling the writer (a full pipe blocks syslogd and every login on the host): every
// wake-up first drains the pipe completely, and only then parses and delivers a bounded slice of
// the backlog (by bytes and by time); the rest follows from a 0 ms timer, so the pipe is read
// again between slices.
//
// Never losing a login to noise (issue 12 item 16): the lines read pass the parser's candidate
// filter (the matcher's literal prefilter, one pass at memory speed) before they are queued, so
// the bounded backlog holds only lines that may be logins; the others are counted `filtered`. A
// candidate is dropped (counted `dropped`, logged with a rate limit) only when the backlog is
// full of candidates, i.e. the downstream is stuck (deliver() failing) or slower than a writer
// that writes logins alone. Below the rate docs/journald.md states, nothing is lost.
//
// Pipe from the service manager: when systemd passes a FIFO (a socket unit with ListenFIFO=,
// LISTEN_FDS; matched by FileDescriptorName= equal to the source's name or path, or else by the
// path's inode), it is read instead of opening the path, so a writer had a reader while the
// daemon was down. Lines already in it at start are a backlog (LoginEvent::backlog).
//
// A FIFO has no resume position: events are delivered with an empty checkpoint key. A failed
// deliver() is retried after retry_delay; reading (and, if needed, dropping) continues meanwhile.
//
// Thread-safety: loop thread only (like every Source).
// Security: the content is untrusted (anyone who can write to the pipe can forge lines: keep the
// mode tight). Lines longer than max_line_bytes are discarded up to their newline and counted
// (malformed + dropped), never parsed in pieces; dropping always happens at line boundaries so two
// partial lines are never spliced. A `path` that exists but is not a FIFO, or is a symlink, is
// refused (never followed, never replaced).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/file_tail_source.hpp"
#include "sources/source.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/systemd_fds.hpp"
#include "util/unique_fd.hpp"

namespace rp::sources {

struct FifoOptions {
    std::uint32_t mode = 0620;  // permissions of a pipe we create (masked to 0777)
    std::string group;          // group of a pipe we create; empty = the process's group
    std::size_t max_line_bytes = 64 * 1024;
    std::size_t read_chunk = 64 * 1024;
    // Candidate lines waiting for the parser; beyond this, newly read candidates are dropped.
    std::size_t max_backlog_bytes = 16 * 1024 * 1024;
    // Work per wake-up: parse and deliver at most this many bytes or for about this long.
    std::size_t max_parse_bytes_per_wakeup = 256 * 1024;
    std::chrono::milliseconds max_parse_time_per_wakeup{10};
    // Lines handed to the parser (and events to one deliver()) per batch.
    std::size_t batch_bytes = 64 * 1024;
    std::chrono::milliseconds retry_delay{1'000};
    // Descriptors passed by the service manager; null: the process's (util::ListenFds::process()).
    const util::ListenFds* inherited = nullptr;
};

class FifoSource final : public LineSource {
public:
    // REQUIRES: `sink` and `clock` outlive this object; after start(), so does the loop (or
    // stop() is called first). Events the parser leaves with an empty `source` get `name`.
    FifoSource(std::string name, std::string path, LineParser parser, LoginSink& sink, const core::Clock& clock,
               FifoOptions opts = {});
    ~FifoSource() override;
    FifoSource(const FifoSource&) = delete;
    FifoSource& operator=(const FifoSource&) = delete;

    const std::string& path() const { return path_; }

    // Creates the pipe if missing (mode, group), opens it O_RDWR|O_NONBLOCK and registers it.
    // Errors: path exists and is not a FIFO or is a symlink, unknown group, mkfifo/open/chown fails.
    core::Status start(util::EventLoop& loop) override;
    // Parses what is still in the backlog (best effort, one delivery attempt), unregisters and
    // closes the pipe. The pipe itself stays. Safe to call when not started.
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override { return counters_; }

    // Diagnostics (and tests): bytes of candidate lines waiting for the parser.
    std::size_t backlog_bytes() const { return backlog_.size() - head_; }

private:
    void on_readable();
    void drain_pipe();
    core::Result<util::UniqueFd> take_inherited();
    core::Result<util::UniqueFd> open_pipe();
    void ingest(const char* data, std::size_t n);
    void accept_line(const char* data, std::size_t n);  // the tail of a line, '\n' included
    void queue_candidates();                            // fresh_ -> backlog_, noise left out
    void compact();
    void process();                                     // a bounded slice of the backlog
    bool deliver_batch();                               // false: deliver() failed
    void schedule();
    void on_continue();
    void on_retry();

    std::string path_;
    FifoOptions opts_;

    util::EventLoop* loop_ = nullptr;
    util::UniqueFd fd_;
    util::UniqueFd keep_writer_;  // a passed pipe opened read-only: our write end, so no EOF
    std::vector<char> buf_;
    std::string fresh_;     // complete lines just read, before the prefilter
    std::string partial_;   // the incomplete last line read (never longer than max_line_bytes)
    bool skipping_ = false; // inside an over-long or dropped line: discard up to its newline
    std::string backlog_;   // complete lines, from head_
    std::size_t head_ = 0;
    std::size_t batch_end_ = 0;  // end of the batch whose events_ await delivery (0 = none)
    std::size_t stale_end_ = 0;  // end of the lines a passed pipe held at start (a backlog)
    std::vector<core::LoginEvent> events_;
    bool failing_ = false;
    util::EventLoop::TimerId continue_timer_ = 0;
    util::EventLoop::TimerId retry_timer_ = 0;
    SourceCounters counters_;
    util::RateLimitedLog warn_;
};

// The factory the daemon calls for `type = "fifo"` (uses path, name, mode, group).
core::Result<std::unique_ptr<Source>> open_fifo_source(const config::SourceConfig& cfg, LineParser parser,
                                                       LoginSink& sink, const core::Clock& clock);

}  // namespace rp::sources
