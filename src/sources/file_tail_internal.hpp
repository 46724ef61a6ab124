// FileTailSource's private parts shared by its three files (file_tail_source.cpp: the wake-up and
// lines; file_tail_files.cpp: finding, opening and restoring files; file_tail_delivery.cpp: the
// checkpoint and deliver()). Not for other users.
// Thread-safety: loop thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "sources/file_tail_source.hpp"

namespace rp::sources {

// One open file: the followed path or a rotated file being drained. Made by make_tail() only.
// Tentative state (read_pos, pending, skipping, head) moves as data is read; the committed state
// is what the last successful deliver() stored, and a failed deliver() goes back to it.
struct FileTailSource::Tail {
    std::unique_ptr<TailFile> file;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    int wd = -1;
    std::string label;          // the file's name when opened, for messages
    std::uint64_t read_pos = 0; // next byte to read
    std::string pending;        // an incomplete line (never longer than max_line_bytes)
    bool skipping = false;      // inside an over-long line: discard up to its newline
    std::string head;           // the file's first min(fingerprint_bytes, read_pos) bytes
    std::uint64_t committed_offset = 0;
    bool committed_skip = false;
    std::string committed_head;
    util::EventLoop::Steady::time_point last_data{};  // draining: when data was last read
    bool closing = false;            // draining and idle: closed once the next delivery succeeds
    std::uint64_t backlog_end = 0;   // the file's size at start(): lines before it are a backlog

    std::uint64_t consumed() const { return read_pos - pending.size(); }
};

namespace file_tail {

// How many of a file's first bytes the fingerprint covers when it was read up to `offset`.
inline std::size_t head_bytes(std::uint64_t fingerprint_bytes, std::uint64_t offset) {
    return static_cast<std::size_t>(std::min(fingerprint_bytes, offset));
}

// Reads up to `n` bytes at `offset`; fewer only at end of file. nullopt on a read error.
std::optional<std::string> read_exactly(TailFile& f, std::uint64_t offset, std::size_t n);

}  // namespace file_tail
}  // namespace rp::sources
