// FileTailSource: finding, opening and watching files, and restore (parse -> locate -> resume).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "sources/file_tail_internal.hpp"

namespace rp::sources {
namespace {

using util::Level;

std::string errno_text(int e) { return std::strerror(e); }

bool compressed_name(std::string_view name) {
    for (std::string_view ext : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".br"})
        if (name.ends_with(ext)) return true;
    return false;
}

}  // namespace

std::optional<std::string> file_tail::read_exactly(TailFile& f, std::uint64_t offset, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        auto r = f.read_at(offset + got, out.data() + got, n - got);
        if (!r) return std::nullopt;
        if (*r == 0) break;
        got += *r;
    }
    out.resize(got);
    return out;
}

// ---- the Tail factory and watches ----------------------------------------------------------

// The one place a Tail is made: `where` resumed at `offset` (inside an over-long line if `skip`),
// committed there, its first bytes kept for the fingerprint, and watched.
std::unique_ptr<FileTailSource::Tail> FileTailSource::make_tail(Located where, std::uint64_t offset, bool skip) {
    auto t = std::make_unique<Tail>();
    t->file = std::move(where.file);
    t->dev = where.info.dev;
    t->ino = where.info.ino;
    t->label = std::move(where.label);
    t->read_pos = t->committed_offset = offset;
    t->skipping = t->committed_skip = skip;
    if (offset > 0) {
        auto head = file_tail::read_exactly(*t->file, 0, file_tail::head_bytes(opts_.fingerprint_bytes, offset));
        t->head = t->committed_head = head.value_or(std::string());
    }
    watch_tail(*t);
    return t;
}

// err: errno, or 0 when the file is not a regular file.
std::unique_ptr<FileTailSource::Tail> FileTailSource::open_tail(const std::string& file, int& err) {
    Located where;
    where.file = env_.open(file, err);
    if (!where.file) return nullptr;
    auto info = where.file->info();
    if (!info) {
        err = errno;
        return nullptr;
    }
    if (!info->regular) {
        err = 0;
        return nullptr;
    }
    where.info = *info;
    where.label = file;
    return make_tail(std::move(where), 0, false);
}

