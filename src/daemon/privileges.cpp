#include "daemon/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/fs_safe.hpp"
#include "util/log.hpp"

namespace rp::daemon {

core::Result<RunAs> find_run_as(const std::string& user, const std::string& file) {
    RunAs who;
    if (user.empty()) return who;
    const passwd* pw = getpwnam(user.c_str());
    if (!pw) return core::make_error(file + ": user '" + user + "' does not exist");
    who.user = user;
    who.uid = pw->pw_uid;
    who.gid = pw->pw_gid;
    return who;
}

// state_dir and the control socket's directory: opened without following a symlink, refused when
// writable by others, owner and group set through the descriptor (util/fs_safe.hpp).
core::Status make_dirs(const std::string& dir, mode_t mode, uid_t uid, gid_t gid) {
    auto fd = util::ensure_private_dir(dir, {mode, uid, gid});
    if (!fd) return fd.error();
    return core::ok();
}

core::Status drop_privileges(const RunAs& who) {
    if (!who.configured() || geteuid() == who.uid) return core::ok();
    if (initgroups(who.user.c_str(), who.gid) != 0 || setgid(who.gid) != 0 || setuid(who.uid) != 0)
        return core::make_error("cannot switch to user " + who.user + ": " + std::strerror(errno));
    util::log(util::Level::info, "running as user {}", who.user);
    return core::ok();
}

void raise_fd_limit() {
    if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace rp::daemon
