#include "sources/fifo_source.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace rp::sources {
namespace {

using Steady = util::EventLoop::Steady;
using util::Level;

std::string errno_text(int e) { return std::strerror(e); }

core::Result<gid_t> lookup_group(const std::string& group) {
    if (group.empty()) return static_cast<gid_t>(-1);
    gid_t numeric = 0;
    const auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), numeric);
    if (ec == std::errc() && end == group.data() + group.size()) return numeric;
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* res = nullptr;
    const int e = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &res);
    if (e != 0 || res == nullptr) return core::make_error("unknown group \"" + group + "\"");
    return res->gr_gid;
}

}  // namespace

FifoSource::FifoSource(std::string name, std::string path, LineParser parser, LoginSink& sink,
                       const core::Clock& clock, FifoOptions opts)
    : LineSource(std::move(name), std::move(parser), sink, clock), path_(std::move(path)), opts_(opts) {
    opts_.max_line_bytes = std::max<std::size_t>(opts_.max_line_bytes, 1);
    opts_.read_chunk = std::max<std::size_t>(opts_.read_chunk, 4096);
    opts_.batch_bytes = std::max<std::size_t>(opts_.batch_bytes, 1);
    opts_.max_parse_bytes_per_wakeup = std::max(opts_.max_parse_bytes_per_wakeup, opts_.batch_bytes);
    opts_.max_backlog_bytes = std::max(opts_.max_backlog_bytes, opts_.max_line_bytes + 1);
}

FifoSource::~FifoSource() {
    if (loop_ != nullptr) stop(*loop_);
}

core::Status FifoSource::start(util::EventLoop& loop) {
    const std::string what = "fifo source " + name_ + ": ";
    if (loop_ != nullptr) return core::make_error(what + "already started");
    if (path_.empty()) return core::make_error(what + "no path");
    auto inherited = take_inherited();
    if (!inherited) return core::make_error(what + inherited.error().message);
    const bool from_manager = inherited->valid();
    util::UniqueFd fd = std::move(*inherited);
    if (!from_manager) {
        auto opened = open_pipe();
        if (!opened) return core::make_error(what + opened.error().message);
        fd = std::move(*opened);
    }
    fd_ = std::move(fd);
    loop_ = &loop;
    buf_.resize(opts_.read_chunk);
    failing_ = false;
    loop.add(fd_.get(), EPOLLIN, [this](std::uint32_t) { on_readable(); });
    if (from_manager) {
        // Lines the pipe held before we started were written while the daemon was down: a backlog
        // (an event among them whose time was not in the line never grants).
        drain_pipe();
        stale_end_ = backlog_.size();
        if (stale_end_ > 0)
            util::log(Level::info, "fifo source {}: {} bytes of candidate lines were waiting in the pipe", name_, stale_end_);
        schedule();
    }
    return core::ok();
}

// The pipe from the service manager (a socket unit with ListenFIFO=), named after this source
// or its path in FileDescriptorName=, or else the passed FIFO that is our path's inode. Kept
// open for writing too, so that we never see EOF whatever mode the manager opened it with.
// None passed: an invalid UniqueFd.
core::Result<util::UniqueFd> FifoSource::take_inherited() {
    struct stat want {};
    const bool have_path = ::stat(path_.c_str(), &want) == 0 && S_ISFIFO(want.st_mode);
    auto same_inode = [&](int fd) {
        struct stat st {};
        return have_path && ::fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
    };
    const auto& passed = opts_.inherited != nullptr ? *opts_.inherited : util::ListenFds::process();
    auto fd = passed.find({name_, path_}, same_inode);
    if (!fd) return util::UniqueFd();
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 || !S_ISFIFO(st.st_mode))
        return core::make_error("the descriptor passed for " + path_ + " is not a FIFO (use ListenFIFO=)");
    const int flags = ::fcntl(fd->get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd->get(), F_SETFL, flags | O_NONBLOCK) != 0)
        return core::make_error("cannot make the passed FIFO non-blocking: " + errno_text(errno));
    if ((flags & O_ACCMODE) != O_RDWR) {
        const std::string self = "/proc/self/fd/" + std::to_string(fd->get());
        keep_writer_.reset(::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        if (!keep_writer_) return core::make_error("cannot hold the passed FIFO open for writing: " + errno_text(errno));
    }
    util::log(Level::info, "fifo source {}: reading {} from the descriptor the service manager passed", name_, path_);
    return std::move(*fd);
}

