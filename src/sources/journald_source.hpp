// JournaldSource: follows the systemd journal with libsystemd's sd-journal (`type = "journald"`).
//
// What it reads: `path` empty = the local system journal (SD_JOURNAL_LOCAL_ONLY|SD_JOURNAL_SYSTEM);
// a directory = the journal files in it (sd_journal_open_directory); a file = that journal file
// (sd_journal_open_files; tests, copied or remote journals).
//
// Integration: the journal's fd (sd_journal_get_fd/get_events) is registered with the EventLoop
// and sd_journal_get_timeout arms a timer; after a wake-up sd_journal_process() is called and new
// entries are read, at most max_entries_per_wakeup per wake-up (the rest follows from a 0 ms
// timer). A periodic re-check (poll_interval) covers files without reliable inotify.
//
// Exactly-once: every batch is delivered with checkpoint {name, cursor of the last entry read}.
// On start the stored cursor is sought (sd_journal_seek_cursor) and the entry equal to it is
// skipped (sd_journal_test_cursor); without a checkpoint reading starts at the head of the
// journal (old logins grant nothing: the daemon's policy drops logins whose time + ttl has
// passed). A failed deliver() seeks back to the last stored cursor and retries after retry_delay.
//
// Trust: an entry counts only if its TRUSTED (underscore, set by journald) fields match every
// non-empty list: units (_SYSTEMD_UNIT), comms (_COMM), exes (_EXE), uids (_UID). An entry that
// does not, but whose message the parser recognises as a login, grants nothing: it is counted as
// `untrusted` and logged (rate-limited). The parser gets "IDENT[PID]: MESSAGE" built from
// SYSLOG_IDENTIFIER (else _COMM) and SYSLOG_PID; the login time is _SOURCE_REALTIME_TIMESTAMP when
// present, else the entry's realtime timestamp, clamped to the reading time.
//
// Thread-safety: loop thread only (sd_journal objects are not thread-safe).
// Security: MESSAGE, SYSLOG_IDENTIFIER and SYSLOG_PID are client-supplied (forgeable) and
// untrusted: newlines/CR/NUL in them become spaces (one entry is one line), entries whose line
// exceeds max_line_bytes are counted malformed and skipped. Provenance comes only from the
// underscore fields, which journald sets and clients cannot.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/file_tail_source.hpp"
#include "sources/source.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"

struct sd_journal;

namespace rp::sources {

struct JournaldOptions {
    std::string path;  // empty = system journal; else a directory or a journal file
    // Parses entries from untrusted senders, only to count and log imitations. It must not share
    // state with the main parser: a forged first line of a two-line server must not seed the
    // trusted parser's pid cache. Empty = the main parser is used (only for stateless parsers).
    LineParser untrusted_parser;
    // Trusted-field filters; an entry counts only if every non-empty list matches.
    std::vector<std::string> units = {"dovecot.service"};
    std::vector<std::string> comms;
    std::vector<std::string> exes;
    std::vector<std::int64_t> uids = {0};
    std::size_t max_line_bytes = 64 * 1024;
    std::size_t max_entries_per_wakeup = 4096;
    // Positions moved over entries without events are delivered at most this often (and on stop).
    std::chrono::milliseconds checkpoint_interval{1'000};
    std::chrono::milliseconds retry_delay{1'000};
    // Re-check for new entries even without an fd event (0 = off).
    std::chrono::milliseconds poll_interval{1'000};
};

class JournaldSource final : public LineSource {
public:
    // REQUIRES: `sink` and `clock` outlive this object; after start(), so does the loop (or
    // stop() is called first). Events the parser leaves with an empty `source` get `name`.
    JournaldSource(std::string name, JournaldOptions opts, LineParser parser, LoginSink& sink,
                   const core::Clock& clock);
    ~JournaldSource() override;
    JournaldSource(const JournaldSource&) = delete;
    JournaldSource& operator=(const JournaldSource&) = delete;


    // Opens the journal, seeks to the stored cursor (or the head) and registers with the loop;
    // reading starts from a 0 ms timer. Errors: the journal (file/directory) cannot be opened.
    core::Status start(util::EventLoop& loop) override;
    // Delivers the current position if it moved (best effort), unregisters, closes the journal.
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override;
    void set_parser(LineParser parser, LineParser untrusted) override {
        parser_ = std::move(parser);
        opts_.untrusted_parser = std::move(untrusted);
    }

    // Diagnostics (and tests): the cursor of the last stored position, if any.
    const std::optional<std::string>& committed_cursor() const { return committed_cursor_; }

private:
    void on_fd();
    void service();
    bool read_entries(bool& more);  // false: deliver() failed
    void handle_entry(std::size_t& line_bytes);
    bool trusted(std::string& why);
    std::optional<std::string> field(const char* name);
    bool seek_committed();
    bool flush(bool force);
    void rearm_timeout();
    void arm_poll();
    void on_continue();
    void on_retry();

    JournaldOptions opts_;

    sd_journal* j_ = nullptr;
    util::EventLoop* loop_ = nullptr;
    int fd_ = -1;
    std::optional<std::string> committed_cursor_;
    bool moved_ = false;  // entries read since the last delivery
    bool failing_ = false;
    util::EventLoop::Steady::time_point last_delivery_{};
    std::vector<core::LoginEvent> events_;   // the batch awaiting delivery
    std::vector<core::LoginEvent> scratch_;  // one entry's parse
    std::string line_;
    util::EventLoop::TimerId continue_timer_ = 0;
    util::EventLoop::TimerId timeout_timer_ = 0;
    util::EventLoop::TimerId poll_timer_ = 0;
    util::EventLoop::TimerId retry_timer_ = 0;
    SourceCounters committed_counters_;
    SourceCounters pending_counters_;
    util::RateLimitedLog warn_;
    util::RateLimitedLog untrusted_log_;
};

// Opens libsystemd if it is not yet (util/dynlib.hpp): what a journald source needs to start.
// For `config check`.
core::Status load_journal_library();

// The factory the daemon calls for `type = "journald"` (uses path, name, units, comms, exes, uids).
// `untrusted_parser`: see JournaldOptions::untrusted_parser.
core::Result<std::unique_ptr<Source>> open_journald_source(const config::SourceConfig& cfg, LineParser parser,
                                                           LoginSink& sink, const core::Clock& clock,
                                                           LineParser untrusted_parser = {});

}  // namespace rp::sources
