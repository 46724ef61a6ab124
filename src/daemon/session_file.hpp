// The session table on disk: `state_dir/sessions.jsonl`, so open sessions survive a restart
// together with the permits they keep alive (docs/limits.md).
//
// Format: one JSON object per line, oldest session first:
//   {"server":"dovecot","id":"8T9Vr+dhxqR/AAAB","net":"192.0.2.1","user":"alice",
//    "source":"file:/var/log/dovecot.log","login_us":1795000000000000,"cap_us":1795043200000000}
// A line that does not parse is skipped (counted); a missing file is an empty table.
// Written off the loop thread (SessionFileWriter): the loop hands over a copy of the table, the
// writer thread encodes it, writes "<file>.tmp" (0600), fsyncs it and renames it over the file, so a crash
// leaves the previous or the new table, never half of one. The file lags the table by the
// writer's delay (at most about a second): after a crash a session opened just before is missed
// (its permit ends ttl after the login, as without max_lifetime) and one ended just before is
// kept until the daemon finds its permit gone or its cap reached.
// Thread-safety: the codec is pure; SessionFileWriter's methods are called from one thread (the
// loop), its own thread only writes files.
// Security: the file lives in the daemon's private state_dir; it is still read like the admin's
// files (util::read_private_file: O_NOFOLLOW|O_NONBLOCK, fstat regular, owner and mode, bounded
// size) and parsed defensively (fuzz/session_file_fuzz.cpp): every field is type-checked, the
// address must parse, and a line that does not is skipped, never a session.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "daemon/session_table.hpp"

namespace rp::daemon {

inline constexpr const char* k_session_file = "sessions.jsonl";

std::string encode_sessions(const std::vector<Session>& sessions);
struct DecodedSessions {
    std::vector<Session> sessions;
    std::size_t malformed = 0;  // lines skipped
};
DecodedSessions decode_sessions(std::string_view text);

// At most k_default_limit sessions of a few hundred bytes each: 64 MiB is far more.
inline constexpr std::size_t k_max_session_file_bytes = 64u << 20;

// The file's sessions; a missing file is none. Read by util::read_private_file: no symbolic
// link, a regular file of at most k_max_session_file_bytes, owned by the daemon's user and
// writable by nobody else; otherwise an error that never quotes the content (the daemon then
// starts with no session: permits live ttl after their login). A malformed line is no session.
core::Result<DecodedSessions> read_session_file(const std::string& path);
// Writes `text` to `path` durably (tmp, fsync, rename). Used by the writer and at shutdown.
core::Status write_session_file(const std::string& path, const std::string& text);

class SessionFileWriter {
public:
    SessionFileWriter() = default;
    SessionFileWriter(const SessionFileWriter&) = delete;
    SessionFileWriter& operator=(const SessionFileWriter&) = delete;
    ~SessionFileWriter() { stop(); }

    void start(std::string path);
    // Queues `sessions` as the file's next content (a later save replaces a pending one); the
    // writer thread encodes and writes them.
    void save(std::vector<Session> sessions);
    // Writes what is pending, then joins the thread. Idempotent.
    void stop();
    bool running() const { return thread_.joinable(); }
    std::uint64_t failures() const;
    std::uint64_t writes() const;

private:
    void run();
    std::string path_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::optional<std::vector<Session>> pending_;
    bool stop_ = false;
    std::uint64_t failures_ = 0, writes_ = 0;
    std::thread thread_;
};

}  // namespace rp::daemon
