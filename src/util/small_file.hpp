// read_small_file: the whole of one of the administrator's files (the config, `static` entries,
// allow lists, secrets), read safely by a daemon that may run as root and on its loop thread.
// Thread-safety: a plain function.
// Security: the path is opened O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC and checked with fstat on
// the descriptor (no stat-then-open race): a FIFO, device or directory put in its place is
// refused and never blocks the caller; at most `limit` bytes are read, so /dev/zero or a file
// that grows while read costs no more than that. Symlinks are followed (administrators link
// their configuration); whoever may write the file's directory is trusted like the file. Errors
// name the path and the reason, never the content: a file swapped for one the daemon should not
// show (a root-only file read before privileges are dropped) is not echoed into the log.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "core/result.hpp"

namespace rp::util {

// The bytes of `path`; nullopt when it does not exist (ENOENT), an error for anything else that
// is not a readable regular file of at most `limit` bytes. Messages: "PATH: reason".
core::Result<std::optional<std::string>> read_small_file(const std::string& path, std::size_t limit);

// A file the daemon wrote itself in its private state_dir (sessions.jsonl): read_small_file's
// rules, and also not through a symbolic link (O_NOFOLLOW), owned by the effective user and
// writable by nobody else; anything else is an error (the caller treats it as no content).
core::Result<std::optional<std::string>> read_private_file(const std::string& path, std::size_t limit);

// The same, with a missing file as an error too.
core::Result<std::string> read_existing_small_file(const std::string& path, std::size_t limit);

}  // namespace rp::util
