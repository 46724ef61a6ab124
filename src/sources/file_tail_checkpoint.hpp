// The FileTailSource checkpoint: its stored positions as values, read from and written to the
// JSON that the store keeps (format in file_tail_source.hpp), and the content fingerprint.
//
// Pure functions, no I/O. The checkpoint is our own data, but a damaged one (a bad disk, a
// hand-edited database) must never throw or be half-used: parse_tail_checkpoint() accepts a value
// only if every field has its type, else it says "unreadable" and the follower starts over.
// Thread-safety: pure functions.
// Security: the text comes from the permit store, which only the daemon's user can write; still
// parsed defensively (fuzz target tail_checkpoint).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rp::sources {

// One file's stored position.
struct TailPosition {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t offset = 0;  // never past an incomplete final line
    bool skip = false;         // `offset` is inside an over-long line, skipped up to its newline
    std::string fp;            // fingerprint() of the file's first fp_len bytes
    std::uint64_t fp_len = 0;
    bool operator==(const TailPosition&) const = default;
};

struct TailCheckpoint {
    std::vector<TailPosition> draining;   // rotated files still being read, oldest first
    std::optional<TailPosition> current;  // the file at `path`; none while it does not exist
    bool operator==(const TailCheckpoint&) const = default;
};

// nullopt: not JSON, not an object, or a field of the wrong type (the whole value is unreadable).
std::optional<TailCheckpoint> parse_tail_checkpoint(std::string_view text);
// The JSON form: {"v":1, <current's fields>, "draining":[...]} ("draining" only when not empty).
std::string format_tail_checkpoint(const TailCheckpoint& cp);

// 64-bit FNV-1a as 16 hex digits: tells a file from a rewrite of it; not a security measure.
std::string fingerprint(std::string_view bytes);

}  // namespace rp::sources
