#include "matching/matcher.hpp"

#include <hs.h>
#include <pcre2.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "matching/required_literal.hpp"
#include "matching/syslog_line.hpp"

namespace rp::matching {

struct Matcher::Compiled {
    PatternSpec spec;
    pcre2_code* tag = nullptr;
    pcre2_code* regex = nullptr;
    bool tag_jit = false, regex_jit = false;  // JIT-compiled: matched with pcre2_jit_match
    int tag_id = -1;  // patterns with the same tag regex share its result within a line (< 64)
    bool stateful = false;  // a pattern of a two-line server: its result depends on the MatchState
    int ip_group = -1, user_group = -1, pid_group = -1, time_group = -1, session_group = -1;
    std::uint64_t literal_mask = 0;  // bits of Matcher::literals_ this pattern needs (one of)
    ~Compiled() {
        pcre2_code_free(tag);
        pcre2_code_free(regex);
    }
};

struct Matcher::Prefilter {
    hs_database_t* db = nullptr;
    ~Prefilter() { hs_free_database(db); }
};

// What matching one line needs besides the state: PCRE2 match data, and the results of the tag
// regexes for the last tag seen (consecutive lines mostly come from the same program; the
// results depend on the tag text only). One per thread.
struct Matcher::Scratch {
    pcre2_match_data* md = nullptr;
    std::string tag;
    std::uint64_t tags_known = 0, tags_ok = 0;  // tag regexes (tag_id) tried on `tag`, and passed
    explicit Scratch(std::uint32_t groups) : md(pcre2_match_data_create(groups, nullptr)) {
        if (!md) throw std::bad_alloc();
    }
    ~Scratch() { pcre2_match_data_free(md); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
};

struct MatchState::Impl {
    std::optional<Matcher::Scratch> scratch_md;
    hs_scratch_t* scratch = nullptr;
    // Two-line servers: "server\0host\0pid" -> address and time of the session line, with
    // insertion order kept for the bound.
    struct Session {
        core::Address ip;
        core::Time time;
        std::list<std::string>::iterator order;
    };
    std::unordered_map<std::string, Session> sessions;
    std::list<std::string> order;
    std::string key;  // scratch
    std::uint64_t long_lines = 0;

    const std::string& make_key(std::string_view server, std::string_view host, std::string_view pid) {
        key.assign(server);
        key += '\0';
        key += host;
        key += '\0';
        key += pid;
        return key;
    }
    void remember(const std::string& k, const core::Address& ip, core::Time t) {
        if (auto it = sessions.find(k); it != sessions.end()) {
            order.erase(it->second.order);
            sessions.erase(it);
        }
        if (sessions.size() >= k_max_sessions) {
            sessions.erase(order.front());
            order.pop_front();
        }
        order.push_back(k);
        sessions.emplace(k, Session{ip, t, std::prev(order.end())});
    }
    std::optional<Session> take(const std::string& k) {
        auto it = sessions.find(k);
        if (it == sessions.end()) return std::nullopt;
        Session s = it->second;
        order.erase(it->second.order);
        sessions.erase(it);
        return s;
    }
    ~Impl() { hs_free_scratch(scratch); }
};

MatchState::MatchState(const Matcher& m) : impl_(std::make_unique<Impl>()) {
    impl_->scratch_md.emplace(m.max_groups_);
    if (m.prefilter_ && hs_alloc_scratch(m.prefilter_->db, &impl_->scratch) != HS_SUCCESS)
        throw std::bad_alloc();
}

MatchState::~MatchState() = default;
std::uint64_t MatchState::long_lines() const { return impl_->long_lines; }
Matcher::~Matcher() = default;

namespace {

core::Result<pcre2_code*> compile(const std::string& re, const std::string& what) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), 0, &err, &off, nullptr);
    if (!code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof buf);
        return core::make_error(what + ": bad regex at offset " + std::to_string(off) + ": " +
                                reinterpret_cast<const char*>(buf));
    }
    return code;
}

// JIT where available (else the interpreter); the JIT fast path skips pcre2_match's checks.
bool jit(pcre2_code* code) { return pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0; }

bool run(pcre2_code* code, bool jitted, std::string_view text, pcre2_match_data* md) {
    const auto* s = reinterpret_cast<PCRE2_SPTR>(text.data());
    return (jitted ? pcre2_jit_match(code, s, text.size(), 0, 0, md, nullptr)
                   : pcre2_match(code, s, text.size(), 0, 0, md, nullptr)) >= 0;
}

