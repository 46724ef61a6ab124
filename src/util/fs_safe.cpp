#include "util/fs_safe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <vector>

namespace rp::util {
namespace {

using core::make_error;

std::string errno_text(int e) { return std::strerror(e); }

std::string octal_mode(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

bool group_or_other_writable(const struct stat& st) { return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0; }
bool sticky(const struct stat& st) { return (st.st_mode & S_ISVTX) != 0; }

// A directory above a private one: nobody but root (or we) can replace its entries.
core::Status check_ancestor(int fd, const std::string& where) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return make_error("cannot stat " + where + ": " + errno_text(errno));
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return make_error(where + " belongs to uid " + std::to_string(st.st_uid) +
                          ": every directory above a private one must belong to root");
    if (group_or_other_writable(st) && !sticky(st))
        return make_error(where + " is writable by group or others (mode " + octal_mode(st.st_mode) +
                          ") and not sticky: another user could swap the directories below it");
    return core::ok();
}

core::Result<std::vector<std::string>> components(const std::string& path) {
    if (path.empty() || path.front() != '/') return make_error("'" + path + "' is not an absolute path");
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < path.size()) {
        const auto slash = path.find('/', i);
        const auto end = slash == std::string::npos ? path.size() : slash;
        const std::string c = path.substr(i, end - i);
        if (c == "..") return make_error("'" + path + "' contains '..'");
        if (!c.empty() && c != ".") out.push_back(c);
        i = end + 1;
    }
    return out;
}

// Opens `name` in `parent` as a directory without following a symlink there.
core::Result<UniqueFd> open_dir_nofollow(int parent, const std::string& name, const std::string& path) {
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd) return fd;
    const int e = errno;
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return make_error(path + " is a symbolic link; refusing to follow it (configure the real directory)");
    if (e == ENOTDIR) return make_error(path + " exists and is not a directory");
    return make_error("cannot open directory " + path + ": " + errno_text(e));
}

std::string join(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

// Opens (creating it 0755 when missing) the intermediate directory `name` in the trusted `parent`.
// A symlink here is followed: it sits in a directory only root can write (checked before).
core::Result<UniqueFd> open_or_make_parent(int parent, const std::string& name, const std::string& path) {
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd) return fd;
    if (errno != ENOENT) return make_error("cannot open directory " + path + ": " + errno_text(errno));
    if (::mkdirat(parent, name.c_str(), 0755) != 0 && errno != EEXIST)
        return make_error("cannot create directory " + path + ": " + errno_text(errno));
    auto made = open_dir_nofollow(parent, name, path);
    if (made) (void)::fchmod(made->get(), 0755);  // whatever the umask: the daemon's user must pass
    return made;
}

// Owner and group for the private directory behind `fd` (see DirSpec), checked before any change.
core::Status apply_owner(int fd, const struct stat& st, bool created, const DirSpec& spec, const std::string& path) {
    if (!created && st.st_uid != 0 && st.st_uid != ::geteuid() && st.st_uid != spec.owner)
        return make_error(path + " belongs to uid " + std::to_string(st.st_uid) +
                          " (not root, not the daemon's user): refusing to use it");
    uid_t uid = k_no_uid;
    gid_t gid = k_no_gid;
    if (spec.owner != k_no_uid) {
        if (created || st.st_uid != spec.owner) uid = spec.owner, gid = spec.group;
    } else if (spec.group != k_no_gid && st.st_gid != spec.group && (created || (st.st_mode & S_IXOTH) == 0)) {
        gid = spec.group;
    }
    if ((uid != k_no_uid || gid != k_no_gid) && ::fchown(fd, uid, gid) != 0)
        return make_error("cannot chown " + path + ": " + errno_text(errno));
    return core::ok();
}

