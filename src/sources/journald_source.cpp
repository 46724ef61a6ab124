#include "sources/journald_source.hpp"

#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "util/dynlib.hpp"

namespace rp::sources {
namespace {

using Steady = util::EventLoop::Steady;
using util::Level;

// libsystemd, opened by the first journald source to start (util/dynlib.hpp): other commands and
// daemons start without it and its dependencies.
#define RP_SD_JOURNAL_FUNCTIONS(X) \
    X(sd_journal_close) \
    X(sd_journal_get_cursor) \
    X(sd_journal_get_data) \
    X(sd_journal_get_events) \
    X(sd_journal_get_fd) \
    X(sd_journal_get_realtime_usec) \
    X(sd_journal_get_timeout) \
    X(sd_journal_next) \
    X(sd_journal_open) \
    X(sd_journal_open_directory) \
    X(sd_journal_open_files) \
    X(sd_journal_previous) \
    X(sd_journal_process) \
    X(sd_journal_seek_cursor) \
    X(sd_journal_seek_head) \
    X(sd_journal_set_data_threshold) \
    X(sd_journal_test_cursor)
struct SdJournalApi {
    RP_SD_JOURNAL_FUNCTIONS(RP_DYNLIB_DECLARE)
} loaded_sd_journal;
const SdJournalApi& sj = loaded_sd_journal;  // filled by load_sd_journal(), which start() calls first

core::Status load_sd_journal() {
    auto fill = [](void* lib, const std::string& soname, SdJournalApi& out) -> core::Status {
        RP_SD_JOURNAL_FUNCTIONS(RP_DYNLIB_LOAD)
        return core::ok();
    };
    return util::load_api_once<SdJournalApi>("libsystemd.so.0", "libsystemd0", loaded_sd_journal, fill);
}

std::string errno_text(int e) { return std::strerror(e < 0 ? -e : e); }

std::optional<std::int64_t> parse_int(std::string_view s) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Client-supplied text becomes part of one line: no line breaks, no NULs.
void append_clean(std::string& out, std::string_view s) {
    const std::size_t at = out.size();
    out.append(s);
    for (std::size_t i = at; i < out.size(); ++i)
        if (out[i] == '\n' || out[i] == '\r' || out[i] == '\0') out[i] = ' ';
}

void add(SourceCounters& to, const SourceCounters& c) {
    to.lines += c.lines;
    to.matches += c.matches;
    to.malformed += c.malformed;
    to.untrusted += c.untrusted;
    to.dropped += c.dropped;
}

}  // namespace

JournaldSource::JournaldSource(std::string name, JournaldOptions opts, LineParser parser, LoginSink& sink,
                               const core::Clock& clock)
    : LineSource(std::move(name), std::move(parser), sink, clock), opts_(std::move(opts)) {
    opts_.max_entries_per_wakeup = std::max<std::size_t>(opts_.max_entries_per_wakeup, 1);
}

JournaldSource::~JournaldSource() {
    if (loop_ != nullptr) stop(*loop_);
    if (j_ != nullptr) sj.sd_journal_close(j_);
}

SourceCounters JournaldSource::counters() const {
    SourceCounters c = committed_counters_;
    add(c, pending_counters_);
    return c;
}

core::Status load_journal_library() { return load_sd_journal(); }

// ---- start / stop ----------------------------------------------------------------------------

core::Status JournaldSource::start(util::EventLoop& loop) {
    const std::string what = "journald source " + name_ + ": ";
    if (loop_ != nullptr) return core::make_error(what + "already started");
    if (auto st = load_journal_library(); !st) return core::make_error(what + st.error().message);
    int r = 0;
    if (opts_.path.empty()) {
        r = sj.sd_journal_open(&j_, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
    } else {
        struct stat st {};
        if (::stat(opts_.path.c_str(), &st) != 0)
            return core::make_error(what + "cannot open " + opts_.path + ": " + errno_text(errno));
        if (S_ISDIR(st.st_mode)) {
            r = sj.sd_journal_open_directory(&j_, opts_.path.c_str(), 0);
        } else {
            const char* files[] = {opts_.path.c_str(), nullptr};
            r = sj.sd_journal_open_files(&j_, files, 0);
        }
    }
    if (r < 0) {
        j_ = nullptr;
        return core::make_error(what + "cannot open the journal" + (opts_.path.empty() ? "" : " " + opts_.path) +
                                ": " + errno_text(r));
    }
    sj.sd_journal_set_data_threshold(j_, 0);  // whole fields: we bound line length ourselves
    committed_cursor_ = sink_.find_checkpoint(name_);
    if (!seek_committed()) {
        sj.sd_journal_close(j_);
        j_ = nullptr;
        return core::make_error(what + "cannot position in the journal");
    }
    loop_ = &loop;
    failing_ = false;
    moved_ = false;
    last_delivery_ = Steady::now();
    fd_ = sj.sd_journal_get_fd(j_);
    if (fd_ >= 0) {
        const int ev = sj.sd_journal_get_events(j_);
        loop.add(fd_, ev > 0 ? static_cast<std::uint32_t>(ev) : static_cast<std::uint32_t>(EPOLLIN), [this](std::uint32_t) { on_fd(); });
    } else {
        util::log(Level::info, "journald source {}: no journal fd ({}); polling every {} ms", name_, errno_text(fd_),
                  opts_.poll_interval.count());
        fd_ = -1;
    }
    continue_timer_ = loop.call_after(std::chrono::milliseconds(0), [this] { on_continue(); });
    arm_poll();
    return core::ok();
}

void JournaldSource::stop(util::EventLoop& loop) {
    if (loop_ == nullptr) return;
    if (!failing_) flush(true);
    for (auto* id : {&continue_timer_, &timeout_timer_, &poll_timer_, &retry_timer_}) {
        if (*id != 0) loop.cancel(*id);
        *id = 0;
    }
    if (fd_ >= 0) loop.remove(fd_);
    fd_ = -1;
    loop_ = nullptr;
    sj.sd_journal_close(j_);
    j_ = nullptr;
    events_.clear();
    pending_counters_ = {};
}

// Positions the journal so that sd_journal_next() returns the first entry not yet stored.
bool JournaldSource::seek_committed() {
    events_.clear();
    pending_counters_ = {};
    moved_ = false;
    if (!committed_cursor_) return sj.sd_journal_seek_head(j_) >= 0;
    const char* cursor = committed_cursor_->c_str();
    if (int r = sj.sd_journal_seek_cursor(j_, cursor); r < 0) {
        util::log(Level::warning, "journald source {}: stored cursor unusable ({}); starting at the head", name_,
                  errno_text(r));
        return sj.sd_journal_seek_head(j_) >= 0;
    }
    const int r = sj.sd_journal_next(j_);
    if (r <= 0) return true;  // nothing at or after the cursor yet
    if (sj.sd_journal_test_cursor(j_, cursor) > 0) return true;  // on the stored entry: skip it
    // The stored entry is gone (vacuumed, rotated away): this is the first unread one; step back
    // so that the next sd_journal_next() returns it.
    if (sj.sd_journal_previous(j_) > 0) return true;
    // It is the very first entry of the journal.
    return sj.sd_journal_seek_head(j_) >= 0;
}

// ---- reading ---------------------------------------------------------------------------------

void JournaldSource::on_fd() {
    if (j_ == nullptr) return;
    const int r = sj.sd_journal_process(j_);
    if (r < 0) warn_.log(Level::error, "journald source {}: sd_journal_process: {}", name_, errno_text(r));
    if (continue_timer_ == 0) service();
}

void JournaldSource::on_continue() {
    continue_timer_ = 0;
    service();
}

void JournaldSource::service() {
    if (j_ == nullptr || failing_) return;
    bool more = false;
    if (!read_entries(more)) return;
    if (more && continue_timer_ == 0)
        continue_timer_ = loop_->call_after(std::chrono::milliseconds(0), [this] { on_continue(); });
    rearm_timeout();
}

bool JournaldSource::read_entries(bool& more) {
    std::size_t budget = opts_.max_entries_per_wakeup;
    std::size_t line_bytes = 0;
    while (budget > 0) {
        const int r = sj.sd_journal_next(j_);
        if (r < 0) {
            warn_.log(Level::error, "journald source {}: reading the journal: {}", name_, errno_text(r));
            break;
        }
        if (r == 0) break;
        moved_ = true;
        handle_entry(line_bytes);
        --budget;
        // Deliver in bounded batches so one delivery never holds an unbounded event list.
        if (events_.size() >= 4096 && !flush(true)) return false;
    }
    more = budget == 0;
    return flush(false);
}

std::optional<std::string> JournaldSource::field(const char* name) {
    const void* data = nullptr;
    std::size_t len = 0;
    if (sj.sd_journal_get_data(j_, name, &data, &len) < 0) return std::nullopt;
    const std::size_t prefix = std::strlen(name) + 1;  // "NAME="
    if (len < prefix) return std::nullopt;
    return std::string(static_cast<const char*>(data) + prefix, len - prefix);
}

bool JournaldSource::trusted(std::string& why) {
    auto check = [&](const char* fname, const std::vector<std::string>& allowed) {
        if (allowed.empty()) return true;
        auto v = field(fname);
        if (v && std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return true;
        why += fmt::format(" {}={}", fname, v ? *v : std::string("(none)"));
        return false;
    };
    bool ok = check("_SYSTEMD_UNIT", opts_.units);
    ok = check("_COMM", opts_.comms) && ok;
    ok = check("_EXE", opts_.exes) && ok;
    if (!opts_.uids.empty()) {
        auto v = field("_UID");
        auto uid = v ? parse_int(*v) : std::nullopt;
        if (!uid || std::find(opts_.uids.begin(), opts_.uids.end(), *uid) == opts_.uids.end()) {
            why += fmt::format(" _UID={}", v ? *v : std::string("(none)"));
            ok = false;
        }
    }
    return ok;
}

void JournaldSource::handle_entry(std::size_t& line_bytes) {
    ++pending_counters_.lines;
    auto message = field("MESSAGE");
    if (!message) return;  // e.g. a binary-only entry: nothing to parse
    auto ident = field("SYSLOG_IDENTIFIER");
    if (!ident) ident = field("_COMM");
    auto pid = field("SYSLOG_PID");
    line_.clear();
    if (ident && !ident->empty()) {
        append_clean(line_, *ident);
        if (pid && !pid->empty()) {
            line_ += '[';
            append_clean(line_, *pid);
            line_ += ']';
        }
        line_ += ": ";
    }
    append_clean(line_, *message);
    if (line_.size() > opts_.max_line_bytes) {
        ++pending_counters_.malformed;
        warn_.log(Level::warning, "journald source {}: entry longer than {} bytes skipped", name_, opts_.max_line_bytes);
        return;
    }
    line_ += '\n';
    line_bytes += line_.size();

    const core::Time now = clock_.now();
    scratch_.clear();
    std::string why;
    if (!trusted(why)) {
        // Parsed apart from trusted entries (see JournaldOptions::untrusted_parser).
        (opts_.untrusted_parser ? opts_.untrusted_parser : parser_)(line_, now, scratch_);
        if (scratch_.empty()) return;
        pending_counters_.untrusted += scratch_.size();
        untrusted_log_.log(Level::warning,
                           "journald source {}: ignoring a login for {} (user {}) from an untrusted sender:{}", name_,
                           scratch_.front().ip.to_string(), scratch_.front().user, why);
        return;
    }
    parser_(line_, now, scratch_);
    if (scratch_.empty()) return;
    core::Time when = now;
    std::uint64_t usec = 0;
    if (auto src = field("_SOURCE_REALTIME_TIMESTAMP"); src && parse_int(*src) && *parse_int(*src) > 0)
        when = core::from_unix_micros(*parse_int(*src));
    else if (sj.sd_journal_get_realtime_usec(j_, &usec) >= 0)
        when = core::from_unix_micros(static_cast<std::int64_t>(usec));
    when = std::min(when, now);
    for (auto& e : scratch_) {
        e.time = when;
        e.time_origin = core::TimeOrigin::line;  // the journal's timestamp of the entry
        if (e.source.empty()) e.source = name_;
        events_.push_back(std::move(e));
    }
    pending_counters_.matches += scratch_.size();
}

// ---- delivery --------------------------------------------------------------------------------

// Delivers the batch with the cursor of the current entry: always when there are events or
// `force`, else when the position moved and checkpoint_interval has passed. False: deliver()
// failed; the journal is back at the stored position and a retry is scheduled.
bool JournaldSource::flush(bool force) {
    if (!moved_) return true;
    if (events_.empty() && !force && Steady::now() - last_delivery_ < opts_.checkpoint_interval) return true;
    char* c = nullptr;
    if (int r = sj.sd_journal_get_cursor(j_, &c); r < 0) {
        warn_.log(Level::error, "journald source {}: no cursor for the current entry: {}", name_, errno_text(r));
        return true;
    }
    std::string cursor(c);
    std::free(c);
    if (auto st = sink_.deliver(events_, core::Checkpoint{name_, cursor}); !st) {
        warn_.log(Level::error, "journald source {}: storing {} login(s) failed: {}; retrying", name_, events_.size(),
                  st.error().message);
        seek_committed();
        if (loop_ != nullptr) {
            failing_ = true;
            retry_timer_ = loop_->call_after(opts_.retry_delay, [this] { on_retry(); });
        }
        return false;
    }
    committed_cursor_ = std::move(cursor);
    add(committed_counters_, pending_counters_);
    pending_counters_ = {};
    events_.clear();
    moved_ = false;
    last_delivery_ = Steady::now();
    return true;
}

void JournaldSource::on_retry() {
    retry_timer_ = 0;
    failing_ = false;
    service();
}

void JournaldSource::rearm_timeout() {
    if (loop_ == nullptr) return;
    if (timeout_timer_ != 0) loop_->cancel(timeout_timer_);
    timeout_timer_ = 0;
    std::uint64_t t = 0;
    if (sj.sd_journal_get_timeout(j_, &t) < 0 || t == UINT64_MAX) return;
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto now_us = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
    const auto delay_ms = t > now_us ? (t - now_us + 999) / 1000 : 0;
    timeout_timer_ = loop_->call_after(std::chrono::milliseconds(static_cast<std::int64_t>(delay_ms)), [this] {
        timeout_timer_ = 0;
        on_fd();
    });
}

void JournaldSource::arm_poll() {
    if (loop_ == nullptr || opts_.poll_interval.count() <= 0) return;
    poll_timer_ = loop_->call_after(opts_.poll_interval, [this] {
        poll_timer_ = 0;
        on_fd();
        if (!failing_) flush(false);
        arm_poll();
    });
}

core::Result<std::unique_ptr<Source>> open_journald_source(const config::SourceConfig& cfg, LineParser parser,
                                                           LoginSink& sink, const core::Clock& clock,
                                                           LineParser untrusted_parser) {
    JournaldOptions opts;
    opts.untrusted_parser = std::move(untrusted_parser);
    opts.path = cfg.path;
    opts.units = cfg.units;
    opts.comms = cfg.comms;
    opts.exes = cfg.exes;
    opts.uids = cfg.uids;
    const std::string name = cfg.name.empty() ? "journald:" + cfg.path : cfg.name;
    return std::unique_ptr<Source>(std::make_unique<JournaldSource>(name, std::move(opts), std::move(parser), sink, clock));
}

}  // namespace rp::sources