// Our own pipe: created if missing (mode, group through the descriptor), opened O_RDWR.
core::Result<util::UniqueFd> FifoSource::open_pipe() {
    auto gid = lookup_group(opts_.group);
    if (!gid) return gid.error();
    bool created = false;
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) return core::make_error(path_ + " is a symbolic link; refusing to follow it");
        if (!S_ISFIFO(st.st_mode)) return core::make_error(path_ + " exists and is not a FIFO (named pipe)");
    } else if (errno == ENOENT) {
        // Created with no permissions at all, then opened and given its mode through the
        // descriptor: nobody else can open it in between, whatever the umask.
        if (::mkfifo(path_.c_str(), 0600) != 0 && errno != EEXIST)
            return core::make_error("cannot create " + path_ + ": " + errno_text(errno));
        created = true;
    } else {
        return core::make_error("cannot stat " + path_ + ": " + errno_text(errno));
    }
    // O_RDWR: we are a writer too, so opening never blocks, writers never get ENXIO and we never
    // see EOF. O_NOFOLLOW: a symlink swapped in after the lstat is refused.
    util::UniqueFd fd(::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) return core::make_error("cannot open " + path_ + ": " + errno_text(errno));
    if (::fstat(fd.get(), &st) != 0 || !S_ISFIFO(st.st_mode)) return core::make_error(path_ + " is not a FIFO (named pipe)");
    if (created) {
        if (*gid != static_cast<gid_t>(-1) && ::fchown(fd.get(), static_cast<uid_t>(-1), *gid) != 0)
            return core::make_error("cannot give " + path_ + " to group " + opts_.group + ": " + errno_text(errno));
        if (::fchmod(fd.get(), static_cast<mode_t>(opts_.mode & 0777)) != 0)
            return core::make_error("cannot chmod " + path_ + ": " + errno_text(errno));
        util::log(Level::info, "fifo source {}: created {} (mode {:04o})", name_, path_, opts_.mode & 0777);
    } else if ((st.st_mode & S_IWOTH) != 0) {
        util::log(Level::warning, "fifo source {}: {} is world-writable: any local user can forge logins", name_, path_);
    }
    return fd;
}

void FifoSource::stop(util::EventLoop& loop) {
    if (loop_ == nullptr) return;
    drain_pipe();
    if (!failing_) {
        // Best effort: parse what is left, one delivery attempt per batch.
        while (head_ < backlog_.size() || batch_end_ != 0)
            if (!deliver_batch()) break;
    }
    if (continue_timer_ != 0) loop.cancel(continue_timer_);
    if (retry_timer_ != 0) loop.cancel(retry_timer_);
    continue_timer_ = retry_timer_ = 0;
    loop.remove(fd_.get());
    fd_.reset();
    keep_writer_.reset();
    loop_ = nullptr;
}

// ---- reading ---------------------------------------------------------------------------------

void FifoSource::on_readable() {
    drain_pipe();
    if (!failing_ && continue_timer_ == 0) process();
}

