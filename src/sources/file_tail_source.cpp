#include "sources/file_tail_source.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace rp::sources {
namespace {

using Steady = util::EventLoop::Steady;
using util::Level;

constexpr std::uint32_t k_dir_mask =
    IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
constexpr std::uint32_t k_file_mask = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE;

// 64-bit FNV-1a as 16 hex digits: tells a file from a rewrite of it; not a security measure.
std::string fingerprint(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return fmt::format("{:016x}", h);
}

std::string errno_text(int e) { return std::strerror(e); }

// Reads up to `n` bytes at `offset`; fewer only at end of file. nullopt on a read error.
std::optional<std::string> pread_all(int fd, std::uint64_t offset, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

std::string parent_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

struct Found {
    util::UniqueFd fd;
    std::string label;
};

// The first regular file in `dir` that `pre(name, st)` admits (by name and stat, no I/O) and
// `verify(fd)` confirms once opened.
template <typename Pre, typename Verify>
std::optional<Found> scan_dir(const std::string& dir, Pre pre, Verify verify) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return std::nullopt;
    std::optional<Found> found;
    while (const dirent* de = ::readdir(d)) {
        const std::string_view name = de->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!pre(name, st)) continue;
        util::UniqueFd fd(::openat(::dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        if (!fd || !verify(fd.get())) continue;
        found = Found{std::move(fd), (dir == "/" ? std::string() : dir) + "/" + std::string(name)};
        break;
    }
    ::closedir(d);
    return found;
}

bool compressed_name(std::string_view name) {
    for (std::string_view ext : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".br"})
        if (name.ends_with(ext)) return true;
    return false;
}

// One file position as stored in the checkpoint.
struct Entry {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t offset = 0;
    bool skip = false;
    std::string fp;
    std::uint64_t fp_len = 0;
};

// Type-checked: the checkpoint is our own data, but a damaged one must not throw.
std::optional<Entry> parse_entry(const nlohmann::json& j) {
    if (!j.is_object()) return std::nullopt;
    auto num = [&](const char* key, std::uint64_t& out) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned()) return false;
        out = it->get<std::uint64_t>();
        return true;
    };
    Entry e;
    if (!num("dev", e.dev) || !num("ino", e.ino) || !num("offset", e.offset) || !num("fp_len", e.fp_len))
        return std::nullopt;
    auto fp = j.find("fp");
    if (fp == j.end() || !fp->is_string()) return std::nullopt;
    e.fp = fp->get<std::string>();
    auto skip = j.find("skip");
    if (skip != j.end()) {
        if (!skip->is_boolean()) return std::nullopt;
        e.skip = skip->get<bool>();
    }
    return e;
}

}  // namespace

// One open file: the followed path or a rotated file being drained.
// Tentative state (read_pos, pending, skipping, head) moves as data is read; the committed state
// is what the last successful deliver() stored, and a failed deliver() goes back to it.
struct FileTailSource::Tail {
    util::UniqueFd fd;
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
    Steady::time_point last_data{};  // draining: when data was last read
    bool closing = false;            // draining and idle: closed once the next delivery succeeds
    std::uint64_t backlog_end = 0;   // the file's size at start(): lines before it are a backlog

    std::uint64_t consumed() const { return read_pos - pending.size(); }
};

FileTailSource::FileTailSource(std::string name, std::string path, LineParser parser, LoginSink& sink,
                               const core::Clock& clock, FileTailOptions opts)
    : name_(std::move(name)),
      path_(std::move(path)),
      dir_(parent_dir(path_)),
      parser_(std::move(parser)),
      sink_(sink),
      clock_(clock),
      opts_(opts) {
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
    return c;
}

// ---- start / stop -------------------------------------------------------------------------

