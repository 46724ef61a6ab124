#include "sources/file_tail_source.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "sources/file_tail_internal.hpp"

namespace rp::sources {
namespace {

using util::Level;

std::string errno_text(int e) { return std::strerror(e); }

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

FileTailSource::FileTailSource(std::string name, std::string path, LineParser parser, LoginSink& sink,
                               const core::Clock& clock, FileTailOptions opts)
    : LineSource(std::move(name), std::move(parser), sink, clock),
      path_(std::move(path)),
      dir_(parent_dir(path_)),
      opts_(opts),
      env_(opts.env != nullptr ? *opts.env : TailEnv::posix()),
      backlog_path_(opts.backlog_read_path) {
    opts_.max_line_bytes = std::max<std::size_t>(opts_.max_line_bytes, 1);
    opts_.read_chunk = std::max<std::size_t>(opts_.read_chunk, 4096);
    opts_.max_bytes_per_wakeup = std::max(opts_.max_bytes_per_wakeup, opts_.read_chunk);
}

FileTailSource::~FileTailSource() {
    if (loop_ != nullptr) stop(*loop_);
}

SourceCounters FileTailSource::counters() const {
    SourceCounters c = committed_counters_;
    c.lines += pending_counters_.lines;
    c.matches += pending_counters_.matches;
    c.malformed += pending_counters_.malformed;
    c.dropped += pending_counters_.dropped;
    // One fstat per open file: cheap, and only when someone asks (status, a metrics scrape).
    std::int64_t unread = 0;
    auto add = [&unread](const Tail& t) {
        if (const auto info = t.file->info(); info && info->size > t.read_pos)
            unread += static_cast<std::int64_t>(info->size - t.read_pos);
    };
    if (current_) add(*current_);
    for (const auto& t : draining_) add(*t);
    c.unread_bytes = unread;
    return c;
}

std::string FileTailSource::problem() const {
    return failing_ ? "its logins cannot be recorded (retrying)" : std::string();
}

// ---- start / stop -------------------------------------------------------------------------

core::Status FileTailSource::start(util::EventLoop& loop) {
    if (loop_ != nullptr) return core::make_error("file source " + name_ + ": already started");
    int err = 0;
    if (auto dir = env_.stat(dir_, err); !dir || !dir->directory)
        return core::make_error("file source " + name_ + ": directory " + dir_ + " of " + path_ +
                                " does not exist");
    if (auto st = env_.stat(path_, err); st && !st->regular)
        return core::make_error("file source " + name_ + ": " + path_ + " is not a regular file");
    auto watcher = env_.make_watcher();
    if (!watcher) return core::make_error("file source " + name_ + ": " + watcher.error().message);
    if (auto st = (*watcher)->watch_dir(dir_); !st) return core::make_error("file source " + name_ + ": " + st.error().message);
    watcher_ = std::move(*watcher);
    loop_ = &loop;
    buf_.resize(opts_.read_chunk);
    failing_ = false;
    events_.clear();
    pending_counters_ = {};

    if (auto cp = sink_.find_checkpoint(name_)) {
        restore(*cp);
    } else {
        open_current_from_start(false);
        if (current_)
            util::log(Level::info, "file source {}: following {} from offset 0 (no checkpoint: reading the whole file)",
                      name_, path_);
    }
    if (!current_) util::log(Level::info, "file source {}: waiting for {} to appear", name_, path_);
    // What the files hold now was there before we looked: a backlog (its events say so).
    auto mark_backlog = [](Tail* t) {
        if (!t || !t->file) return;
        if (auto info = t->file->info()) t->backlog_end = info->size;
    };
    mark_backlog(current_.get());
    for (auto& t : draining_) mark_backlog(t.get());

    if (watcher_->fd() >= 0) loop.add(watcher_->fd(), EPOLLIN, [this](std::uint32_t) { on_inotify(); });
    structure_changed_ = true;  // store the position as resolved now, once
    last_delivery_ = env_.now();
    arm(continue_timer_, std::chrono::milliseconds(0), &FileTailSource::on_continue);
    if (opts_.safety_poll.count() > 0) arm(poll_timer_, opts_.safety_poll, &FileTailSource::on_safety_poll);
    return core::ok();
}

void FileTailSource::stop(util::EventLoop& loop) {
    if (loop_ == nullptr) return;
    if (!failing_ && dirty()) {
        const auto st = sink_.deliver({}, core::Checkpoint{name_, make_checkpoint()});
        if (st) {
            commit_all();
        } else {
            warn_.log(Level::warning, "file source {}: could not store the position on stop: {}", name_,
                      st.error().message);
        }
    }
    cancel_timers();
    if (watcher_->fd() >= 0) loop.remove(watcher_->fd());
    if (current_) {
        util::log(Level::info, "file source {}: stopped following {} at offset {}", name_, path_,
                  current_->committed_offset);
        unwatch_tail(*current_);
    }
    for (auto& t : draining_) unwatch_tail(*t);
    current_.reset();
    draining_.clear();
    watcher_.reset();
    loop_ = nullptr;
    failing_ = false;
    structure_changed_ = false;
    events_.clear();
    pending_counters_ = {};
}

void FileTailSource::begin_draining(std::unique_ptr<Tail> t) {
    t->last_data = env_.now();
    draining_.push_back(std::move(t));
    structure_changed_ = true;
}

// ---- the wake-up --------------------------------------------------------------------------

void FileTailSource::on_inotify() {
    watcher_->drain();  // the events only wake us; service() looks at the files themselves
    service();
}

// One wake-up: reads what every open file has (rotated files first, then `path`), notices
// truncation and rotation by looking at the files (so coalesced or lost events do not matter),
// and delivers. Bounded by max_bytes_per_wakeup; the rest continues from a 0 ms timer.
void FileTailSource::service() {
    if (loop_ == nullptr || failing_) return;
    std::size_t budget = opts_.max_bytes_per_wakeup;
    bool more = false;
    if (current_) check_truncation(*current_);  // may add logrotate's copy, read before the rest
    for (auto& t : draining_) {
        check_truncation(*t);
        if (!read_tail(*t, budget)) {
            more = true;
            break;
        }
    }
    if (!more) {
        if (!current_) open_current_from_start(true);
        if (current_) {
            if (!read_tail(*current_, budget)) more = true;
            else check_rotation(budget, more);
        }
    }
    if (!more) close_idle_drains();
    finish_pass(more);
}

// Reads `t` to its end. Returns false when the budget ran out first, or when a mapped backlog
// read lost pages (then the pass starts over from the committed positions).
bool FileTailSource::read_tail(Tail& t, std::size_t& budget) {
    while (budget > 0) {
        const bool backlog = t.read_pos < t.backlog_end && t.file->native_fd() >= 0;
        const ReadStep step = backlog ? read_backlog(t, budget) : read_next(t, budget);
        if (step == ReadStep::end) return true;
        if (step == ReadStep::lost) return false;
    }
    return false;
}

// One read_at() into buf_: what the file has next.
FileTailSource::ReadStep FileTailSource::read_next(Tail& t, std::size_t& budget) {
    const std::size_t want = std::min(buf_.size(), budget);
    const auto n = t.file->read_at(t.read_pos, buf_.data(), want);
    if (!n) {
        warn_.log(Level::warning, "file source {}: reading {}: {}", name_, t.label, n.error().message);
        return ReadStep::end;
    }
    if (*n == 0) return ReadStep::end;
    consume(t, buf_.data(), *n);
    budget -= *n;
    return ReadStep::more;
}

// Up to the backlog's end (and the budget) through util::read_range, by the path the chooser
// measured to be cheaper (the parsing counts, as in `scan`). A mapped read whose pages were lost
// (the file shrank meanwhile) may have parsed zeros: everything since the last delivery is
// dropped and read again, as after a failed delivery; check_truncation sees the shrink next.
FileTailSource::ReadStep FileTailSource::read_backlog(Tail& t, std::size_t& budget) {
    if (!backlog_buf_) backlog_buf_ = std::make_unique<util::ChunkBuffer>(opts_.read_chunk);
    const std::uint64_t end = t.read_pos + std::min<std::uint64_t>(budget, t.backlog_end - t.read_pos);
    const std::size_t window = backlog_windows_++;
    const auto path = backlog_path_.path_for(window);
    const auto cpu0 = util::thread_cpu_time();
    const auto r = util::read_range(t.file->native_fd(), t.read_pos, end, path, *backlog_buf_,
                                    [&](std::string_view run) { consume(t, run.data(), run.size()); });
    if (!r) {
        warn_.log(Level::warning, "file source {}: reading {}: {}", name_, t.label, r.error().message);
        return ReadStep::end;
    }
    backlog_path_.report(path, r->bytes, util::thread_cpu_time() - cpu0);
    if (window + 1 == 2 * util::ReadPathChooser::k_samples)
        util::log(Level::info, "file source {}: backlog read path {}", name_, backlog_path_.describe());
    if (r->pages_lost) {
        warn_.log(Level::warning, "file source {}: {} shrank while it was read; reading again from the stored position",
                  name_, t.label);
        events_.clear();
        pending_counters_ = {};
        revert_all();
        return ReadStep::lost;
    }
    if (r->bytes == 0) return ReadStep::end;
    budget -= std::min(budget, r->bytes);
    return ReadStep::more;
}

// A run of the file's next bytes: the fingerprint's head, then lines.
void FileTailSource::consume(Tail& t, const char* data, std::size_t got) {
    if (t.read_pos < opts_.fingerprint_bytes && t.head.size() == t.read_pos) {
        const std::size_t take = std::min<std::size_t>(got, opts_.fingerprint_bytes - static_cast<std::size_t>(t.read_pos));
        t.head.append(data, take);
    }
    reading_backlog_ = t.read_pos < t.backlog_end;  // a chunk reaching past it counts as backlog
    process_chunk(t, data, got);
    t.read_pos += got;
    t.last_data = env_.now();
}

// Splits a chunk into lines: finishes a pending or skipped line, hands runs of complete lines
// to the parser in one call each, skips over-long lines, and keeps an incomplete tail pending.
void FileTailSource::process_chunk(Tail& t, const char* data, std::size_t n) {
    const char* p = finish_carried_line(t, data, n);
    const char* const end = data + n;
    const std::size_t max = opts_.max_line_bytes;
    if (p == nullptr) return;

    const char* run = p;  // start of the current run of acceptable complete lines
    while (p < end) {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (nl == nullptr) break;
        const auto len = static_cast<std::size_t>(nl - p);
        if (len > max) {
            if (run < p) parse_block(run, static_cast<std::size_t>(p - run));
            over_long(t, len + 1);
            run = nl + 1;
        } else {
            ++pending_counters_.lines;
        }
        p = nl + 1;
    }
    if (run < p) parse_block(run, static_cast<std::size_t>(p - run));

    const auto rest = static_cast<std::size_t>(end - p);
    if (rest > max) {
        over_long(t, rest);
        t.skipping = true;
    } else if (rest > 0) {
        t.pending.assign(p, rest);
    }
}

// A chunk first continues the line carried over from the last one (skipped or pending) and
// finishes it. Returns where the chunk's own lines begin, or nullptr when the chunk is used up.
const char* FileTailSource::finish_carried_line(Tail& t, const char* p, std::size_t n) {
    if (!t.skipping && t.pending.empty()) return p;
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n));
    if (t.skipping) {
        if (nl == nullptr) {
            pending_counters_.dropped += n;
            return nullptr;
        }
        pending_counters_.dropped += static_cast<std::uint64_t>(nl + 1 - p);
        t.skipping = false;
        return nl + 1;
    }
    if (nl == nullptr) {
        if (t.pending.size() + n > opts_.max_line_bytes) {
            over_long(t, t.pending.size() + n);
            t.pending.clear();
            t.skipping = true;
        } else {
            t.pending.append(p, n);
        }
        return nullptr;
    }
    const auto rest = static_cast<std::size_t>(nl - p);
    if (t.pending.size() + rest > opts_.max_line_bytes) {
        over_long(t, t.pending.size() + rest + 1);
    } else {
        t.pending.append(p, rest + 1);
        ++pending_counters_.lines;
        parse_block(t.pending.data(), t.pending.size());
    }
    t.pending.clear();
    return nl + 1;
}

