// sd_notify: tells systemd (Type=notify) about the daemon's state ("READY=1", "RELOADING=1",
// "STOPPING=1", "STATUS=...", "WATCHDOG=1"). A no-op when $NOTIFY_SOCKET is unset, so the daemon
// runs the same elsewhere. The protocol is one datagram to $NOTIFY_SOCKET, so libsystemd is not
// needed for it.
//
// Watchdog (WatchdogSec= in the unit): the manager sets WATCHDOG_USEC (and WATCHDOG_PID); the
// daemon must send WATCHDOG=1 more often than that. SdWatchdog pings every half interval from
// a timer of the event loop, so a loop that is stuck (a handler that never returns) stops
// pinging and systemd restarts the service: the ping proves the loop runs, not just the process.
// Thread-safety: sd_notify is reentrant (a socket per call); SdWatchdog lives on the loop thread.
// Security: the environment is trusted (the service manager wrote it); malformed values disable
// the watchdog rather than failing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "util/event_loop.hpp"

namespace rp::daemon {

void sd_notify(const char* state);
inline void sd_notify(const std::string& state) { sd_notify(state.c_str()); }

// The watchdog interval asked for (sd_watchdog_enabled(3)): WATCHDOG_USEC when WATCHDOG_PID is
// absent or `self`. nullopt: no watchdog (unset, zero, not a number, another process's).
std::optional<std::chrono::microseconds> watchdog_interval(std::optional<std::string_view> usec,
                                                            std::optional<std::string_view> pid, pid_t self);
// watchdog_interval of this process's environment; unsets both variables (programs the daemon
// starts must not ping on its behalf).
std::optional<std::chrono::microseconds> watchdog_from_environment();

class SdWatchdog {
public:
    // Sends WATCHDOG=1 now and then every interval/2 (at least every millisecond) on `loop`.
    SdWatchdog(util::EventLoop& loop, std::chrono::microseconds interval);
    ~SdWatchdog();
    SdWatchdog(const SdWatchdog&) = delete;
    SdWatchdog& operator=(const SdWatchdog&) = delete;

private:
    void ping();
    util::EventLoop& loop_;
    std::chrono::milliseconds period_;
    util::EventLoop::TimerId timer_ = 0;
};

}  // namespace rp::daemon
