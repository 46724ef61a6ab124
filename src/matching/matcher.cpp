#include "matching/matcher.hpp"

#include <algorithm>
#include <new>

#include "matching/matcher_internal.hpp"

namespace rp::matching {

const std::string& MatchState::Impl::make_key(std::string_view server, std::string_view host, std::string_view pid) {
    key.assign(server);
    key += '\0';
    key += host;
    key += '\0';
    key += pid;
    return key;
}

void MatchState::Impl::remember(const std::string& k, const core::Address& ip, core::Time t) {
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

std::optional<MatchState::Impl::Session> MatchState::Impl::take(const std::string& k) {
    auto it = sessions.find(k);
    if (it == sessions.end()) return std::nullopt;
    Session s = it->second;
    order.erase(it->second.order);
    sessions.erase(it);
    return s;
}

MatchState::MatchState(const Matcher& m)
    : impl_(std::make_unique<Impl>(m.max_groups_, m.prefilter_ ? m.prefilter_->db : nullptr)) {}
MatchState::~MatchState() = default;
std::uint64_t MatchState::long_lines() const { return impl_->long_lines; }

ScanScratch::ScanScratch(const Matcher& m)
    : impl_(std::make_unique<Impl>(m.max_groups_, m.prefilter_ ? m.prefilter_->db : nullptr)) {}
ScanScratch::~ScanScratch() = default;

Matcher::~Matcher() = default;

namespace {

// The match context of every run: only the match limit (k_regex_match_limit) differs from the
// defaults. Shared by all threads: PCRE2 only reads it.
pcre2_match_context* match_context() {
    static pcre2_match_context* const context = [] {
        pcre2_match_context* c = pcre2_match_context_create(nullptr);
        if (!c) throw std::bad_alloc();
        pcre2_set_match_limit(c, k_regex_match_limit);
        return c;
    }();
    return context;
}

bool run(pcre2_code* code, bool jitted, std::string_view text, pcre2_match_data* md) {
    const auto* s = reinterpret_cast<PCRE2_SPTR>(text.data());
    return (jitted ? pcre2_jit_match(code, s, text.size(), 0, 0, md, match_context())
                   : pcre2_match(code, s, text.size(), 0, 0, md, match_context())) >= 0;
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

// Whether the program tag passes p's tag regex. Equal tag regexes share one result per tag
// text (tag_id), kept in the scratch while consecutive lines have the same tag.
bool tag_passes(const Matcher::Compiled& p, std::string_view tag, Matcher::Scratch& scratch) {
    if (tag != scratch.tag) {
        scratch.tag.assign(tag);
        scratch.tags_known = scratch.tags_ok = 0;
    }
    if (p.tag_id < 0) return run(p.tag, p.tag_jit, tag, scratch.md);
    const std::uint64_t bit = std::uint64_t{1} << p.tag_id;
    if (!(scratch.tags_known & bit)) {
        if (run(p.tag, p.tag_jit, tag, scratch.md)) scratch.tags_ok |= bit;
        scratch.tags_known |= bit;
    }
    return (scratch.tags_ok & bit) != 0;
}

// A line that pattern `p` matched: the whole line, the text the regex ran on, the line's syslog
// framing, and the match data.
struct Matched {
    std::string_view line;
    std::string_view text;
    const std::optional<SyslogLine>& parsed;
    pcre2_match_data* md;
};

// What a match of `p` means, with the pid cache of `state` for two-line servers: a login, or
// nothing. `try_next` is set when the next pattern is to be tried instead (no address, no pending
// session). Without a state, a pattern whose result depends on it sets *needs_state.
std::optional<LoginMatch> decide(const Matcher::Compiled& p, const Matched& m, core::Time now, MatchState* state,
                                 bool* needs_state, bool& try_next) {
    auto* md = m.md;
    const auto text = m.text;
    const auto& parsed = m.parsed;
    const LineTime lt = login_time(md, p.time_group, text, parsed, now);
    const auto time = lt.time;
    auto login = [&](const core::Address& ip) {
        return LoginMatch{ip,   group(md, p.user_group, text), p.spec.server, p.spec.name, m.line, time, lt.origin,
                          lt,   core::LoginKind::login,        group(md, p.session_group, text)};
    };
    auto next = [&]() -> std::optional<LoginMatch> {
        try_next = true;
        return std::nullopt;
    };
    if (p.spec.role == PatternRole::session_end) {  // needs no state and has no address
        auto end = login(core::Address());
        end.kind = core::LoginKind::session_end;
        if (end.session.empty()) return next();
        return end;
    }
    std::string_view pid = group(md, p.pid_group, text);
    if (pid.empty() && parsed) pid = parsed->pid;
    const std::string_view host = parsed ? parsed->host : std::string_view();
    if (!state) {
        if (p.stateful) {  // the result depends on the state: the caller must decide with it
            *needs_state = true;
            return std::nullopt;
        }
        // A one-line server: no session of its own to complete.
        auto ip = core::Address::parse(group(md, p.ip_group, text));
        if (!ip) return next();
        return login(*ip);
    }
    auto& impl = state->impl();
    if (p.spec.role == PatternRole::session_login) {
        if (pid.empty()) return next();
        auto s = impl.take(impl.make_key(p.spec.server, host, pid));
        if (!s || time - s->time > k_session_timeout) return next();
        return login(s->ip);
    }
    auto ip = core::Address::parse(group(md, p.ip_group, text));
    if (!ip) return next();
    if (p.spec.role == PatternRole::session) {
        if (!pid.empty()) impl.remember(impl.make_key(p.spec.server, host, pid), *ip, time);
        return std::nullopt;  // a session line is never a login by itself
    }
    // A one-line login completes any pending session of the same process (popa3d's patched
    // one-line form follows its "Session from" line): one login, one event.
    if (!pid.empty() && !impl.sessions.empty()) impl.take(impl.make_key(p.spec.server, host, pid));
    return login(*ip);
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

std::vector<std::string> Matcher::servers() const {
    std::vector<std::string> out;
    for (const auto& p : patterns_)
        if (std::find(out.begin(), out.end(), p->spec.server) == out.end()) out.push_back(p->spec.server);
    return out;
}

std::uint64_t Matcher::literal_mask_of(std::string_view line) const {
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < literals_.size(); ++i)
        if (literals_[i].occurs_in(line)) mask |= i < 64 ? std::uint64_t{1} << i : ~std::uint64_t{0};
    return mask;
}

std::optional<LoginMatch> Matcher::match_line(std::string_view line, core::Time now, MatchState& state) const {
    return match_line_with(line, literal_mask_of(line), now, state);
}

std::optional<LoginMatch> Matcher::match_line_with(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                                   MatchState& state) const {
    return match_impl(line, literal_mask, now, state.impl().scratch_md, &state, nullptr);
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
            if (p->tag && !tag_passes(*p, parsed->tag, scratch)) continue;
            text = parsed->message;
        }
        if (!run(p->regex, p->regex_jit, text, md)) continue;
        if ((parsed ? parsed->message.size() : line.size()) >= k_max_login_message_bytes) {
            if (!state) *needs_state = true;  // counted by the caller, with the state
            else ++state->impl().long_lines;
            return std::nullopt;
        }
        bool try_next = false;
        auto found = decide(*p, Matched{line, text, parsed, md}, now, state, needs_state, try_next);
        if (!try_next) return found;
    }
    return std::nullopt;
}

}  // namespace rp::matching