std::optional<std::string_view> group_if_set(pcre2_match_data* md, int n, std::string_view text) {
    if (n < 0) return std::nullopt;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * n] == PCRE2_UNSET) return std::nullopt;
    return text.substr(ov[2 * n], ov[2 * n + 1] - ov[2 * n]);
}

std::string_view group(pcre2_match_data* md, int n, std::string_view text) {
    return group_if_set(md, n, text).value_or(std::string_view());
}

// A login's time: from a `time` group that took part in the match (of no known form: unknown),
// else from the line's framing, else unknown.
LineTime login_time(pcre2_match_data* md, int time_group, std::string_view text,
                    const std::optional<SyslogLine>& parsed, core::Time now) {
    if (auto captured = group_if_set(md, time_group, text)) {
        LineTime lt = resolve_line_time(classify_time(*captured), now);
        lt.captured = true;
        if (lt.format == TimeFormat::none) lt.note = TimeNote::bad_time;
        return lt;
    }
    return parsed ? resolve_line_time(*parsed, now) : resolve_line_time(TimeToken{}, now);
}

}  // namespace

bool Literal::hit_at(std::string_view buffer, std::size_t pos) const {
    const auto rest = buffer.substr(pos);
    return std::none_of(except.begin(), except.end(), [&](const std::string& e) { return rest.starts_with(e); });
}

bool Literal::occurs_in(std::string_view line) const {
    for (auto pos = line.find(text); pos != std::string_view::npos; pos = line.find(text, pos + 1))
        if (hit_at(line, pos)) return true;
    return false;
}

core::Result<std::shared_ptr<const Matcher>> Matcher::build(const std::vector<std::string>& servers,
                                                            const std::vector<PatternSpec>& user_patterns) {
    std::shared_ptr<Matcher> m(new Matcher());
    std::vector<PatternSpec> specs;
    std::vector<std::string> unknown = servers;
    auto wanted = [&](const std::string& server) {
        if (servers.empty()) return true;
        auto it = std::find(unknown.begin(), unknown.end(), server);
        if (it != unknown.end()) unknown.erase(it);
        return std::find(servers.begin(), servers.end(), server) != servers.end();
    };
    for (const auto& p : builtin_patterns())
        if (wanted(p.server)) specs.push_back(p);
    for (const auto& p : user_patterns)
        if (wanted(p.server)) specs.push_back(p);
    if (!unknown.empty()) {
        std::string known;
        for (const auto& s : builtin_servers()) known += (known.empty() ? "" : ", ") + s;
        for (const auto& p : user_patterns) known += ", " + p.server;
        return core::make_error("unknown pattern set '" + unknown.front() + "' (known: " + known + ")");
    }
    for (auto& spec : specs) {
        auto c = std::make_unique<Compiled>();
        const std::string what = "pattern '" + spec.server + (spec.name.empty() || spec.name == spec.server ? "" : "/" + spec.name) + "'";
        auto re = compile(spec.regex, what);
        if (!re) return re.error();
        c->regex = *re;
        c->regex_jit = jit(c->regex);
        if (!spec.tag.empty()) {
            auto tag = compile(spec.tag, what + " tag");
            if (!tag) return tag.error();
            c->tag = *tag;
            c->tag_jit = jit(c->tag);
            for (const auto& q : m->patterns_)
                if (q->spec.tag == spec.tag) c->tag_id = q->tag_id;
            if (c->tag_id < 0 && m->tag_count_ < 64) c->tag_id = m->tag_count_++;
        }
        auto group_number = [&](const char* name) {
            const int n = pcre2_substring_number_from_name(c->regex, reinterpret_cast<PCRE2_SPTR>(name));
            return n < 0 ? -1 : n;
        };
        c->ip_group = group_number("ip");
        c->user_group = group_number("user");
        c->pid_group = group_number("pid");
        c->time_group = group_number("time");
        c->session_group = group_number("session");
        if (spec.role == PatternRole::session_end && c->session_group < 0)
            return core::make_error(what + ": a session end pattern needs a named group (?<session>...)");
        if (c->ip_group < 0 && spec.role != PatternRole::session_login && spec.role != PatternRole::session_end)
            return core::make_error(what + ": the regex has no named group (?<ip>...)");
        if ((spec.role == PatternRole::session || spec.role == PatternRole::session_login) && spec.whole_line &&
            c->pid_group < 0)
            return core::make_error(what + ": a two-line pattern needs a named group (?<pid>...)");
        // A user's pattern has no literal of its own: one that every match must contain, read
        // from its regex, lets it join the prefilter (else every line is tried on it).
        if (spec.literals.empty())
            if (auto lit = required_literal(spec.regex); !lit.empty()) spec.literals.emplace_back(std::move(lit));
        if (spec.literals.empty()) m->every_line_ = true;
        for (const auto& l : spec.literals) {
            auto it = std::find(m->literals_.begin(), m->literals_.end(), l);
            if (it == m->literals_.end()) it = m->literals_.insert(m->literals_.end(), l);
            const auto idx = static_cast<std::size_t>(it - m->literals_.begin());
            // Beyond 64 distinct literals the mask saturates: such patterns are always tried.
            c->literal_mask |= idx < 64 ? std::uint64_t{1} << idx : ~std::uint64_t{0};
        }
        c->spec = std::move(spec);
        m->patterns_.push_back(std::move(c));
    }
    // Two-line servers keep state between lines; their patterns (one-line logins included, which
    // complete a pending session) must see the lines in order, on the caller's MatchState.
    for (const auto& p : m->patterns_) {
        std::uint32_t n = 0;
        pcre2_pattern_info(p->regex, PCRE2_INFO_CAPTURECOUNT, &n);
        m->max_groups_ = std::max(m->max_groups_, n + 1);
        p->stateful = std::any_of(m->patterns_.begin(), m->patterns_.end(), [&](const auto& q) {
            return q->spec.server == p->spec.server &&
                   (q->spec.role == PatternRole::session || q->spec.role == PatternRole::session_login);
        });
    }
    if (!m->literals_.empty()) {
        std::vector<const char*> exprs;
        std::vector<std::size_t> lens;
        std::vector<unsigned> flags, ids;
        for (std::size_t i = 0; i < m->literals_.size(); ++i) {
            exprs.push_back(m->literals_[i].text.data());
            lens.push_back(m->literals_[i].text.size());
            flags.push_back(0);
            ids.push_back(static_cast<unsigned>(i));
        }
        m->prefilter_ = std::make_unique<Prefilter>();
        hs_compile_error_t* err = nullptr;
        if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                                 static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &m->prefilter_->db,
                                 &err) != HS_SUCCESS) {
            std::string msg = err && err->message ? err->message : "unknown error";
            hs_free_compile_error(err);
            return core::make_error("cannot build the literal prefilter: " + msg);
        }
    }
    return std::shared_ptr<const Matcher>(std::move(m));
}