void FileTailSource::over_long(const Tail& t, std::uint64_t bytes) {
    ++pending_counters_.lines;
    ++pending_counters_.malformed;
    pending_counters_.dropped += bytes;
    warn_.log(Level::warning, "file source {}: skipped a line longer than {} bytes in {}", name_, opts_.max_line_bytes,
              t.label);
}

void FileTailSource::parse_block(const char* data, std::size_t n) {
    const std::size_t before = events_.size();
    parser_(std::string_view(data, n), clock_.now(), events_);
    for (std::size_t i = before; i < events_.size(); ++i) {
        if (events_[i].source.empty()) events_[i].source = name_;
        events_[i].backlog = reading_backlog_;
    }
    pending_counters_.matches += events_.size() - before;
}

// Rename or delete+recreate: `path` no longer names the open file. The open file was just read
// to its end; it is drained for drain_grace (writers keep appending until they reopen), and the
// new file at `path` is read from offset 0 at once.
void FileTailSource::check_rotation(std::size_t& budget, bool& more) {
    int e = 0;
    const auto st = env_.stat(path_, e);
    if (!st) {
        if (e != ENOENT && e != ENOTDIR) {
            warn_.log(Level::warning, "file source {}: stat {}: {}", name_, path_, errno_text(e));
            return;
        }
        util::log(Level::info, "file source {}: rotated: {} (inode {}) was renamed or removed at offset {}; "
                  "draining it for {} ms", name_, path_, current_->ino, current_->read_pos, opts_.drain_grace.count());
        begin_draining(std::move(current_));
        return;
    }
    if (st->same_file(current_->dev, current_->ino)) return;
    // Lines the writer added to the old file between our read and the stat come before the new file's.
    if (!read_tail(*current_, budget)) more = true;
    util::log(Level::info, "file source {}: rotated: {} is a new file; finished inode {} at offset {}, draining it "
              "for {} ms", name_, path_, current_->ino, current_->read_pos, opts_.drain_grace.count());
    begin_draining(std::move(current_));
    open_current_from_start(true);
    if (current_ && !more && !read_tail(*current_, budget)) more = true;
}