core::Status FileTailSource::start(util::EventLoop& loop) {
    if (loop_ != nullptr) return core::make_error("file source " + name_ + ": already started");
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return core::make_error("file source " + name_ + ": directory " + dir_ + " of " + path_ +
                                " does not exist");
    if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        return core::make_error("file source " + name_ + ": " + path_ + " is not a regular file");
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) return core::make_error("file source " + name_ + ": inotify_init1: " + errno_text(errno));
    dir_wd_ = ::inotify_add_watch(inotify_.get(), dir_.c_str(), k_dir_mask);
    if (dir_wd_ < 0) {
        const int e = errno;
        inotify_.reset();
        return core::make_error("file source " + name_ + ": cannot watch directory " + dir_ + ": " + errno_text(e));
    }
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
        struct stat size {};
        if (t && ::fstat(t->fd.get(), &size) == 0) t->backlog_end = static_cast<std::uint64_t>(size.st_size);
    };
    mark_backlog(current_.get());
    for (auto& t : draining_) mark_backlog(t.get());

    loop.add(inotify_.get(), EPOLLIN, [this](std::uint32_t) { on_inotify(); });
    structure_changed_ = true;  // store the position as resolved now, once
    last_delivery_ = Steady::now();
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
    loop.remove(inotify_.get());
    if (current_) {
        util::log(Level::info, "file source {}: stopped following {} at offset {}", name_, path_,
                  current_->committed_offset);
        unwatch_tail(*current_);
    }
    for (auto& t : draining_) unwatch_tail(*t);
    current_.reset();
    draining_.clear();
    inotify_.reset();
    dir_wd_ = -1;
    loop_ = nullptr;
    failing_ = false;
    structure_changed_ = false;
    events_.clear();
    pending_counters_ = {};
}

// Resolves a stored checkpoint against the files now on disk (see docs/rotation.md).
void FileTailSource::restore(const std::string& checkpoint) {
    const auto j = nlohmann::json::parse(checkpoint, nullptr, false);
    std::vector<Entry> entries;  // oldest first; the followed file last
    std::optional<Entry> cur_entry;
    bool ok = j.is_object();
    if (ok) {
        if (auto d = j.find("draining"); d != j.end()) {
            if (!d->is_array()) ok = false;
            else
                for (const auto& item : *d) {
                    auto e = parse_entry(item);
                    if (!e) ok = false;
                    else entries.push_back(*e);
                }
        }
        if (j.contains("ino")) {
            cur_entry = parse_entry(j);
            if (!cur_entry) ok = false;
        }
    }
    if (!ok) {
        warn_.log(Level::warning, "file source {}: stored position is unreadable; reading {} from the start",
                  name_, path_);
        open_current_from_start(false);
        if (current_) util::log(Level::info, "file source {}: following {} from offset 0", name_, path_);
        return;
    }
    const bool have_cur = cur_entry.has_value();
    if (have_cur) entries.push_back(*cur_entry);

    for (std::size_t i = 0; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        const bool was_current = have_cur && i + 1 == entries.size();
        // Where is that file now? At `path`, or renamed within the directory (mail.log.1).
        util::UniqueFd fd;
        std::string label;
        bool at_path = false;
        struct stat st {};
        if (::stat(path_.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_dev) == e.dev &&
            static_cast<std::uint64_t>(st.st_ino) == e.ino) {
            fd.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
            label = path_;
            at_path = true;
        } else if (auto f = scan_dir(
                       dir_,
                       [&](std::string_view, const struct stat& fst) {
                           return static_cast<std::uint64_t>(fst.st_dev) == e.dev &&
                                  static_cast<std::uint64_t>(fst.st_ino) == e.ino;
                       },
                       [](int) { return true; })) {
            fd = std::move(f->fd);
            label = f->label;
        }
        if (!fd || ::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_ino) != e.ino ||
            static_cast<std::uint64_t>(st.st_dev) != e.dev) {
            warn_.log(Level::warning,
                      "file source {}: the file {} was read up to offset {} (inode {}) but is gone "
                      "(compressed or removed while stopped?); lines written to it after that are lost",
                      name_, was_current ? path_ : "rotated from " + path_, e.offset, e.ino);
            continue;
        }
        // Same content? The first fp_len bytes must hash the same and the file must not be shorter.
        bool same = static_cast<std::uint64_t>(st.st_size) >= e.offset;
        if (same) {
            const auto head = pread_all(fd.get(), 0, static_cast<std::size_t>(std::min<std::uint64_t>(e.fp_len, 1 << 20)));
            same = head && head->size() == e.fp_len && fingerprint(*head) == e.fp;
        }
        if (!same && !at_path) {
            warn_.log(Level::warning, "file source {}: {} has the stored inode {} but other content; ignoring it",
                      name_, label, e.ino);
            continue;
        }
        if (at_path && current_) continue;  // cannot happen: one inode per path
        if (at_path && !same && e.offset > 0) {
            // Copied and truncated while stopped: the rest of what we had not read is in the copy.
            auto copy = find_copy(e.dev, e.ino, e.offset + 1, e.fp_len, [&](const std::string& head) {
                return fingerprint(head) == e.fp;
            });
            if (copy) {
                auto c = std::make_unique<Tail>();
                c->fd = std::move(copy->fd);
                struct stat cst {};
                ::fstat(c->fd.get(), &cst);
                c->dev = static_cast<std::uint64_t>(cst.st_dev);
                c->ino = static_cast<std::uint64_t>(cst.st_ino);
                c->label = copy->label;
                c->read_pos = c->committed_offset = e.offset;
                c->skipping = c->committed_skip = e.skip;
                auto head = pread_all(c->fd.get(), 0,
                                      static_cast<std::size_t>(std::min<std::uint64_t>(opts_.fingerprint_bytes, e.offset)));
                c->head = c->committed_head = head.value_or(std::string());
                watch_tail(*c);
                util::log(Level::info, "file source {}: {} was copied and truncated while stopped: finishing the copy "
                          "{} from offset {} first", name_, path_, c->label, e.offset);
                c->last_data = Steady::now();
                draining_.push_back(std::move(c));
            }
        }
        auto t = std::make_unique<Tail>();
        t->fd = std::move(fd);
        t->dev = e.dev;
        t->ino = e.ino;
        t->label = label;
        const std::uint64_t offset = same ? e.offset : 0;
        t->read_pos = t->committed_offset = offset;
        t->skipping = t->committed_skip = same && e.skip;
        if (offset > 0) {
            auto head = pread_all(t->fd.get(), 0,
                                  static_cast<std::size_t>(std::min<std::uint64_t>(opts_.fingerprint_bytes, offset)));
            t->head = t->committed_head = head.value_or(std::string());
        }
        watch_tail(*t);
        if (at_path) {
            if (same)
                util::log(Level::info, "file source {}: following {} from offset {}", name_, path_, offset);
            else
                util::log(Level::info,
                          "file source {}: {} was truncated or rewritten while stopped; reading it from offset 0",
                          name_, path_);
            current_ = std::move(t);
        } else {
            util::log(Level::info, "file source {}: rotated while stopped: finishing {} from offset {} first",
                      name_, label, offset);
            t->last_data = Steady::now();
            draining_.push_back(std::move(t));
        }
    }
    if (!current_) {
        open_current_from_start(false);
        if (current_) util::log(Level::info, "file source {}: following {} from offset 0", name_, path_);
    }
}

