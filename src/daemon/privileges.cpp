#include "daemon/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

core::Status make_dirs(const std::string& dir, mode_t mode, uid_t uid, gid_t gid) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return core::make_error("cannot create directory " + dir + ": " + ec.message());
        chmod(dir.c_str(), mode);
        if (uid != static_cast<uid_t>(-1) && chown(dir.c_str(), uid, gid) != 0)
            return core::make_error("cannot chown " + dir + ": " + std::strerror(errno));
    } else if (uid != static_cast<uid_t>(-1)) {
        struct stat st {};
        if (stat(dir.c_str(), &st) == 0 && st.st_uid != uid && chown(dir.c_str(), uid, gid) != 0)
            return core::make_error("cannot chown " + dir + ": " + std::strerror(errno));
    }
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
