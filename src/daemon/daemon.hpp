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
#include "matching/matcher.hpp"

namespace rp::daemon {

struct RunOptions {
    std::string config_path;
    bool explicit_config = false;
};

// Runs until SIGTERM/SIGINT. Returns the process exit code (0 on a clean stop, 2 on a start-up
// error, which is logged with its cause).
int run_daemon(const RunOptions& opts);

// The matcher's pattern specs for the config's [[pattern]] tables (searched in whole lines).
std::vector<matching::PatternSpec> user_pattern_specs(const config::Config& cfg);
// The pattern sets to enable: `servers` (empty = every built-in set) plus every [[pattern]].
std::vector<std::string> enabled_pattern_sets(const config::Config& cfg);

}  // namespace rp::daemon
