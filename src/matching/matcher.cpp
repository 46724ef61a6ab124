#include "matching/matcher.hpp"

#include <pcre2.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <unordered_map>

#include "matching/syslog_line.hpp"

namespace rp::matching {

struct Matcher::Compiled {
    PatternSpec spec;
    pcre2_code* tag = nullptr;
    pcre2_code* regex = nullptr;
    int ip_group = -1, user_group = -1, pid_group = -1;
    ~Compiled() {
        pcre2_code_free(tag);
        pcre2_code_free(regex);
    }
};

struct MatchState::Impl {
    pcre2_match_data* md = nullptr;
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
    ~Impl() { pcre2_match_data_free(md); }
};

MatchState::MatchState(const Matcher& m) : impl_(std::make_unique<Impl>()) {
    std::uint32_t max_groups = 1;
    for (const auto& p : m.patterns_) {
        std::uint32_t n = 0;
        pcre2_pattern_info(p->regex, PCRE2_INFO_CAPTURECOUNT, &n);
        max_groups = std::max(max_groups, n + 1);
    }
    impl_->md = pcre2_match_data_create(max_groups, nullptr);
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
        for (const auto& l : spec.literals)
            if (std::find(m->literals_.begin(), m->literals_.end(), l) == m->literals_.end()) m->literals_.push_back(l);
        c->spec = std::move(spec);
        m->patterns_.push_back(std::move(c));
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
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    auto* md = state.impl().md;
    std::optional<SyslogLine> parsed;
    bool parsed_done = false;
    for (const auto& p : patterns_) {
        if (!p->spec.literals.empty()) {
            bool hit = false;
            for (const auto& l : p->spec.literals)
                if (line.find(l) != std::string_view::npos) { hit = true; break; }
            if (!hit) continue;
        }
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
    // Prefilter: find literal occurrences in the whole buffer (memmem runs at memory speed),
    // then examine only the lines that hold them, in order, each once.
    if (literals_.size() == 1) {
        const auto& lit = literals_.front();
        std::size_t pos = 0;
        while (pos < text.size()) {
            const void* hit = memmem(text.data() + pos, text.size() - pos, lit.data(), lit.size());
            if (!hit) break;
            const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(hit) - text.data());
            const auto nl = text.rfind('\n', at);
            const std::size_t start = nl == std::string_view::npos ? 0 : nl + 1;
            pos = emit_line(std::max(start, pos));
        }
        return;
    }
    std::vector<std::size_t> next(literals_.size(), 0);  // next occurrence of each literal
    auto find_from = [&](std::size_t i, std::size_t from) {
        const auto& lit = literals_[i];
        if (from >= text.size()) return text.size();
        const void* hit = memmem(text.data() + from, text.size() - from, lit.data(), lit.size());
        return hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - text.data()) : text.size();
    };
    for (std::size_t i = 0; i < literals_.size(); ++i) next[i] = find_from(i, 0);
    std::size_t pos = 0;
    while (true) {
        const std::size_t at = *std::min_element(next.begin(), next.end());
        if (at >= text.size()) break;
        const auto nl = text.rfind('\n', at);
        const std::size_t start = std::max(nl == std::string_view::npos ? 0 : nl + 1, pos);
        pos = emit_line(start);
        for (std::size_t i = 0; i < literals_.size(); ++i)
            if (next[i] < pos) next[i] = find_from(i, pos);
    }
}

}  // namespace rp::matching
