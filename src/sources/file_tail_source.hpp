// FileTailSource: follows one log file (`type = "file"`) and hands its complete lines to a
// LineParser, delivering the login events found together with its position (a checkpoint).
//
// What it guarantees: every complete line of the file is parsed exactly once across appends,
// rotation (rename+create, copytruncate, delete+recreate), restarts and rotation while the daemon
// was stopped. It reacts to appends at once (inotify on the file's inode and on its directory; no
// polling delay). Its position is persisted through LoginSink::deliver() together with the events
// of each batch, so a batch is either applied with its position or not at all; a failed
// deliver() is retried later from the same position. See docs/rotation.md for the rotation rules.
//
// What it is not: it knows lines, not patterns (the daemon builds the LineParser from the
// matcher), and it does not follow compressed rotated files (only uncompressed ones are found
// when catching up after a rotation that happened while stopped).
//
// Checkpoint value (JSON, opaque to the store), for the file at `path` and for each rotated file
// still being drained:
//   {"v":1,"dev":2049,"ino":1311,"offset":81920,"skip":false,"fp":"cbf29ce484222325","fp_len":256,
//    "draining":[{"dev":2049,"ino":1309,"offset":4096,"skip":false,"fp":"...","fp_len":256}]}
// `offset` never lies past an incomplete final line; `skip` means the offset is inside an
// over-long line whose rest is discarded up to its newline; `fp` is the 64-bit FNV-1a hash (hex)
// of the file's first `fp_len` bytes. The top-level dev/ino/offset are absent while `path` does
// not exist.
//
// Events from data that was in a file when start() looked (the whole file at a first start, after
// an unreadable checkpoint or a rotation while stopped; what was appended while stopped) carry
// `backlog = true`; data appended afterwards is live. A read chunk that reaches past that point
// counts as backlog entirely (the safe side).
// The files, their change notification and the steady clock come through a TailEnv
// (file_tail_env.hpp; FileTailOptions::env): real files and inotify in production, an in-memory
// filesystem in tests, so the rotation and restore cases run without real files or waits. The
// code is in three files: file_tail_source.cpp (the wake-up and lines), file_tail_files.cpp
// (finding, opening and restoring files: restore = parse -> locate -> resume; one factory,
// make_tail, builds every Tail) and file_tail_delivery.cpp (the checkpoint and deliver()).
//
// Thread-safety: loop thread only (like every Source).
// Security: the log content is untrusted. Lines longer than max_line_bytes are skipped up to their
// newline and counted (never parsed in pieces, never resumed mid-line); NUL bytes are passed on to
// the parser; an incomplete final line of a rotated or truncated file is dropped, never parsed.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/file_tail_checkpoint.hpp"
#include "sources/file_tail_env.hpp"
#include "sources/source.hpp"
#include "util/event_loop.hpp"
#include "util/file_reader.hpp"
#include "util/log.hpp"

