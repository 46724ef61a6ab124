#include "matching/matcher.hpp"

#include <hs.h>
#include <pcre2.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <list>
#include <unordered_map>

#include "matching/syslog_line.hpp"

namespace rp::matching {

struct Matcher::Compiled {
    PatternSpec spec;
    pcre2_code* tag = nullptr;
    pcre2_code* regex = nullptr;
    int ip_group = -1, user_group = -1, pid_group = -1;
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

struct MatchState::Impl {
    pcre2_match_data* md = nullptr;
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
    ~Impl() {
        pcre2_match_data_free(md);
        hs_free_scratch(scratch);
    }
};

MatchState::MatchState(const Matcher& m) : impl_(std::make_unique<Impl>()) {
    std::uint32_t max_groups = 1;
    for (const auto& p : m.patterns_) {
        std::uint32_t n = 0;
        pcre2_pattern_info(p->regex, PCRE2_INFO_CAPTURECOUNT, &n);
        max_groups = std::max(max_groups, n + 1);
    }
    impl_->md = pcre2_match_data_create(max_groups, nullptr);
    if (m.prefilter_ && hs_alloc_scratch(m.prefilter_->db, &impl_->scratch) != HS_SUCCESS)
        throw std::bad_alloc();
}

MatchState::~MatchState() = default;
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
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    return code;
}

bool run(pcre2_code* code, std::string_view text, pcre2_match_data* md) {
    return pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md, nullptr) >= 0;
}

std::string_view group(pcre2_match_data* md, int n, std::string_view text) {
    if (n < 0) return {};
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * n] == PCRE2_UNSET) return {};
    return text.substr(ov[2 * n], ov[2 * n + 1] - ov[2 * n]);
}

}  // namespace

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
        if (!spec.tag.empty()) {
            auto tag = compile(spec.tag, what + " tag");
            if (!tag) return tag.error();
            c->tag = *tag;
        }
        auto group_number = [&](const char* name) {
            const int n = pcre2_substring_number_from_name(c->regex, reinterpret_cast<PCRE2_SPTR>(name));
            return n < 0 ? -1 : n;
        };
        c->ip_group = group_number("ip");
        c->user_group = group_number("user");
        c->pid_group = group_number("pid");
        if (c->ip_group < 0 && spec.role != PatternRole::session_login)
            return core::make_error(what + ": the regex has no named group (?<ip>...)");
        if (spec.role != PatternRole::login && spec.whole_line && c->pid_group < 0)
            return core::make_error(what + ": a two-line pattern needs a named group (?<pid>...)");
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
    if (!m->literals_.empty()) {
        std::vector<const char*> exprs;
        std::vector<std::size_t> lens;
        std::vector<unsigned> flags, ids;
        for (std::size_t i = 0; i < m->literals_.size(); ++i) {
            exprs.push_back(m->literals_[i].data());
            lens.push_back(m->literals_[i].size());
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
        if (line.find(literals_[i]) != std::string_view::npos) mask |= i < 64 ? std::uint64_t{1} << i : ~std::uint64_t{0};
    return match_line_with(line, mask, now, state);
}

std::optional<LoginMatch> Matcher::match_line_with(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                                   MatchState& state) const {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    auto* md = state.impl().md;
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
            if (p->tag && !run(p->tag, parsed->tag, md)) continue;
            text = parsed->message;
        }
        if (!run(p->regex, text, md)) continue;
        const auto time = parsed ? resolve_time(*parsed, now) : now;
        std::string_view pid = group(md, p->pid_group, text);
        if (pid.empty() && parsed) pid = parsed->pid;
        const std::string_view host = parsed ? parsed->host : std::string_view();
        auto& impl = state.impl();
        if (p->spec.role == PatternRole::session_login) {
            if (pid.empty()) continue;
            auto s = impl.take(impl.make_key(p->spec.server, host, pid));
            if (!s || time - s->time > k_session_timeout) continue;
            return LoginMatch{s->ip, group(md, p->user_group, text), p->spec.server, p->spec.name, line, time};
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
        return LoginMatch{*ip, group(md, p->user_group, text), p->spec.server, p->spec.name, line, time};
    }
    return std::nullopt;
}

void Matcher::scan(std::string_view text, core::Time now, MatchState& state,
                   const std::function<void(const LoginMatch&)>& on_match) const {
    auto emit_line = [&](std::size_t start) {
        const auto end = text.find('\n', start);
        auto line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (auto m = match_line(line, now, state)) on_match(*m);
        return end == std::string_view::npos ? text.size() : end + 1;
    };
    if (every_line_) {
        for (std::size_t pos = 0; pos < text.size();) pos = emit_line(pos);
        return;
    }
    // Prefilter: one Hyperscan pass finds every literal of every pattern in the buffer; only
    // the lines holding one are examined, in order, each once, trying only the patterns whose
    // literals occur in it. Matches arrive in order of their end offset, so the hits of one line
    // arrive together: they are collected into a mask and the line is examined when the first hit
    // of a later line (or the end of the buffer) shows that the line is complete.
    struct Ctx {
        const Matcher* self;
        std::string_view text;
        core::Time now;
        MatchState* state;
        const std::function<void(const LoginMatch&)>* on_match;
        std::size_t line_start = 0, line_end = 0;  // current line [start, end); end == 0: none
        std::uint64_t mask = 0;
        void flush() {
            if (line_end == 0) return;
            if (auto m = self->match_line_with(text.substr(line_start, line_end - line_start), mask, now, *state))
                (*on_match)(*m);
            line_end = 0;
            mask = 0;
        }
    } ctx{this, text, now, &state, &on_match};
    auto on_hit = [](unsigned id, unsigned long long, unsigned long long to, unsigned, void* p) -> int {
        auto& c = *static_cast<Ctx*>(p);
        const auto& lits = c.self->literals_;
        const std::size_t start = static_cast<std::size_t>(to) - lits[id].size();
        const std::uint64_t bit = id < 64 ? std::uint64_t{1} << id : ~std::uint64_t{0};
        if (c.line_end != 0 && start < c.line_end) {  // another literal of the current line
            c.mask |= bit;
            return 0;
        }
        c.flush();
        const auto nl = start == 0 ? std::string_view::npos : c.text.rfind('\n', start - 1);
        c.line_start = nl == std::string_view::npos ? 0 : nl + 1;
        const auto end = c.text.find('\n', start);
        c.line_end = end == std::string_view::npos ? c.text.size() : end;
        if (c.line_end == 0) c.line_end = 1;  // an empty first line cannot hold a literal; keep "none" distinct
        c.mask = bit;
        return 0;
    };
    if (text.size() > std::numeric_limits<unsigned>::max()) {  // Hyperscan takes 32-bit lengths
        const auto half = text.rfind('\n', text.size() / 2);
        const auto cut = half == std::string_view::npos ? text.size() / 2 : half + 1;
        scan(text.substr(0, cut), now, state, on_match);
        scan(text.substr(cut), now, state, on_match);
        return;
    }
    if (!prefilter_) return;  // no patterns enabled
    hs_scan(prefilter_->db, text.data(), static_cast<unsigned>(text.size()), 0, state.impl().scratch, on_hit, &ctx);
    ctx.flush();
}

}  // namespace rp::matching