// ---- files and watches --------------------------------------------------------------------

// err: errno, or 0 when the file is not a regular file.
std::unique_ptr<FileTailSource::Tail> FileTailSource::open_tail(const std::string& file, std::uint64_t offset,
                                                                int& err) {
    util::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        err = errno;
        return nullptr;
    }
    if (!S_ISREG(st.st_mode)) {
        err = 0;
        return nullptr;
    }
    auto t = std::make_unique<Tail>();
    t->fd = std::move(fd);
    t->dev = static_cast<std::uint64_t>(st.st_dev);
    t->ino = static_cast<std::uint64_t>(st.st_ino);
    t->label = file;
    t->read_pos = t->committed_offset = offset;
    watch_tail(*t);
    return t;
}

void FileTailSource::open_current_from_start(bool log_it) {
    int err = 0;
    current_ = open_tail(path_, 0, err);
    if (!current_) {
        if (err != ENOENT)
            warn_.log(Level::warning, "file source {}: cannot open {}: {}", name_, path_,
                      err == 0 ? std::string("not a regular file") : errno_text(err));
        return;
    }
    structure_changed_ = true;
    if (log_it)
        util::log(Level::info, "file source {}: following {} from offset 0 (new file, inode {})", name_, path_,
                  current_->ino);
}

// The watch is on the open inode (through /proc/self/fd, so it cannot land on a newer file at
// the same name); rename and unlink keep it, and a drained file still reports its appends.
void FileTailSource::watch_tail(Tail& t) {
    const std::string proc = "/proc/self/fd/" + std::to_string(t.fd.get());
    t.wd = ::inotify_add_watch(inotify_.get(), proc.c_str(), k_file_mask);
    if (t.wd < 0) t.wd = ::inotify_add_watch(inotify_.get(), t.label.c_str(), k_file_mask);
    if (t.wd < 0)
        warn_.log(Level::warning, "file source {}: cannot watch {}: {}; appends are seen by the directory watch only",
                  name_, t.label, errno_text(errno));
}

