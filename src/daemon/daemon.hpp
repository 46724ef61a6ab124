// Daemon: wiring only. Builds the store, matcher, sources and frontends from Config, runs the
// event loop, applies policy (ignore, ipv6_prefix, ttl) to login events, schedules expiry,
// serves the control socket, handles signals (SIGHUP reload, SIGTERM/SIGINT stop) and drops
// privileges (`user`) after opening what needs root.
//
// Order at start-up (least privilege, as Postfix does): create state_dir and the control
// socket's directory, bind every listener, drop privileges, open the store, start sources.
// Thread-safety: single-threaded; everything runs on the loop thread.
#pragma once

#include <string>

#include "config/config.hpp"

namespace rp::daemon {

struct RunOptions {
    std::string config_path;
    bool explicit_config = false;
};

// Runs until SIGTERM/SIGINT. Returns the process exit code (0 on a clean stop, 2 on a start-up
// error, which is logged with its cause).
int run_daemon(const RunOptions& opts);

// Builds the matcher's user pattern specs from the config.
struct MatcherInputs;

}  // namespace rp::daemon