std::string via_proc(int dirfd, const std::string& name, const std::string& path) {
    if (::access("/proc/self/fd", X_OK) != 0) return path;  // no /proc (a bare chroot): the path itself
    return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

core::Result<sockaddr_un> unix_address(const std::string& path) {
    sockaddr_un sun{};
    if (path.size() >= sizeof sun.sun_path) return make_error("unix socket path too long: " + path);
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    return sun;
}

socklen_t unix_len(const std::string& path) {
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

}  // namespace

PathParts split_path(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return {".", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

core::Result<UniqueFd> ensure_private_dir(const std::string& path, const DirSpec& spec) {
    auto comps = components(path);
    if (!comps) return comps.error();
    if (comps->empty()) return make_error("'/' cannot be a private directory");
    UniqueFd cur(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cur) return make_error("cannot open /: " + errno_text(errno));
    std::string at = "/";
    for (std::size_t i = 0; i + 1 < comps->size(); ++i) {
        if (auto st = check_ancestor(cur.get(), at); !st) return st.error();
        at = join(at, (*comps)[i]);
        auto next = open_or_make_parent(cur.get(), (*comps)[i], at);
        if (!next) return next.error();
        cur = std::move(*next);
    }
    if (auto st = check_ancestor(cur.get(), at); !st) return st.error();
    const std::string& last = comps->back();
    bool created = false;
    auto fd = open_dir_nofollow(cur.get(), last, path);
    if (!fd) {
        struct stat st {};
        if (::fstatat(cur.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return fd.error();  // exists: refused
        if (::mkdirat(cur.get(), last.c_str(), 0700) != 0)
            return make_error("cannot create directory " + path + ": " + errno_text(errno));
        created = true;
        fd = open_dir_nofollow(cur.get(), last, path);
        if (!fd) return fd.error();
        if (::fchmod(fd->get(), spec.mode & 07777) != 0)
            return make_error("cannot chmod " + path + ": " + errno_text(errno));
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return make_error("cannot stat " + path + ": " + errno_text(errno));
    if (group_or_other_writable(st))
        return make_error(path + " is writable by group or others (mode " + octal_mode(st.st_mode) +
                          "): refusing it; run chmod go-w " + path);
    if (auto s = apply_owner(fd->get(), st, created, spec, path); !s) return s.error();
    return std::move(*fd);
}

core::Result<UniqueFd> open_socket_dir(const std::string& path) {
    if (path.empty() || path.front() != '/') return make_error("'" + path + "' is not an absolute path");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        const int e = errno;
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            return make_error("socket directory " + path + " is a symbolic link; refusing to follow it");
        return make_error("cannot open socket directory " + path + ": " + errno_text(e));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error("cannot stat " + path + ": " + errno_text(errno));
    if (group_or_other_writable(st) && !sticky(st))
        return make_error("socket directory " + path + " is writable by group or others (mode " + octal_mode(st.st_mode) +
                          ") and not sticky: another user could replace the socket; run chmod go-w " + path);
    return fd;
}

core::Result<UnixSocketFile> bind_unix(int fd, const std::string& path, mode_t mode, int type) {
    if (auto whole = unix_address(path); !whole) return whole.error();
    auto [dir, name] = split_path(path);
    if (name.empty() || name == "." || name == "..") return make_error("unix socket path names no file: " + path);
    auto dfd = open_socket_dir(dir);
    if (!dfd) return dfd.error();
    // Bound through the directory's descriptor: no component of `path` is looked up again.
    std::string via = via_proc(dfd->get(), name, path);
    auto sa = unix_address(via);
    if (!sa) sa = unix_address(via = path);
    struct stat st {};
    if (::fstatat(dfd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) return make_error(path + " exists and is not a socket");
        UniqueFd probe(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*sa), unix_len(via)) == 0)
            return make_error(path + " is in use by another process");
        ::unlinkat(dfd->get(), name.c_str(), 0);
    }
    // The file gets `mode` at creation: no moment in which it is more open than configured.
    const mode_t old = ::umask(~mode & 0777);
    const int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&*sa), unix_len(via));
    const int e = errno;
    ::umask(old);
    if (r != 0) return make_error("bind unix:" + path + ": " + errno_text(e));
    if (::fstatat(dfd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode))
        return make_error("bind unix:" + path + ": the socket file vanished or was replaced right after bind");
    UnixSocketFile out;
    out.dir = std::move(*dfd);
    out.name = name;
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    return out;
}

core::Status chown_socket(const std::string& path, uid_t uid, gid_t gid, const UnixSocketFile* expect) {
    auto [dir, name] = split_path(path);
    UniqueFd own_dir;
    int dfd = expect != nullptr ? expect->dir.get() : -1;
    if (dfd < 0) {
        own_dir.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!own_dir) return make_error("cannot open directory " + dir + ": " + errno_text(errno));
        dfd = own_dir.get();
    }
    UniqueFd pfd(::openat(dfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!pfd) return make_error("cannot open " + path + ": " + errno_text(errno));
    struct stat st {};
    if (::fstat(pfd.get(), &st) != 0) return make_error("cannot stat " + path + ": " + errno_text(errno));
    if (!S_ISSOCK(st.st_mode))
        return make_error(path + " is not a socket (a symlink or another file was put there); left untouched");
    if (expect != nullptr && expect->ino != 0 && (st.st_dev != expect->dev || st.st_ino != expect->ino))
        return make_error(path + " is no longer the socket we bound; left untouched");
    if (::fchownat(pfd.get(), "", uid, gid, AT_EMPTY_PATH) != 0)
        return make_error("cannot chown " + path + ": " + errno_text(errno));
    return core::ok();
}

void remove_socket_file(const std::string& path, dev_t dev, ino_t ino) {
    auto [dir, name] = split_path(path);
    UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd) return;
    struct stat st {};
    if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode)) return;
    if (ino != 0 && (st.st_dev != dev || st.st_ino != ino)) return;
    ::unlinkat(dfd.get(), name.c_str(), 0);
}

}  // namespace rp::util
