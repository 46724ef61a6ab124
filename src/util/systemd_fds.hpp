// Descriptors passed by systemd socket activation (sd_listen_fds(3)), without libsystemd: the
// protocol is three environment variables. LISTEN_PID names the process they are meant for (a
// child that inherited the environment must not take them), LISTEN_FDS counts the descriptors,
// which start at 3, and LISTEN_FDNAMES (optional) names them, separated by ':' (a socket unit's
// FileDescriptorName=, by default the unit's name).
//
// Used by what a socket unit can hold open while the daemon is down: a FIFO with ListenFIFO=
// keeps a reader, so a syslog daemon writing into it never blocks on open() and finds its lines
// waiting (up to the pipe's capacity) when relaypermit starts; a listening socket
// (ListenStream=) keeps MTAs' connections in its queue across a restart. Every listener the
// daemon binds goes through util::listen_endpoint, which takes a passed socket bound to the same
// address (take_socket) instead of binding; the daemon then closes what nothing took
// (close_unclaimed), logging each.
//
// Thread-safety: parse_listen_fds is pure. ListenFds::process() reads the environment once (a
// function-local static, so the first call is thread-safe), unsets the variables so that
// programs the daemon starts do not see them, and marks the descriptors close-on-exec. find(),
// take_socket() and close_unclaimed() record which descriptors were taken: call them from one
// thread (the daemon's loop thread; start-up and reload).
// Security: the environment is trusted (the service manager wrote it); a LISTEN_PID that is not
// ours means the variables were inherited, and they are ignored. Malformed values are an error
// value, never fatal; descriptors are only handed out as dup()s, the originals stay open for the
// life of the process, as a socket unit keeps them.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "util/unique_fd.hpp"

namespace rp::util {

inline constexpr int k_listen_fds_start = 3;  // SD_LISTEN_FDS_START

struct ListenFd {
    int fd = -1;
    std::string name;  // from LISTEN_FDNAMES; "unknown" when it is absent (as sd_listen_fds_with_names)
    bool operator==(const ListenFd&) const = default;
};

// The descriptors the variables describe for process `self`. A missing LISTEN_PID or LISTEN_FDS,
// or a LISTEN_PID of another process: none (an empty list, not an error). Errors: a value that is
// not a decimal number, a count beyond 4096, a LISTEN_FDNAMES with a different number of names.
core::Result<std::vector<ListenFd>> parse_listen_fds(std::optional<std::string_view> listen_pid,
                                                     std::optional<std::string_view> listen_fds,
                                                     std::optional<std::string_view> listen_fdnames, pid_t self);

class ListenFds {
public:
    explicit ListenFds(std::vector<ListenFd> fds) : fds_(std::move(fds)) {}

    // This process's passed descriptors. A malformed environment is logged once and yields none.
    static const ListenFds& process();

    // A dup (close-on-exec) of the first passed descriptor whose name is one of `names`, or, when
    // none is, of the first one for which `fits(fd)` holds (e.g. the same inode as a configured
    // path). Not found: std::nullopt; a failing dup() also gives std::nullopt.
    std::optional<UniqueFd> find(const std::vector<std::string>& names,
                                 const std::function<bool(int fd)>& fits = {}) const;
    // A dup (close-on-exec, non-blocking) of the first passed socket of `type` (SOCK_STREAM,
    // SOCK_DGRAM) whose bound address (getsockname) equals `addr`; a stream socket must be
    // listening already. Port 0 in `addr` never matches. Not found: std::nullopt.
    std::optional<UniqueFd> take_socket(const void* addr, unsigned addr_len, int type) const;
    // Closes every passed descriptor that neither find() nor take_socket() returned, logging
    // each (a socket unit whose address no configured endpoint has). Afterwards they are gone
    // from the list. Returns how many were closed.
    std::size_t close_unclaimed() const;
    const std::vector<ListenFd>& all() const { return fds_; }

private:
    std::vector<ListenFd> fds_;
    mutable std::vector<bool> claimed_ = std::vector<bool>(fds_.size());
    mutable std::vector<bool> closed_ = std::vector<bool>(fds_.size());
};

}  // namespace rp::util