void FileTailSource::open_current_from_start(bool log_it) {
    int err = 0;
    current_ = open_tail(path_, err);
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

void FileTailSource::watch_tail(Tail& t) {
    t.wd = watcher_->watch_file(*t.file, t.label);
    if (t.wd < 0)
        warn_.log(Level::warning, "file source {}: cannot watch {}: {}; appends are seen by the directory watch only",
                  name_, t.label, errno_text(errno));
}

void FileTailSource::unwatch_tail(Tail& t) {
    // Before the file closes: afterwards the kernel may drop the watch and reuse its number.
    if (t.wd >= 0 && watcher_) watcher_->unwatch(t.wd);
    t.wd = -1;
}

// ---- finding files ---------------------------------------------------------------------------

// The first regular file in the directory that `pre(name, info)` admits (no I/O) and `verify`
// confirms once opened.
std::optional<FileTailSource::Located> FileTailSource::scan_dir(
    const std::function<bool(const std::string&, const FileInfo&)>& pre, const std::function<bool(TailFile&)>& verify) {
    std::optional<Located> found;
    env_.list_dir(dir_, [&](const std::string& name, const FileInfo& info) {
        if (!pre(name, info)) return true;
        const std::string label = (dir_ == "/" ? std::string() : dir_) + "/" + name;
        int err = 0;
        auto file = env_.open(label, err);
        if (!file || !verify(*file)) return true;
        found = Located{std::move(file), info, label};
        return false;
    });
    return found;
}

// logrotate's copytruncate copies the file to a sibling (mail.log.1, mail.log-20261122) and then
// truncates it: a sibling named after the file, not compressed, other inode, at least `min_size`
// bytes, whose first `head_len` bytes pass `head_ok`.
std::optional<FileTailSource::Located> FileTailSource::find_copy(
    const FileInfo& of, std::uint64_t min_size, std::uint64_t head_len,
    const std::function<bool(const std::string& head)>& head_ok) {
    const std::string base = path_.substr(path_.rfind('/') == std::string::npos ? 0 : path_.rfind('/') + 1);
    return scan_dir(
        [&](const std::string& name, const FileInfo& info) {
            return name.size() > base.size() && name.starts_with(base) && !compressed_name(name) &&
                   info.size >= min_size && !info.same_file(of.dev, of.ino);
        },
        [&](TailFile& file) {
            const auto head = file_tail::read_exactly(file, 0, static_cast<std::size_t>(head_len));
            return head && head->size() == head_len && head_ok(*head);
        });
}

void FileTailSource::check_truncation(Tail& t) {
    const auto info = t.file->info();
    if (!info) return;
    bool truncated = info->size < t.read_pos;
    if (!truncated && !t.head.empty()) {
        // Truncated and rewritten past our position before we woke up: the first bytes differ.
        const auto head = file_tail::read_exactly(*t.file, 0, t.head.size());
        truncated = head && *head != t.head;
    }
    if (!truncated) return;
    util::log(Level::info, "file source {}: {} was truncated (copytruncate?) at offset {}; reading it from offset 0",
              name_, t.label, t.read_pos);
    // What we had not read yet (and an incomplete last line) is in logrotate's copy, if any.
    if (&t == current_.get() && !t.head.empty()) {
        const std::uint64_t from = t.consumed();
        auto copy = find_copy(FileInfo{t.dev, t.ino}, from + 1, t.head.size(),
                              [&](const std::string& head) { return head == t.head; });
        if (copy && std::none_of(draining_.begin(), draining_.end(),
                                 [&](const auto& d) { return copy->info.same_file(d->dev, d->ino); })) {
            auto c = make_tail(std::move(*copy), from, t.skipping);
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

// ---- restore: parse -> locate -> resume (docs/rotation.md) ------------------------------------

void FileTailSource::restore(const std::string& checkpoint) {
    const auto stored = parse_tail_checkpoint(checkpoint);
    if (!stored) {
        warn_.log(Level::warning, "file source {}: stored position is unreadable; reading {} from the start",
                  name_, path_);
        open_current_from_start(false);
        if (current_) util::log(Level::info, "file source {}: following {} from offset 0", name_, path_);
        return;
    }
    std::vector<TailPosition> positions = stored->draining;  // oldest first; the followed file last
    if (stored->current) positions.push_back(*stored->current);
    for (std::size_t i = 0; i < positions.size(); ++i) {
        const bool was_current = stored->current && i + 1 == positions.size();
        if (auto where = locate(positions[i], was_current)) resume(positions[i], std::move(*where));
    }
    if (!current_) {
        open_current_from_start(false);
        if (current_) util::log(Level::info, "file source {}: following {} from offset 0", name_, path_);
    }
}

// Where is the stored file now? At `path`, or renamed within the directory (mail.log.1); and
// does it still hold what we read (not shorter, same first fp_len bytes)? A renamed file with
// other content is not ours: nullopt, like a file that is gone.
std::optional<FileTailSource::Located> FileTailSource::locate(const TailPosition& e, bool was_current) {
    Located where;
    int err = 0;
    if (auto st = env_.stat(path_, err); st && st->same_file(e.dev, e.ino)) {
        where.file = env_.open(path_, err);
        where.label = path_;
        where.at_path = true;
    } else if (auto f = scan_dir([&](const std::string&, const FileInfo& info) { return info.same_file(e.dev, e.ino); },
                                 [](TailFile&) { return true; })) {
        where = std::move(*f);
    }
    const auto info = where.file ? where.file->info() : std::nullopt;
    if (!info || !info->same_file(e.dev, e.ino)) {
        warn_.log(Level::warning,
                  "file source {}: the file {} was read up to offset {} (inode {}) but is gone "
                  "(compressed or removed while stopped?); lines written to it after that are lost",
                  name_, was_current ? path_ : "rotated from " + path_, e.offset, e.ino);
        return std::nullopt;
    }
    where.info = *info;
    where.same = info->size >= e.offset;
    if (where.same) {
        const auto head = file_tail::read_exactly(*where.file, 0, static_cast<std::size_t>(std::min<std::uint64_t>(e.fp_len, 1 << 20)));
        where.same = head && head->size() == e.fp_len && fingerprint(*head) == e.fp;
    }
    if (!where.same && !where.at_path) {
        warn_.log(Level::warning, "file source {}: {} has the stored inode {} but other content; ignoring it",
                  name_, where.label, e.ino);
        return std::nullopt;
    }
    return where;
}

// Continues a located file: from the stored offset when its content is the same, else (the
// file at `path` was truncated or rewritten while stopped) from 0, after finishing logrotate's
// copy of it from the stored offset when there is one.
void FileTailSource::resume(const TailPosition& e, Located where) {
    if (where.at_path && current_) return;  // cannot happen: one inode per path
    if (where.at_path && !where.same && e.offset > 0) {
        auto copy = find_copy(where.info, e.offset + 1, e.fp_len,
                              [&](const std::string& head) { return fingerprint(head) == e.fp; });
        if (copy) {
            auto c = make_tail(std::move(*copy), e.offset, e.skip);
            util::log(Level::info, "file source {}: {} was copied and truncated while stopped: finishing the copy "
                      "{} from offset {} first", name_, path_, c->label, e.offset);
            begin_draining(std::move(c));
        }
    }
    const std::uint64_t offset = where.same ? e.offset : 0;
    const bool at_path = where.at_path, same = where.same;
    auto t = make_tail(std::move(where), offset, same && e.skip);
    if (!at_path) {
        util::log(Level::info, "file source {}: rotated while stopped: finishing {} from offset {} first", name_,
                  t->label, offset);
        begin_draining(std::move(t));
        return;
    }
    if (same)
        util::log(Level::info, "file source {}: following {} from offset {}", name_, path_, offset);
    else
        util::log(Level::info, "file source {}: {} was truncated or rewritten while stopped; reading it from offset 0",
                  name_, path_);
    current_ = std::move(t);
}

}  // namespace rp::sources