// Reads until the pipe is empty; never stops early, so the writer always finds room.
void FifoSource::drain_pipe() {
    if (!fd_) return;
    for (;;) {
        const ssize_t r = ::read(fd_.get(), buf_.data(), buf_.size());
        if (r > 0) {
            ingest(buf_.data(), static_cast<std::size_t>(r));
            queue_candidates();
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            warn_.log(Level::error, "fifo source {}: read {}: {}", name_, path_, errno_text(errno));
        return;  // EAGAIN (empty), or 0 which O_RDWR makes impossible
    }
}

void FifoSource::ingest(const char* data, std::size_t n) {
    while (n > 0) {
        const auto* nl = static_cast<const char*>(std::memchr(data, '\n', n));
        if (skipping_) {
            if (nl == nullptr) return;
            const std::size_t k = static_cast<std::size_t>(nl - data) + 1;
            data += k;
            n -= k;
            skipping_ = false;
            continue;
        }
        if (nl == nullptr) {
            if (partial_.size() + n > opts_.max_line_bytes) {
                partial_.clear();
                skipping_ = true;
                ++counters_.lines;
                ++counters_.malformed;
                ++counters_.dropped;
                warn_.log(Level::warning, "fifo source {}: line longer than {} bytes skipped", name_, opts_.max_line_bytes);
                return;
            }
            partial_.append(data, n);
            return;
        }
        const std::size_t k = static_cast<std::size_t>(nl - data) + 1;
        accept_line(data, k);
        data += k;
        n -= k;
    }
}

void FifoSource::accept_line(const char* data, std::size_t n) {
    ++counters_.lines;
    const std::size_t len = partial_.size() + n;
    if (len - 1 > opts_.max_line_bytes) {
        ++counters_.malformed;
        ++counters_.dropped;
        warn_.log(Level::warning, "fifo source {}: line longer than {} bytes skipped", name_, opts_.max_line_bytes);
    } else {
        fresh_.append(partial_);
        fresh_.append(data, n);
    }
    partial_.clear();
}

// The complete lines just read go through the prefilter: only candidates enter the backlog, so
// a flood of noise can never push a login out (issue 12 item 16). A candidate meets a full
// backlog only when the downstream is stuck; it is then dropped and counted as such.
void FifoSource::queue_candidates() {
    if (fresh_.empty()) return;
    std::uint64_t lines = 0, kept = 0, dropped = 0;
    for (char c : fresh_) lines += c == '\n' ? 1 : 0;
    parser_.for_each_candidate(fresh_, [&](std::size_t b, std::size_t e) {
        ++kept;
        const std::size_t len = e - b + 1;
        if (backlog_bytes() + len > opts_.max_backlog_bytes) {
            ++dropped;
            return;
        }
        compact();
        backlog_.append(fresh_, b, e - b);
        backlog_.push_back('\n');
    });
    fresh_.clear();
    if (fresh_.capacity() > 4 * opts_.read_chunk) fresh_.shrink_to_fit();
    counters_.filtered += lines - std::min(lines, kept);
    counters_.dropped += dropped;
    if (dropped > 0)
        warn_.log(Level::warning,
                  "fifo source {}: backlog full ({} bytes of candidate lines): {} line(s) that may hold a login "
                  "dropped ({} dropped, {} noise lines filtered in all)",
                  name_, backlog_bytes(), dropped, counters_.dropped, counters_.filtered);
}

// Amortised O(1) per byte: the consumed head goes once it is half the buffer.
void FifoSource::compact() {
    if (head_ == 0 || head_ < backlog_.size() / 2) return;
    backlog_.erase(0, head_);
    batch_end_ = batch_end_ == 0 ? 0 : batch_end_ - head_;
    stale_end_ = stale_end_ > head_ ? stale_end_ - head_ : 0;
    head_ = 0;
}

// ---- parsing and delivery --------------------------------------------------------------------

void FifoSource::process() {
    const auto start = Steady::now();
    std::size_t done = 0;
    while (head_ < backlog_.size() || batch_end_ != 0) {
        const std::size_t before = head_;
        if (!deliver_batch()) {
            failing_ = true;
            retry_timer_ = loop_->call_after(opts_.retry_delay, [this] { on_retry(); });
            return;
        }
        done += head_ - before;
        if (done >= opts_.max_parse_bytes_per_wakeup || Steady::now() - start >= opts_.max_parse_time_per_wakeup) break;
        drain_pipe();  // keep the pipe empty between batches
    }
    schedule();
}

// Parses the next batch of complete lines (unless a parsed batch still awaits delivery) and
// delivers its events. Consumes the batch only when deliver() succeeds.
bool FifoSource::deliver_batch() {
    if (batch_end_ == 0) {
        if (head_ >= backlog_.size()) return true;
        // A batch never mixes lines that waited in the pipe before start with live ones.
        const bool stale = head_ < stale_end_;
        const std::size_t limit = stale ? stale_end_ : backlog_.size();
        std::size_t end = std::min(limit, head_ + opts_.batch_bytes);
        if (end < limit) {
            const auto pos = backlog_.rfind('\n', end - 1);
            end = (pos == std::string::npos || pos < head_) ? backlog_.find('\n', head_) + 1 : pos + 1;
        }
        events_.clear();
        parser_(std::string_view(backlog_).substr(head_, end - head_), clock_.now(), events_);
        for (auto& e : events_) {
            if (e.source.empty()) e.source = name_;
            e.backlog = stale;
        }
        batch_end_ = end;
    }
    if (!events_.empty()) {
        if (auto st = sink_.deliver(events_, core::Checkpoint{}); !st) {
            warn_.log(Level::error, "fifo source {}: storing {} login(s) failed: {}; retrying", name_, events_.size(),
                      st.error().message);
            return false;
        }
        counters_.matches += events_.size();
    }
    events_.clear();
    head_ = batch_end_;
    batch_end_ = 0;
    if (head_ == backlog_.size()) {
        backlog_.clear();
        head_ = 0;
        stale_end_ = 0;
    }
    return true;
}

void FifoSource::schedule() {
    if (loop_ == nullptr || failing_ || continue_timer_ != 0) return;
    if (head_ < backlog_.size() || batch_end_ != 0)
        continue_timer_ = loop_->call_after(std::chrono::milliseconds(0), [this] { on_continue(); });
}

void FifoSource::on_continue() {
    continue_timer_ = 0;
    drain_pipe();
    process();
}

void FifoSource::on_retry() {
    retry_timer_ = 0;
    failing_ = false;
    drain_pipe();
    process();
}

core::Result<std::unique_ptr<Source>> open_fifo_source(const config::SourceConfig& cfg, LineParser parser,
                                                       LoginSink& sink, const core::Clock& clock) {
    if (cfg.path.empty()) return core::make_error("fifo source " + cfg.name + ": `path` is required");
    if ((cfg.mode & ~0777U) != 0)
        return core::make_error(fmt::format("fifo source {}: mode {:o} has bits beyond 0777", cfg.name, cfg.mode));
    FifoOptions opts;
    opts.mode = cfg.mode;
    opts.group = cfg.group;
    if (auto gid = lookup_group(cfg.group); !gid) return core::make_error("fifo source " + cfg.name + ": " + gid.error().message);
    const std::string name = cfg.name.empty() ? "fifo:" + cfg.path : cfg.name;
    return std::unique_ptr<Source>(std::make_unique<FifoSource>(name, cfg.path, std::move(parser), sink, clock, opts));
}

}  // namespace rp::sources