namespace rp::sources {

struct FileTailOptions {
    // A line longer than this (without its '\n') is skipped up to its newline: malformed, dropped.
    std::size_t max_line_bytes = 64 * 1024;
    std::size_t read_chunk = 1024 * 1024;
    // Bytes read in one wake-up; the rest follows from a 0 ms timer so other handlers run.
    std::size_t max_bytes_per_wakeup = 8 * 1024 * 1024;
    // How long a rotated (renamed or deleted) file is still read after its last new data:
    // writers such as rsyslog keep writing to it until logrotate's postrotate HUP.
    std::chrono::milliseconds drain_grace{10'000};
    // Content fingerprint: the hash of the file's first bytes, to tell a file from a rewrite.
    std::size_t fingerprint_bytes = 256;
    // Batches with events are delivered at once; a position that moved over lines without
    // events is delivered at most this often (and always on rotation and stop()).
    std::chrono::milliseconds checkpoint_interval{1'000};
    // After deliver() fails: wait this long, then offer the batch again from the same position.
    std::chrono::milliseconds retry_delay{1'000};
    // A safety re-check even without inotify events (0 = off). Not a polling delay: appends are
    // seen at once through inotify.
    std::chrono::milliseconds safety_poll{10'000};
    // How the backlog (what the files held at start(): a first start, the rest of a file rotated
    // while stopped) is read, when the file has a descriptor: automatic measures read() against
    // mmap on its first windows and keeps the cheaper, as `relaypermit scan` does; tests force one.
    util::ReadPath backlog_read_path = util::ReadPath::automatic;
    // The filesystem, change notification and steady clock; null: TailEnv::posix() (real files,
    // inotify). Tests pass an in-memory one. REQUIRES: outlives the source.
    TailEnv* env = nullptr;
};

class FileTailSource final : public LineSource {
public:
    // REQUIRES: `sink` and `clock` outlive this object; after start(), so does the loop (or
    // stop() is called first). Events the parser leaves with an empty `source` get `name`.
    FileTailSource(std::string name, std::string path, LineParser parser, LoginSink& sink,
                   const core::Clock& clock, FileTailOptions opts = {});
    ~FileTailSource() override;
    FileTailSource(const FileTailSource&) = delete;
    FileTailSource& operator=(const FileTailSource&) = delete;

    const std::string& path() const { return path_; }

    // Loads the checkpoint (sink.find_checkpoint(name)), opens the file(s) and registers an
    // inotify fd with `loop`; the reading itself starts from a 0 ms timer. Without a checkpoint
    // the whole existing file is read. A missing file is waited for. Errors: the directory does
    // not exist or cannot be watched, `path` is not a regular file, inotify is unavailable.
    // REQUIRES: not started.
    core::Status start(util::EventLoop& loop) override;
    // Delivers the current position if it moved (best effort), unregisters, closes the files.
    // Safe to call when not started.
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override;  // unread_bytes: what the open files hold past the read position
    std::string problem() const override;

    // Diagnostics (and tests): is `path` open, and how many rotated files are being drained.
    bool following() const { return current_ != nullptr; }
    std::size_t draining_files() const { return draining_.size(); }

private:
    struct Tail;  // file_tail_internal.hpp
    // A file found on disk: at `path`, a rotated sibling, or logrotate's copy.
    struct Located {
        std::unique_ptr<TailFile> file;
        FileInfo info;
        std::string label;  // its path, for messages
        bool at_path = false;
        bool same = false;  // the stored position's content (size and fingerprint) is still there
    };

    // file_tail_source.cpp: the wake-up, reading, lines
    void on_inotify();
    void service();
    enum class ReadStep { more, end, lost };
    bool read_tail(Tail& t, std::size_t& budget);
    ReadStep read_next(Tail& t, std::size_t& budget);
    ReadStep read_backlog(Tail& t, std::size_t& budget);
    void consume(Tail& t, const char* data, std::size_t n);
    void process_chunk(Tail& t, const char* data, std::size_t n);
    const char* finish_carried_line(Tail& t, const char* p, std::size_t n);
    void over_long(const Tail& t, std::uint64_t bytes);
    void parse_block(const char* data, std::size_t n);
    void check_rotation(std::size_t& budget, bool& more);
    void close_idle_drains();
    void begin_draining(std::unique_ptr<Tail> t);
    void arm(util::EventLoop::TimerId& id, std::chrono::milliseconds delay, void (FileTailSource::*fn)());
    void on_continue();
    void on_flush();
    void on_retry();
    void on_grace();
    void on_safety_poll();
    void cancel_timers();

    // file_tail_files.cpp: opening, finding and watching files; restore = parse -> locate -> resume
    std::unique_ptr<Tail> make_tail(Located where, std::uint64_t offset, bool skip);
    std::unique_ptr<Tail> open_tail(const std::string& file, int& err);
    void open_current_from_start(bool log_it);
    void watch_tail(Tail& t);
    void unwatch_tail(Tail& t);
    std::optional<Located> scan_dir(const std::function<bool(const std::string& name, const FileInfo& info)>& pre,
                                    const std::function<bool(TailFile& file)>& verify);
    std::optional<Located> find_copy(const FileInfo& of, std::uint64_t min_size, std::uint64_t head_len,
                                     const std::function<bool(const std::string& head)>& head_ok);
    void check_truncation(Tail& t);
    void restore(const std::string& checkpoint);
    std::optional<Located> locate(const TailPosition& stored, bool was_current);
    void resume(const TailPosition& stored, Located where);

    // file_tail_delivery.cpp: the checkpoint and deliver()
    std::string make_checkpoint() const;
    void commit_all();
    void revert_all();
    bool dirty() const;
    void finish_pass(bool more);
    void deliver_failed(const core::Error& error);
    void delivered(util::EventLoop::Steady::time_point now);
    void arm_grace_timer(util::EventLoop::Steady::time_point now);

    std::string path_;
    std::string dir_;
    FileTailOptions opts_;

    TailEnv& env_;
    util::EventLoop* loop_ = nullptr;
    std::unique_ptr<TailWatcher> watcher_;
    std::unique_ptr<Tail> current_;
    std::vector<std::unique_ptr<Tail>> draining_;  // oldest first
    std::vector<char> buf_;
    std::unique_ptr<util::ChunkBuffer> backlog_buf_;  // made at the first backlog read
    util::ReadPathChooser backlog_path_;
    std::size_t backlog_windows_ = 0;  // backlog reads so far, for the chooser's calibration
    std::vector<core::LoginEvent> events_;

    bool structure_changed_ = false;  // the set of files changed since the last delivery
    bool failing_ = false;            // waiting for retry_ after a failed deliver()
    bool reading_backlog_ = false;    // the chunk being parsed began before its file's backlog_end
    util::EventLoop::Steady::time_point last_delivery_{};
    util::EventLoop::TimerId continue_timer_ = 0;
    util::EventLoop::TimerId flush_timer_ = 0;
    util::EventLoop::TimerId retry_timer_ = 0;
    util::EventLoop::TimerId grace_timer_ = 0;
    util::EventLoop::TimerId poll_timer_ = 0;

    SourceCounters committed_counters_;
    SourceCounters pending_counters_;  // counted by reads not yet delivered
    util::RateLimitedLog warn_;
};

}  // namespace rp::sources