// A rotated file with no new data for drain_grace is closed once the delivery that no longer
// names it succeeds. Its incomplete last line, if any, will never be finished: dropped.
void FileTailSource::close_idle_drains() {
    const auto now = env_.now();
    for (auto& t : draining_) {
        if (now - t->last_data < opts_.drain_grace) continue;
        if (!t->pending.empty()) {
            ++pending_counters_.lines;
            ++pending_counters_.malformed;
            pending_counters_.dropped += t->pending.size();
            warn_.log(Level::warning, "file source {}: dropped the incomplete last line ({} bytes) of rotated {}",
                      name_, t->pending.size(), t->label);
            t->pending.clear();
        }
        t->closing = true;
        structure_changed_ = true;
    }
}

// ---- timers -------------------------------------------------------------------------------

void FileTailSource::arm(util::EventLoop::TimerId& id, std::chrono::milliseconds delay,
                         void (FileTailSource::*fn)()) {
    if (id != 0) loop_->cancel(id);
    id = loop_->call_after(delay, [this, &id, fn] {
        id = 0;
        (this->*fn)();
    });
}

void FileTailSource::on_continue() { service(); }
void FileTailSource::on_flush() { service(); }
void FileTailSource::on_grace() { service(); }

void FileTailSource::on_retry() {
    failing_ = false;
    service();
}

void FileTailSource::on_safety_poll() {
    service();
    if (loop_ != nullptr && opts_.safety_poll.count() > 0)
        arm(poll_timer_, opts_.safety_poll, &FileTailSource::on_safety_poll);
}

void FileTailSource::cancel_timers() {
    for (auto* id : {&continue_timer_, &flush_timer_, &retry_timer_, &grace_timer_, &poll_timer_}) {
        if (*id != 0) loop_->cancel(*id);
        *id = 0;
    }
}

}  // namespace rp::sources
