// LoginSpool: logins pushed while the daemon is stopped (issue 12 item 15), kept on disk until
// the daemon starts and grants them with their own time, through PermitPolicy, so only while the
// login is still within its ttl.
//
// Layout: `state_dir/spool/`, one file per login, named "login.<time_us>.<pid>.<random>". A writer
// (`relaypermit allow --chain`, `relaypermit allow`) creates ".tmp.<...>" with O_EXCL|O_NOFOLLOW,
// mode 0640, writes one JSON object, fsyncs, renames it to its final name and fsyncs the
// directory: a crash leaves either a whole file or a temporary one (the daemon removes those after
// an hour), never half a login.
//   {"ip":"192.0.2.1","user":"alice","time_us":1795000000000000,"ttl_ms":7200000}   (ttl_ms optional)
// Who may write: the daemon creates the directory owned by its user, with the group
// `control_group` (else its own primary group), mode 03770: setgid, so every file gets that group
// and the daemon (its user, or as a group member) can read it; sticky, so a writer cannot remove
// another's files; nothing for others. That is exactly who may use the control socket, and a
// spooled login is granted through the same policy as a control `allow`: the spool adds no power.
// Thread-safety: plain functions. Security: spool files are written by control_group members,
// trusted as far as the control socket's users: every field is checked (parse_spooled_login,
// fuzz/login_spool_fuzz.cpp); files are opened with O_NOFOLLOW and must be small regular files.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::daemon {

struct SpooledLogin {
    core::Address ip;
    std::string user;
    core::Time time;                    // when the login happened
    std::optional<core::Duration> ttl;  // asked for (`relaypermit allow --ttl`); nullopt = ttl
};

inline constexpr std::size_t k_spool_max_file = 4096;
inline constexpr const char* k_spool_subdir = "spool";

std::string spool_dir_for(const std::string& state_dir);

// Pure: one file's content.
std::string encode_spooled_login(const SpooledLogin& login);
core::Result<SpooledLogin> parse_spooled_login(std::string_view text);

// Writer: spools `login` in `dir` (durably, see above). Fails when the directory is missing or not
// writable; the caller then has nowhere to put the login and says so.
core::Status spool_login(const std::string& dir, const SpooledLogin& login);

// Daemon: creates `dir` (03770, owner `uid`, group `gid`; -1 = unchanged) and makes its parent
// `state_dir` searchable by that group (g+x), both through descriptors opened with O_NOFOLLOW.
core::Status prepare_spool_dir(const std::string& state_dir, uid_t uid, gid_t gid);

struct SpoolEntry {
    std::string name;
    core::Result<SpooledLogin> login;  // an error for a malformed or unreadable file
};

// Daemon: at most `max` spooled logins, oldest name first; temporary files older than an hour are
// removed on the way. A missing directory is an empty spool.
core::Result<std::vector<SpoolEntry>> read_spool(const std::string& dir, std::size_t max);
// Removes one entry read by read_spool (a missing file is not an error).
core::Status remove_spooled(const std::string& dir, const std::string& name);

}  // namespace rp::daemon