void FileTailSource::unwatch_tail(Tail& t) {
    // Before the fd closes: afterwards the kernel may drop the watch and reuse its number.
    if (t.wd >= 0 && inotify_) ::inotify_rm_watch(inotify_.get(), t.wd);
    t.wd = -1;
}

void FileTailSource::begin_draining(std::unique_ptr<Tail> t) {
    t->last_data = Steady::now();
    draining_.push_back(std::move(t));
    structure_changed_ = true;
}

// ---- the wake-up --------------------------------------------------------------------------

void FileTailSource::on_inotify() {
    alignas(inotify_event) char ev[16 * 1024];
    for (;;) {
        const ssize_t n = ::read(inotify_.get(), ev, sizeof ev);
        if (n > 0) continue;  // the events only wake us; service() looks at the files themselves
        if (n < 0 && errno == EINTR) continue;
        break;
    }
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

// logrotate's copytruncate copies the file to a sibling (mail.log.1, mail.log-20261122) and then
// truncates it: a sibling named after the file, not compressed, other inode, at least `min_size`
// bytes, whose first `head_len` bytes pass `head_ok`.
template <typename HeadOk>
std::optional<FileTailSource::Copy> FileTailSource::find_copy(std::uint64_t dev, std::uint64_t ino,
                                                             std::uint64_t min_size, std::uint64_t head_len,
                                                             HeadOk head_ok) const {
    const std::string base = path_.substr(path_.rfind('/') == std::string::npos ? 0 : path_.rfind('/') + 1);
    auto found = scan_dir(
        dir_,
        [&](std::string_view name, const struct stat& st) {
            return name.size() > base.size() && name.starts_with(base) && !compressed_name(name) &&
                   static_cast<std::uint64_t>(st.st_size) >= min_size &&
                   !(static_cast<std::uint64_t>(st.st_dev) == dev && static_cast<std::uint64_t>(st.st_ino) == ino);
        },
        [&](int fd) {
            const auto head = pread_all(fd, 0, static_cast<std::size_t>(head_len));
            return head && head->size() == head_len && head_ok(*head);
        });
    if (!found) return std::nullopt;
    return Copy{std::move(found->fd), std::move(found->label)};
}

void FileTailSource::check_truncation(Tail& t) {
    struct stat st {};
    if (::fstat(t.fd.get(), &st) != 0) return;
    bool truncated = static_cast<std::uint64_t>(st.st_size) < t.read_pos;
    if (!truncated && !t.head.empty()) {
        // Truncated and rewritten past our position before we woke up: the first bytes differ.
        const auto head = pread_all(t.fd.get(), 0, t.head.size());
        truncated = head && *head != t.head;
    }
    if (!truncated) return;
    util::log(Level::info, "file source {}: {} was truncated (copytruncate?) at offset {}; reading it from offset 0",
              name_, t.label, t.read_pos);
    // What we had not read yet (and an incomplete last line) is in logrotate's copy, if any.
    if (&t == current_.get() && !t.head.empty()) {
        const std::uint64_t from = t.consumed();
        auto copy = find_copy(t.dev, t.ino, from + 1, t.head.size(),
                              [&](const std::string& head) { return head == t.head; });
        struct stat cst {};
        if (copy && ::fstat(copy->fd.get(), &cst) == 0 &&
            std::none_of(draining_.begin(), draining_.end(), [&](const auto& d) {
                return d->dev == static_cast<std::uint64_t>(cst.st_dev) && d->ino == static_cast<std::uint64_t>(cst.st_ino);
            })) {
            auto c = std::make_unique<Tail>();
            c->fd = std::move(copy->fd);
            c->dev = static_cast<std::uint64_t>(cst.st_dev);
            c->ino = static_cast<std::uint64_t>(cst.st_ino);
            c->label = copy->label;
            c->read_pos = c->committed_offset = from;
            c->skipping = c->committed_skip = t.skipping;
            c->head = c->committed_head =
                t.head.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(opts_.fingerprint_bytes, from)));
            watch_tail(*c);
            util::log(Level::info, "file source {}: reading the rest of the copy {} from offset {} first", name_,
                      c->label, from);
            t.pending.clear();  // read again from the copy
            t.skipping = false;
            begin_draining(std::move(c));
        }
    }
    if (!t.pending.empty()) {
        ++pending_counters_.malformed;
        pending_counters_.dropped += t.pending.size();
    }
    t.pending.clear();
    t.skipping = false;
    t.read_pos = 0;
    t.head.clear();
}

