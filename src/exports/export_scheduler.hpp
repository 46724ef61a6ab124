// ExportScheduler: keeps every [[export]] in step with the live permits without stalling the loop.
//
// The daemon drives it with three hooks: changed() after any grant, revoke or expiry;
// write_now() once at start, before anything is served; stop() at a graceful stop. In between:
//  - A change is written `batch` later (changes meanwhile join it). The permits are copied on the
//    loop (the snapshot callback), then sorted and written on one worker thread, so lookups go on
//    while a large map is built and fsynced. With a PieceCopy snapshot (the daemon's: a cursor over
//    the permit table, unsorted) the copy itself is spread over loop turns, a bounded piece per
//    turn, so a million permits never hold the loop; the file then holds every permit live when
//    the copy started and not changed during it, and a change during the copy makes one more
//    round (docs/exports.md, freshness). At most one round (copy + write) is in flight; changes
//    during it make exactly one more round after it.
//  - A failed write (disk full, a missing `static` file, a directory where the file should be) is
//    retried without any further change, after `retry_first`, doubling up to `retry_max`, until
//    it succeeds. The first failure of a streak is logged as an error, the recovery as a notice
//    (an error text may name a temporary file: one line per streak, not per text); the counters
//    and the latest error are in status().
//  - after_write commands run on the loop after a write that changed the map (Exporter::map_written).
//  - write_now() and stop() wait for the worker at most `start_bound`/`stop_bound`; past that the
//    daemon goes on (serving, or exiting) and says so.
//  - stop() rewrites every export without dynamic permits (the static part only: fail closed,
//    a stopped daemon must not leave relay open until the MTA next reads a fresh file), waits
//    for their after_write commands, and writes nothing afterwards.
// Thread-safety: every method on the loop's thread. The worker only calls Exporter::write_map().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/login_event.hpp"
#include "core/time.hpp"
#include "exports/exporter.hpp"
#include "util/event_loop.hpp"

namespace rp::exports {

// One export's counters (relaypermit status).
struct ExportStatus {
    std::string name;                   // "TYPE:PATH"
    std::uint64_t writes = 0;           // successful writes (the file matched the permits after each)
    std::uint64_t replacements = 0;     // writes that changed the file
    std::uint64_t failures = 0;         // failed writes, retries included
    std::optional<core::Time> last_success;
    std::string last_error;             // of the latest failure (kept after a recovery)
    bool failing = false;               // the latest write failed; a retry is scheduled
};

struct ExportTiming {
    std::chrono::milliseconds batch{100};
    std::chrono::milliseconds retry_first{1000};
    std::chrono::milliseconds retry_max{60000};
    std::chrono::milliseconds start_bound{10000};
    std::chrono::milliseconds stop_bound{10000};
};

class ExportScheduler {
public:
    // The live permits at `now`, called on the loop's thread for each write.
    using Snapshot = std::function<std::vector<core::Permit>(core::Time now)>;
    // A copy in pieces: appends a bounded number of permits, returns false once complete.
    using PieceCopy = std::function<bool(std::vector<core::Permit>& out)>;
    // Starts a copy of the permits live at `now` (any order), on the loop's thread.
    using PieceSnapshot = std::function<PieceCopy(core::Time now)>;

    ExportScheduler(util::EventLoop& loop, const core::Clock& clock, Snapshot snapshot, ExportTiming timing = {});
    ExportScheduler(util::EventLoop& loop, const core::Clock& clock, PieceSnapshot pieces, ExportTiming timing = {});
    ExportScheduler(const ExportScheduler&) = delete;
    ExportScheduler& operator=(const ExportScheduler&) = delete;
    // Waits for a write in flight (at most stop_bound; then leaves the worker to finish alone).
    ~ExportScheduler();

    // Replaces the exports (start, reload) and schedules their first write. The old ones are
    // destroyed once no write uses them.
    void set_exporters(std::vector<std::unique_ptr<Exporter>> exporters);
    // Hook: the permits changed (or may have: expiry). Ignored after stop().
    void changed();
    // Hook: writes every export now and waits for it (at most start_bound).
    void write_now();
    // Hook: every export without dynamic permits, then no more writes (at most stop_bound for
    // the writes, again for the after_write commands).
    void stop();

    std::vector<ExportStatus> status() const;
    // No write in flight or scheduled and no after_write running (tests).
    bool idle() const;

private:
    struct Entry;
    struct Job;
    class Worker;
    void arm(std::chrono::milliseconds delay);
    void start_round(bool static_only = false);
    void copy_piece();           // one piece of the copy in progress, then the next turn's
    void finish_copy_at_once();  // write_now, stop: no lookups to keep waiting
    void finish(std::unique_ptr<Job> job);
    void record(Entry& e, const core::Status& s, bool replaced, bool static_only);
    bool wait_for_worker(std::chrono::milliseconds bound, const char* what);
    void wait_after_write(std::chrono::milliseconds bound);

    util::EventLoop& loop_;
    const core::Clock& clock_;
    Snapshot snapshot_;
    PieceSnapshot pieces_;
    ExportTiming timing_;
    std::unique_ptr<Job> copying_;  // a round whose permits are being copied
    PieceCopy copy_;
    util::EventLoop::TimerId copy_timer_ = 0;
    std::shared_ptr<std::vector<Entry>> entries_;
    std::unique_ptr<Worker> worker_;
    util::EventLoop::TimerId timer_ = 0;
    std::chrono::steady_clock::time_point timer_due_{};
    std::chrono::milliseconds retry_delay_;
    bool in_flight_ = false;
    bool again_ = false;  // a round was due while one was in flight
    bool stopped_ = false;
};

}  // namespace rp::exports
