// sd_notify: tells systemd (Type=notify) about the daemon's state ("READY=1", "RELOADING=1",
// "STOPPING=1"). A no-op when $NOTIFY_SOCKET is unset, so the daemon runs the same elsewhere.
// The protocol is one datagram to $NOTIFY_SOCKET, so libsystemd is not needed for it.
// Thread-safety: reentrant (a socket per call).
#pragma once

namespace rp::daemon {

void sd_notify(const char* state);

}  // namespace rp::daemon