std::vector<std::string> Matcher::servers() const {
    std::vector<std::string> out;
    for (const auto& p : patterns_)
        if (std::find(out.begin(), out.end(), p->spec.server) == out.end()) out.push_back(p->spec.server);
    return out;
}

std::optional<LoginMatch> Matcher::match_line(std::string_view line, core::Time now, MatchState& state) const {
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < literals_.size(); ++i)
        if (literals_[i].occurs_in(line)) mask |= i < 64 ? std::uint64_t{1} << i : ~std::uint64_t{0};
    return match_line_with(line, mask, now, state);
}

std::optional<LoginMatch> Matcher::match_line_with(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                                   MatchState& state) const {
    return match_impl(line, literal_mask, now, *state.impl().scratch_md, &state, nullptr);
}

std::optional<LoginMatch> Matcher::match_impl(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                              Scratch& scratch, MatchState* state, bool* needs_state) const {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    auto* md = scratch.md;
    std::optional<SyslogLine> parsed;
    bool parsed_done = false;
    for (const auto& p : patterns_) {
        if (!p->spec.literals.empty() && (p->literal_mask & literal_mask) == 0) continue;
        if (!parsed_done) {
            parsed = parse_syslog_line(line);
            parsed_done = true;
        }
        std::string_view text = line;
        if (!p->spec.whole_line) {
            if (!parsed) continue;
            if (p->tag) {
                if (parsed->tag != scratch.tag) {
                    scratch.tag.assign(parsed->tag);
                    scratch.tags_known = scratch.tags_ok = 0;
                }
                auto& tags_known = scratch.tags_known;
                auto& tags_ok = scratch.tags_ok;
                const std::uint64_t bit = p->tag_id >= 0 ? std::uint64_t{1} << p->tag_id : 0;
                if (!(tags_known & bit)) {
                    if (run(p->tag, p->tag_jit, parsed->tag, md)) tags_ok |= bit;
                    else if (!bit) continue;
                    tags_known |= bit;
                }
                if (bit && !(tags_ok & bit)) continue;
            }
            text = parsed->message;
        }
        if (!run(p->regex, p->regex_jit, text, md)) continue;
        if ((parsed ? parsed->message.size() : line.size()) >= k_max_login_message_bytes) {
            if (!state) *needs_state = true;  // counted by the caller, with the state
            else ++state->impl().long_lines;
            return std::nullopt;
        }
        const LineTime lt = login_time(md, p->time_group, text, parsed, now);
        const auto time = lt.time;
        auto login = [&](const core::Address& ip) {
            return LoginMatch{ip,   group(md, p->user_group, text), p->spec.server, p->spec.name, line, time, lt.origin,
                              lt,   core::LoginKind::login,         group(md, p->session_group, text)};
        };
        if (p->spec.role == PatternRole::session_end) {  // needs no state and has no address
            auto end = login(core::Address());
            end.kind = core::LoginKind::session_end;
            if (end.session.empty()) continue;
            return end;
        }
        std::string_view pid = group(md, p->pid_group, text);
        if (pid.empty() && parsed) pid = parsed->pid;
        const std::string_view host = parsed ? parsed->host : std::string_view();
        if (!state) {
            if (p->stateful) {  // the result depends on the state: the caller must decide with it
                *needs_state = true;
                return std::nullopt;
            }
            // A one-line server: no session of its own to complete.
            auto ip = core::Address::parse(group(md, p->ip_group, text));
            if (!ip) continue;
            return login(*ip);
        }
        auto& impl = state->impl();
        if (p->spec.role == PatternRole::session_login) {
            if (pid.empty()) continue;
            auto s = impl.take(impl.make_key(p->spec.server, host, pid));
            if (!s || time - s->time > k_session_timeout) continue;
            return login(s->ip);
        }
        auto ip = core::Address::parse(group(md, p->ip_group, text));
        if (!ip) continue;
        if (p->spec.role == PatternRole::session) {
            if (!pid.empty()) impl.remember(impl.make_key(p->spec.server, host, pid), *ip, time);
            return std::nullopt;  // a session line is never a login by itself
        }
        // A one-line login completes any pending session of the same process (popa3d's patched
        // one-line form follows its "Session from" line): one login, one event.
        if (!pid.empty() && !impl.sessions.empty()) impl.take(impl.make_key(p->spec.server, host, pid));
        return login(*ip);
    }
    return std::nullopt;
}