// Reads `t` to its end. Returns false when the budget ran out first.
bool FileTailSource::read_tail(Tail& t, std::size_t& budget) {
    while (budget > 0) {
        const std::size_t want = std::min(buf_.size(), budget);
        const ssize_t n = ::pread(t.fd.get(), buf_.data(), want, static_cast<off_t>(t.read_pos));
        if (n < 0) {
            if (errno == EINTR) continue;
            warn_.log(Level::warning, "file source {}: reading {}: {}", name_, t.label, errno_text(errno));
            return true;
        }
        if (n == 0) return true;
        const auto got = static_cast<std::size_t>(n);
        if (t.read_pos < opts_.fingerprint_bytes && t.head.size() == t.read_pos) {
            const std::size_t take =
                std::min<std::size_t>(got, opts_.fingerprint_bytes - static_cast<std::size_t>(t.read_pos));
            t.head.append(buf_.data(), take);
        }
        reading_backlog_ = t.read_pos < t.backlog_end;  // a chunk reaching past it counts as backlog
        process_chunk(t, buf_.data(), got);
        t.read_pos += got;
        budget -= got;
        t.last_data = Steady::now();
    }
    return false;
}

// Splits a chunk into lines: finishes a pending or skipped line, hands runs of complete lines
// to the parser in one call each, skips over-long lines, and keeps an incomplete tail pending.
void FileTailSource::process_chunk(Tail& t, const char* data, std::size_t n) {
    const char* p = data;
    const char* const end = data + n;
    const std::size_t max = opts_.max_line_bytes;
    auto over_long = [&](std::uint64_t bytes) {
        ++pending_counters_.lines;
        ++pending_counters_.malformed;
        pending_counters_.dropped += bytes;
        warn_.log(Level::warning, "file source {}: skipped a line longer than {} bytes in {}", name_, max, t.label);
    };

    if (t.skipping) {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n));
        if (nl == nullptr) {
            pending_counters_.dropped += n;
            return;
        }
        pending_counters_.dropped += static_cast<std::uint64_t>(nl + 1 - p);
        t.skipping = false;
        p = nl + 1;
    } else if (!t.pending.empty()) {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n));
        if (nl == nullptr) {
            if (t.pending.size() + n > max) {
                over_long(t.pending.size() + n);
                t.pending.clear();
                t.skipping = true;
            } else {
                t.pending.append(p, n);
            }
            return;
        }
        const auto rest = static_cast<std::size_t>(nl - p);
        if (t.pending.size() + rest > max) {
            over_long(t.pending.size() + rest + 1);
        } else {
            t.pending.append(p, rest + 1);
            ++pending_counters_.lines;
            parse_block(t.pending.data(), t.pending.size());
        }
        t.pending.clear();
        p = nl + 1;
    }

    const char* run = p;  // start of the current run of acceptable complete lines
    while (p < end) {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (nl == nullptr) break;
        const auto len = static_cast<std::size_t>(nl - p);
        if (len > max) {
            if (run < p) parse_block(run, static_cast<std::size_t>(p - run));
            over_long(len + 1);
            run = nl + 1;
        } else {
            ++pending_counters_.lines;
        }
        p = nl + 1;
    }
    if (run < p) parse_block(run, static_cast<std::size_t>(p - run));

    const auto rest = static_cast<std::size_t>(end - p);
    if (rest > max) {
        over_long(rest);
        t.skipping = true;
    } else if (rest > 0) {
        t.pending.assign(p, rest);
    }
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
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        const int e = errno;
        if (e != ENOENT && e != ENOTDIR) {
            warn_.log(Level::warning, "file source {}: stat {}: {}", name_, path_, errno_text(e));
            return;
        }
        util::log(Level::info, "file source {}: rotated: {} (inode {}) was renamed or removed at offset {}; "
                  "draining it for {} ms", name_, path_, current_->ino, current_->read_pos, opts_.drain_grace.count());
        begin_draining(std::move(current_));
        return;
    }
    if (static_cast<std::uint64_t>(st.st_dev) == current_->dev && static_cast<std::uint64_t>(st.st_ino) == current_->ino)
        return;
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
    const auto now = Steady::now();
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

// ---- delivery -----------------------------------------------------------------------------

