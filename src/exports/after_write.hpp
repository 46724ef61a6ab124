// AfterWriteCommand: runs an [[export]]'s `after_write` command (e.g. `smtpctl update table
// relaypermit`) without ever blocking the daemon's loop.
//
// The command is an argv list started with posix_spawnp (no shell), with stdin on /dev/null, an
// empty signal mask and default signal dispositions, in its own process group. Its stdout and
// stderr go to a pipe the loop reads (the first 1 KiB is kept for the log). A timer polls
// waitpid(WNOHANG) while it runs (no SIGCHLD handler: the daemon's signals arrive through a
// signalfd and other children, e.g. none today, stay unaffected); after `timeout` the process
// group gets SIGKILL. request() while a run is in progress is coalesced into one more run after
// it, so the last run always starts after the last write. Failures (cannot start, non-zero exit,
// signal, timeout) are logged as errors; nothing is retried until the next request().
// Thread-safety: use from the loop's thread only.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace rp::exports {

class AfterWriteCommand {
public:
    // `label` names the export in log lines ("opensmtpd-table:/path").
    AfterWriteCommand(util::EventLoop& loop, std::vector<std::string> argv, std::chrono::milliseconds timeout,
                      std::string label);
    AfterWriteCommand(const AfterWriteCommand&) = delete;
    AfterWriteCommand& operator=(const AfterWriteCommand&) = delete;
    // A command still running is killed (SIGKILL to its group) and reaped.
    ~AfterWriteCommand();

    // Starts the command now, or once the running one has ended.
    void request();
    bool running() const { return pid_ > 0; }
    // Finished runs so far, and how many of them failed (tests, status).
    std::uint64_t runs() const { return runs_; }
    std::uint64_t failures() const { return failures_; }

private:
    void start();
    void poll();
    void drain_output();
    void finish(int status);

    util::EventLoop& loop_;
    std::vector<std::string> argv_;
    std::chrono::milliseconds timeout_;
    std::string label_;
    pid_t pid_ = -1;
    util::UniqueFd out_;
    std::string output_;
    bool pending_ = false;
    bool killed_ = false;
    std::chrono::steady_clock::time_point started_{};
    util::EventLoop::TimerId poll_timer_ = 0;
    std::chrono::milliseconds poll_every_{1};
    std::uint64_t runs_ = 0, failures_ = 0;
};

}  // namespace rp::exports
