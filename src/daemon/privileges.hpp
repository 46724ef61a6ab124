// Privileges: who the daemon runs as, and the steps that must happen while still root.
//
// Order (least privilege, as Postfix does): look the `user` up, create state_dir (owned by
// that user) and the control socket's directory, bind every listener, then drop_privileges(),
// then open the store and the logs. Nothing here is needed when the daemon is started as its
// own user (the systemd unit's User=relaypermit): then `user` is empty or already ours.
// Thread-safety: process-wide effects; call from the main thread at start-up only.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/result.hpp"

namespace rp::daemon {

// The `user =` to switch to; `uid == -1` when none is configured.
struct RunAs {
    std::string user;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    bool configured() const { return uid != static_cast<uid_t>(-1); }
};

// Looks `user` up in the password database ("" = no switch). `file` names the config in the
// error ("FILE: user 'x' does not exist").
core::Result<RunAs> find_run_as(const std::string& user, const std::string& file);

// Creates `dir` and its parents with `mode` when missing and gives it to uid:gid (uid -1 = keep);
// an existing directory is only chowned when its owner differs.
core::Status make_dirs(const std::string& dir, mode_t mode, uid_t uid, gid_t gid);

// initgroups + setgid + setuid to `who`; nothing when none is configured or already that user.
core::Status drop_privileges(const RunAs& who);

// Every policy client holds a descriptor: raise the soft limit (often 1024) to the hard one.
void raise_fd_limit();

}  // namespace rp::daemon