bool FileTailSource::dirty() const {
    if (structure_changed_) return true;
    auto moved = [](const Tail& t) { return t.consumed() != t.committed_offset || t.skipping != t.committed_skip; };
    if (current_ && moved(*current_)) return true;
    return std::any_of(draining_.begin(), draining_.end(), [&](const auto& t) { return moved(*t); });
}

std::string FileTailSource::make_checkpoint() const {
    auto entry = [&](const Tail& t, nlohmann::json& j) {
        const std::uint64_t off = t.consumed();
        const auto fp_len = std::min(t.head.size(),
                                     static_cast<std::size_t>(std::min<std::uint64_t>(opts_.fingerprint_bytes, off)));
        j["dev"] = t.dev;
        j["ino"] = t.ino;
        j["offset"] = off;
        j["skip"] = t.skipping;
        j["fp"] = fingerprint(std::string_view(t.head).substr(0, fp_len));
        j["fp_len"] = fp_len;
    };
    nlohmann::json j = nlohmann::json::object();
    j["v"] = 1;
    if (current_) entry(*current_, j);
    nlohmann::json d = nlohmann::json::array();
    for (const auto& t : draining_) {
        if (t->closing) continue;
        nlohmann::json e = nlohmann::json::object();
        entry(*t, e);
        d.push_back(std::move(e));
    }
    if (!d.empty()) j["draining"] = std::move(d);
    return j.dump();
}

void FileTailSource::commit_all() {
    auto commit = [&](Tail& t) {
        t.committed_offset = t.consumed();
        t.committed_skip = t.skipping;
        t.committed_head = t.head.substr(
            0, static_cast<std::size_t>(std::min<std::uint64_t>(opts_.fingerprint_bytes, t.committed_offset)));
    };
    if (current_) commit(*current_);
    for (auto& t : draining_) commit(*t);
}

void FileTailSource::revert_all() {
    auto revert = [](Tail& t) {
        t.read_pos = t.committed_offset;
        t.pending.clear();
        t.skipping = t.committed_skip;
        t.head = t.committed_head;
        t.closing = false;
    };
    if (current_) revert(*current_);
    for (auto& t : draining_) revert(*t);
}

void FileTailSource::finish_pass(bool more) {
    const auto now = Steady::now();
    const bool need = !events_.empty() || structure_changed_ ||
                      (dirty() && now - last_delivery_ >= opts_.checkpoint_interval);
    if (need) {
        const auto st = sink_.deliver(events_, core::Checkpoint{name_, make_checkpoint()});
        events_.clear();
        if (!st) {
            warn_.log(Level::warning, "file source {}: could not store {} events and the position: {}; retrying in {} ms",
                      name_, pending_counters_.matches, st.error().message, opts_.retry_delay.count());
            revert_all();
            pending_counters_ = {};
            failing_ = true;
            if (continue_timer_ != 0) {
                loop_->cancel(continue_timer_);
                continue_timer_ = 0;
            }
            arm(retry_timer_, opts_.retry_delay, &FileTailSource::on_retry);
            return;
        }
        commit_all();
        committed_counters_.lines += pending_counters_.lines;
        committed_counters_.matches += pending_counters_.matches;
        committed_counters_.malformed += pending_counters_.malformed;
        committed_counters_.dropped += pending_counters_.dropped;
        pending_counters_ = {};
        structure_changed_ = false;
        last_delivery_ = now;
        for (auto it = draining_.begin(); it != draining_.end();) {
            if ((*it)->closing) {
                util::log(Level::info, "file source {}: finished rotated {} (inode {}) at offset {}", name_,
                          (*it)->label, (*it)->ino, (*it)->read_pos);
                unwatch_tail(**it);
                it = draining_.erase(it);
            } else {
                ++it;
            }
        }
    } else if (dirty() && flush_timer_ == 0) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(opts_.checkpoint_interval - (now - last_delivery_));
        arm(flush_timer_, std::max(left, std::chrono::milliseconds(0)), &FileTailSource::on_flush);
    }
    if (more) arm(continue_timer_, std::chrono::milliseconds(0), &FileTailSource::on_continue);
    if (!draining_.empty()) {
        auto earliest = draining_.front()->last_data;
        for (const auto& t : draining_) earliest = std::min(earliest, t->last_data);
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(earliest + opts_.drain_grace - now);
        arm(grace_timer_, std::max(left, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1),
            &FileTailSource::on_grace);
    } else if (grace_timer_ != 0) {
        loop_->cancel(grace_timer_);
        grace_timer_ = 0;
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