template <class F>
void Matcher::prefilter(std::string_view all, void* scratch, F&& on_line) const {
    if (!prefilter_) return;  // no patterns enabled
    // Hyperscan takes 32-bit lengths: larger buffers are scanned in pieces cut at line ends.
    constexpr std::size_t k_max_piece = std::size_t{1} << 31;
    for (std::size_t base = 0; base < all.size();) {
        std::size_t size = all.size() - base;
        if (size > k_max_piece) {
            const auto nl = all.rfind('\n', base + k_max_piece - 1);
            size = nl == std::string_view::npos || nl < base ? k_max_piece : nl + 1 - base;
        }
        prefilter_piece(all.substr(base, size), base, scratch, on_line);
        base += size;
    }
}

template <class F>
void Matcher::prefilter_piece(std::string_view text, std::size_t base, void* scratch, F& on_line) const {
    // One Hyperscan pass finds every literal of every pattern in the buffer; only the lines
    // holding one are reported, in order, each once, with the set of literals found in it.
    // Matches arrive in order of their end offset, so the hits of one line arrive together: they
    // are collected into a mask and the line is reported when the first hit of a later line (or
    // the end of the buffer) shows that the line is complete.
    struct Ctx {
        const Matcher* self;
        std::string_view text;
        F* on_line;
        std::size_t line_start = 0, line_end = 0;  // current line [start, end); end == 0: none
        std::uint64_t mask = 0;
        std::size_t base;
        void flush() {
            if (line_end == 0) return;
            (*on_line)(base + line_start, base + line_end, mask);
            line_end = 0;
            mask = 0;
        }
    } ctx{this, text, &on_line, 0, 0, 0, base};
    auto on_hit = [](unsigned id, unsigned long long, unsigned long long to, unsigned, void* p) -> int {
        auto& c = *static_cast<Ctx*>(p);
        const auto& lits = c.self->literals_;
        const std::size_t start = static_cast<std::size_t>(to) - lits[id].text.size();
        if (!lits[id].except.empty() && !lits[id].hit_at(c.text, start)) return 0;
        const std::uint64_t bit = id < 64 ? std::uint64_t{1} << id : ~std::uint64_t{0};
        if (c.line_end != 0 && start < c.line_end) {  // another literal of the current line
            c.mask |= bit;
            return 0;
        }
        c.flush();
        const void* nl = ::memrchr(c.text.data(), '\n', start);
        c.line_start = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - c.text.data()) + 1 : 0;
        const void* e = std::memchr(c.text.data() + start, '\n', c.text.size() - start);
        c.line_end = e ? static_cast<std::size_t>(static_cast<const char*>(e) - c.text.data()) : c.text.size();
        if (c.line_end == 0) c.line_end = 1;  // an empty first line cannot hold a literal; keep "none" distinct
        c.mask = bit;
        return 0;
    };
    hs_scan(prefilter_->db, text.data(), static_cast<unsigned>(text.size()), 0, static_cast<hs_scratch_t*>(scratch),
            on_hit, &ctx);
    ctx.flush();
}

