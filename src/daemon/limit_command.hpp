// LimitCommand: runs `[limits] on_limit = [PROGRAM, ARGS...]` once per limit event (a budget
// refusal, a cap refusal, an address alert) without ever blocking the loop.
//
// No shell: the configured argv is started with posix_spawnp, unchanged; the event's values,
// which come from logs and MTAs (untrusted), are passed only in the environment:
//   RELAYPERMIT_LIMIT   "recipients", "messages", "addresses_per_user", "permits_per_prefix",
//                       "alert_addresses"
//   RELAYPERMIT_IP      the permit's network or the client address
//   RELAYPERMIT_USER    the user name ("" when unknown)
//   RELAYPERMIT_DETAIL  one sentence, as in the `limit` log line
// plus PATH=/usr/sbin:/usr/bin:/sbin:/bin; nothing else of the daemon's environment. stdin,
// stdout and stderr are /dev/null; the child has an empty signal mask, default dispositions, and
// its own process group, which gets SIGKILL after `timeout`.
// Reaping: a pidfd (pidfd_open) per child in the EventLoop; readable when the child exits, then
// waitpid(WNOHANG). No SIGCHLD handler, so other children of the daemon are unaffected.
// Concurrency is bounded (max_running); an event while that many run is dropped and counted
// (`dropped`), so a flood of refusals cannot fork a flood of processes.
// Thread-safety: loop thread only.
// Security: see above; the program runs as the daemon's user (threat model row in
// docs/security.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/event_loop.hpp"

namespace rp::daemon {

struct LimitEvent {
    std::string limit;   // RELAYPERMIT_LIMIT
    std::string ip;      // RELAYPERMIT_IP
    std::string user;    // RELAYPERMIT_USER
    std::string detail;  // RELAYPERMIT_DETAIL
};

class LimitCommand {
public:
    LimitCommand(util::EventLoop& loop, std::vector<std::string> argv, std::size_t max_running = 4,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~LimitCommand();  // children still running are killed (SIGKILL to their group) and reaped
    LimitCommand(const LimitCommand&) = delete;
    LimitCommand& operator=(const LimitCommand&) = delete;

    // Starts the command for `e`, or drops it (counted) when max_running are running.
    void run(const LimitEvent& e);
    std::size_t running() const { return children_.size(); }
    std::uint64_t started() const { return started_; }
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t failures() const { return failures_; }  // could not start, non-zero exit, killed

private:
    struct Child {
        int pidfd = -1;
        util::EventLoop::TimerId timer = 0;
    };
    void reap(pid_t pid);

    util::EventLoop& loop_;
    std::vector<std::string> argv_;
    std::size_t max_running_;
    std::chrono::milliseconds timeout_;
    std::map<pid_t, Child> children_;
    std::uint64_t started_ = 0, dropped_ = 0, failures_ = 0;
};

}  // namespace rp::daemon
