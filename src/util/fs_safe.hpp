// fs_safe: the file operations relaypermit performs as root on paths that other users may be able
// to influence (state_dir, the control socket's directory, unix sockets), done on descriptors so
// that a symlink or a swapped path component cannot redirect a chown, chmod or unlink to another
// file. Postfix's safe_open() and OpenSSH's secure-directory checks are the models.
//
// Rules (docs/security.md, "File operations"):
// - A private directory (state_dir, the control socket's directory) is opened with
//   O_DIRECTORY|O_NOFOLLOW at its last component: a symlink there is refused, never followed.
//   Every directory above it must be owned by root or by us and not writable by group or others
//   unless sticky (like /tmp, whose entries only their owner can replace), so nobody else can swap
//   a component. The directory itself must be owned by root, us or its configured owner, and not
//   writable by group or others (sticky or not: the daemon's files live there).
// - A socket directory (where a listener's unix socket is bound) is not a symlink and not
//   writable by group or others unless sticky (/tmp). Its owner is not checked: Postfix's
//   private/ directory belongs to postfix.
// - A unix socket is bound through that directory's descriptor (/proc/self/fd/N/name, so no path
//   component is looked up again), with the umask set so the file is created with its final mode;
//   chown afterwards acts on the name opened O_PATH|O_NOFOLLOW and checked to be a socket (the one
//   we bound, when its inode is known): a symlink or any other file put there is left untouched.
// Thread-safety: plain functions. bind_unix() changes the process umask for the duration of one
// bind(2) call; relaypermit binds on its loop thread, and no other thread creates files meanwhile.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>

#include "core/result.hpp"
#include "util/unique_fd.hpp"

namespace rp::util {

inline constexpr uid_t k_no_uid = static_cast<uid_t>(-1);
inline constexpr gid_t k_no_gid = static_cast<gid_t>(-1);

struct DirSpec {
    mode_t mode = 0750;     // for a directory that is created (parents are created 0755)
    uid_t owner = k_no_uid;  // given to a created or existing directory (with `group`) when it differs
    gid_t group = k_no_gid;  // with owner == k_no_uid: the group of a created directory, and of an existing
                             // one that others cannot search (so the group reaches its socket; /run keeps root)
};

// Opens the directory at the absolute `path`, creating what is missing, as described above.
// Success: the directory's descriptor (O_DIRECTORY, close-on-exec), owner and group applied through it.
// Errors: a symlink at the last component, an untrusted directory on the way, a directory that is
// writable by group or others or owned by another user, mkdir/open/fchown failures; the message
// names the path and the remedy. Nothing is changed on a refused path.
core::Result<UniqueFd> ensure_private_dir(const std::string& path, const DirSpec& spec);

// Opens the existing directory of a unix socket (the last component not followed). Errors: a
// symlink, not a directory, writable by group or others without the sticky bit.
core::Result<UniqueFd> open_socket_dir(const std::string& path);

// "/a/b/c" -> {"/a/b", "c"}; "/c" -> {"/", "c"}.
struct PathParts {
    std::string dir;
    std::string name;
};
PathParts split_path(const std::string& path);

// A unix socket file as created by bind_unix: its directory's descriptor, name and inode.
struct UnixSocketFile {
    UniqueFd dir;
    std::string name;
    dev_t dev = 0;
    ino_t ino = 0;
};

// Binds `fd` (an AF_UNIX socket) to the absolute `path` with the file's mode `mode` from the
// start. A stale socket file (nobody accepting or bound) is removed first; a live one, or any
// other kind of file, is an error. `type` is SOCK_STREAM or SOCK_DGRAM (for the liveness probe).
core::Result<UnixSocketFile> bind_unix(int fd, const std::string& path, mode_t mode, int type);

// Gives the unix socket at `path` to uid/gid (either may be -1: unchanged). The name is opened
// O_PATH|O_NOFOLLOW in its directory (opened O_NOFOLLOW); it must be a socket and, when `expect`
// holds an inode, that one. A symlink or other file is refused and left untouched.
core::Status chown_socket(const std::string& path, uid_t uid, gid_t gid, const UnixSocketFile* expect = nullptr);

// Removes the socket file `path` only if it is a socket and (ino != 0) still the inode recorded in
// dev/ino, through its directory's descriptor (a symlink, another file or a successor's socket at
// that name stays).
void remove_socket_file(const std::string& path, dev_t dev, ino_t ino);

}  // namespace rp::util