void Matcher::scan(std::string_view text, core::Time now, MatchState& state,
                   const std::function<void(const LoginMatch&)>& on_match) const {
    if (every_line_) {
        for (std::size_t pos = 0; pos < text.size();) {
            const auto end = text.find('\n', pos);
            auto line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
            if (auto m = match_line(line, now, state)) on_match(*m);
            pos = end == std::string_view::npos ? text.size() : end + 1;
        }
        return;
    }
    prefilter(text, state.impl().scratch, [&](std::size_t b, std::size_t e, std::uint64_t mask) {
        if (auto m = match_impl(text.substr(b, e - b), mask, now, *state.impl().scratch_md, &state, nullptr))
            on_match(*m);
    });
}

void Matcher::for_each_candidate(std::string_view text, MatchState& state,
                                 const std::function<void(std::size_t, std::size_t)>& on_line) const {
    if (every_line_) {
        for (std::size_t pos = 0; pos < text.size();) {
            const auto end = std::min(text.find('\n', pos), text.size());
            on_line(pos, end);
            pos = end + 1;
        }
        return;
    }
    prefilter(text, state.impl().scratch, [&](std::size_t b, std::size_t e, std::uint64_t) { on_line(b, e); });
}

// A line the prefilter reported, with its result if a worker could resolve it. The line is a
// copy [begin, end) in its chunk's arena, so the scanned text can be released; the match's
// views are kept as offsets into it until the caller emits it.
struct Matcher::Candidate {
    std::size_t begin, end;
    std::uint64_t mask;
    bool resolved;
    std::optional<LoginMatch> match;
    std::size_t user_begin = 0;     // offset of match->user in the line
    std::size_t session_begin = 0;  // offset of match->session in the line
};

void Matcher::scan(std::string_view text, core::Time now, MatchState& state,
                   const std::function<void(const LoginMatch&)>& on_match, const ScanOptions& opts) const {
    if (opts.threads <= 1 || every_line_ || !prefilter_ || text.size() <= std::max<std::size_t>(opts.chunk_bytes, 1))
        return scan(text, now, state, on_match);
    scan_parallel(text, now, state, on_match, opts);
}

void Matcher::scan_parallel(std::string_view text, core::Time now, MatchState& state,
                            const std::function<void(const LoginMatch&)>& on_match, const ScanOptions& opts) const {
    // Chunks end at line ends, so no line is split.
    std::vector<std::size_t> cuts{0};
    const std::size_t chunk = std::max<std::size_t>(opts.chunk_bytes, 1);
    while (cuts.back() < text.size()) {
        std::size_t pos = cuts.back() + chunk;
        if (pos >= text.size()) {
            cuts.push_back(text.size());
            break;
        }
        const void* nl = std::memchr(text.data() + pos - 1, '\n', text.size() - pos + 1);
        cuts.push_back(nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1 : text.size());
    }
    const std::size_t n = cuts.size() - 1;
    struct Slot {
        std::vector<Candidate> lines;
        std::string arena;  // the candidates' lines, copied
        bool done = false;
    };
    std::deque<Slot> slots(n);
    std::mutex mu;
    std::condition_variable cv;
    std::size_t next = 0, consumed = 0;  // next chunk to claim; chunks the caller has emitted
    const std::size_t window = 4 * std::size_t{opts.threads};  // bounds the memory held by results
    // Prefilter chunk i and resolve the lines no two-line server could match.
    auto work = [&](std::size_t i, hs_scratch_t* scratch, Scratch& md) {
        const std::string_view part = text.substr(cuts[i], cuts[i + 1] - cuts[i]);
        std::vector<Candidate> lines;
        std::string arena;
        prefilter(part, scratch, [&](std::size_t b, std::size_t e, std::uint64_t mask) {
            const std::string_view line = part.substr(b, e - b);
            bool needs_state = false;
            auto match = match_impl(line, mask, now, md, nullptr, &needs_state);
            if (!needs_state && !match) return;  // nothing to emit, nothing to keep
            Candidate c{arena.size(), arena.size() + line.size(), mask, !needs_state, std::move(match)};
            if (c.match && !c.match->user.empty())
                c.user_begin = static_cast<std::size_t>(c.match->user.data() - line.data());
            if (c.match && !c.match->session.empty())
                c.session_begin = static_cast<std::size_t>(c.match->session.data() - line.data());
            arena.append(line);
            lines.push_back(std::move(c));
        });
        if (opts.release) opts.release(part.data(), part.size());
        std::lock_guard lock(mu);
        slots[i].lines = std::move(lines);
        slots[i].arena = std::move(arena);
        slots[i].done = true;
        cv.notify_all();
    };
    // Claims the next chunk within the window, or returns n.
    auto claim = [&](std::unique_lock<std::mutex>& lock, bool wait) -> std::size_t {
        while (true) {
            if (next < n && next < consumed + window) return next++;
            if (next >= n || !wait) return n;
            cv.wait(lock);
        }
    };
    std::vector<std::thread> workers;
    struct Join {  // also when on_match throws: stop handing out chunks, wait for the workers
        std::vector<std::thread>& workers;
        std::mutex& mu;
        std::condition_variable& cv;
        std::size_t& next;
        std::size_t n;
        ~Join() {
            {
                std::lock_guard lock(mu);
                next = n;
            }
            cv.notify_all();
            for (auto& w : workers) w.join();
        }
    } join{workers, mu, cv, next, n};
    auto worker = [&] {
        hs_scratch_t* scratch = nullptr;
        std::optional<Scratch> md;
        try {
            md.emplace(max_groups_);
        } catch (const std::bad_alloc&) {
            return;  // the caller does the work
        }
        const bool ok = hs_alloc_scratch(prefilter_->db, &scratch) == HS_SUCCESS;
        while (ok) {
            std::size_t i;
            {
                std::unique_lock lock(mu);
                i = claim(lock, true);
            }
            if (i == n) break;
            work(i, scratch, *md);
        }
        hs_free_scratch(scratch);
    };
    for (unsigned t = 1; t < opts.threads && t < n; ++t) {
        try {
            workers.emplace_back(worker);
        } catch (const std::system_error&) {
            break;  // no more threads: the caller and the workers started so far do the work
        }
    }
    // The caller emits the chunks in order, working on unclaimed chunks while it waits.
    auto& impl = state.impl();
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<Candidate> lines;
        std::string arena;
        {
            std::unique_lock lock(mu);
            while (!slots[i].done) {
                const std::size_t j = claim(lock, false);
                if (j == n) {
                    cv.wait(lock);
                    continue;
                }
                lock.unlock();
                work(j, impl.scratch, *impl.scratch_md);
                lock.lock();
            }
            lines = std::move(slots[i].lines);
            arena = std::move(slots[i].arena);
            consumed = i + 1;
            cv.notify_all();
        }
        for (auto& c : lines) {
            const std::string_view line = std::string_view(arena).substr(c.begin, c.end - c.begin);
            if (!c.resolved) {
                c.match = match_impl(line, c.mask, now, *impl.scratch_md, &state, nullptr);
            } else if (c.match) {  // re-point the views from the scanned text to the copy
                c.match->user = line.substr(c.user_begin, c.match->user.size());
                c.match->session = line.substr(c.session_begin, c.match->session.size());
                c.match->line = line.substr(0, c.match->line.size());
            }
            if (c.match) on_match(*c.match);
        }
    }
}

}  // namespace rp::matching
