// Matcher::build in three steps: select the pattern sets, compile each pattern (PCRE2 regexes,
// shared tag results, literal bits), then build the Hyperscan prefilter over the literals.
#include <algorithm>

#include "matching/matcher_internal.hpp"
#include "matching/required_literal.hpp"

namespace rp::matching {
namespace {

// Every regex is compiled with LF as its newline ('.', '$' and `\N` mean what they mean in a
// line split at '\n'; the built-in Dovecot regex spells `.` as `[^,\n]` once). PCRE2's build
// default, Debian's included, is LF too: this makes it independent of how PCRE2 was built.
pcre2_compile_context* compile_context() {
    static pcre2_compile_context* const context = [] {
        pcre2_compile_context* c = pcre2_compile_context_create(nullptr);
        if (!c) throw std::bad_alloc();
        pcre2_set_newline(c, PCRE2_NEWLINE_LF);
        return c;
    }();
    return context;
}

core::Result<pcre2_code*> compile(const std::string& re, const std::string& what) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), 0, &err, &off, compile_context());
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

// Step 1: the built-in sets named in `servers` (all when empty) in priority order, then the
// user's patterns; an unknown name is an error that lists the known ones.
core::Result<std::vector<PatternSpec>> select_specs(const std::vector<std::string>& servers,
                                                    const std::vector<PatternSpec>& user_patterns) {
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
    return specs;
}

// A pattern's regexes compiled and its named groups found and checked.
core::Result<std::unique_ptr<Matcher::Compiled>> compile_one(const PatternSpec& spec) {
    auto c = std::make_unique<Matcher::Compiled>();
    const bool plain = spec.name.empty() || spec.name == spec.server;
    const std::string what = "pattern '" + spec.server + (plain ? "" : "/" + spec.name) + "'";
    auto re = compile(spec.regex, what);
    if (!re) return re.error();
    c->regex = *re;
    c->regex_jit = jit(c->regex);
    if (!spec.tag.empty()) {
        auto tag = compile(spec.tag, what + " tag");
        if (!tag) return tag.error();
        c->tag = *tag;
        c->tag_jit = jit(c->tag);
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
    return c;
}

}  // namespace

core::Result<std::shared_ptr<const Matcher>> Matcher::build(const std::vector<std::string>& servers,
                                                            const std::vector<PatternSpec>& user_patterns) {
    auto specs = select_specs(servers, user_patterns);
    if (!specs) return specs.error();
    std::shared_ptr<Matcher> m(new Matcher());
    if (auto st = m->compile_patterns(std::move(*specs)); !st) return st.error();
    m->mark_stateful();
    if (auto st = m->build_prefilter(); !st) return st.error();
    return std::shared_ptr<const Matcher>(std::move(m));
}

// Step 2: every pattern compiled, in order; equal tag regexes share a result bit, and each
// pattern's literals get their bits in the union literals_.
core::Status Matcher::compile_patterns(std::vector<PatternSpec> specs) {
    for (auto& spec : specs) {
        auto c = compile_one(spec);
        if (!c) return c.error();
        if ((*c)->tag) {
            for (const auto& q : patterns_)
                if (q->spec.tag == spec.tag) (*c)->tag_id = q->tag_id;
            if ((*c)->tag_id < 0 && tag_count_ < 64) (*c)->tag_id = tag_count_++;
        }
        // A user's pattern has no literal of its own: one that every match must contain, read
        // from its regex, lets it join the prefilter (else every line is tried on it).
        if (spec.literals.empty())
            if (auto lit = required_literal(spec.regex); !lit.empty()) spec.literals.emplace_back(std::move(lit));
        if (spec.literals.empty()) every_line_ = true;
        for (const auto& l : spec.literals) {
            auto it = std::find(literals_.begin(), literals_.end(), l);
            if (it == literals_.end()) it = literals_.insert(literals_.end(), l);
            const auto idx = static_cast<std::size_t>(it - literals_.begin());
            // Beyond 64 distinct literals the mask saturates: such patterns are always tried.
            (*c)->literal_mask |= idx < 64 ? std::uint64_t{1} << idx : ~std::uint64_t{0};
        }
        std::uint32_t n = 0;
        pcre2_pattern_info((*c)->regex, PCRE2_INFO_CAPTURECOUNT, &n);
        max_groups_ = std::max(max_groups_, n + 1);
        (*c)->spec = std::move(spec);
        patterns_.push_back(std::move(*c));
    }
    return core::ok();
}

// Two-line servers keep state between lines; their patterns (one-line logins included, which
// complete a pending session) must see the lines in order, on the caller's MatchState.
void Matcher::mark_stateful() {
    for (const auto& p : patterns_)
        p->stateful = std::any_of(patterns_.begin(), patterns_.end(), [&](const auto& q) {
            return q->spec.server == p->spec.server &&
                   (q->spec.role == PatternRole::session || q->spec.role == PatternRole::session_login);
        });
}

// Step 3: the prefilter over literals_ (none when no pattern has a literal): a pair search for
// the literals with a byte pair, one Hyperscan literal database for the others. Without AVX2
// the pair search is slower than Teddy's confirmations it saves (SSE2: ~3.5x AVX-512's time,
// more than Teddy spends on "Login: "; docs/benchmarks.md), so there every literal goes to
// Hyperscan.
core::Status Matcher::build_prefilter() {
    if (literals_.empty()) return core::ok();
    std::vector<const char*> exprs;
    std::vector<std::size_t> lens;
    std::vector<unsigned> flags, ids;
    std::vector<util::PairSearch::Needle> needles;
    const bool pairs = util::PairSearch::best_isa() >= util::PairSearch::Isa::avx2;
    for (std::size_t i = 0; i < literals_.size(); ++i) {
        const auto& l = literals_[i];
        if (l.pair && pairs) {
            needles.push_back({l.text, l.pair->first, l.pair->second, static_cast<unsigned>(i), l.except});
            continue;
        }
        exprs.push_back(l.text.data());
        lens.push_back(l.text.size());
        flags.push_back(0);
        ids.push_back(static_cast<unsigned>(i));
    }
    prefilter_ = std::make_unique<Prefilter>();
    if (!needles.empty()) {
        prefilter_->pairs = util::PairSearch::make(std::move(needles));
        if (!prefilter_->pairs) return core::make_error("cannot build the literal prefilter: a literal's byte pair or exception is invalid");
    }
    if (exprs.empty()) return core::ok();
    hs_compile_error_t* err = nullptr;
    if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(), static_cast<unsigned>(exprs.size()),
                             HS_MODE_BLOCK, nullptr, &prefilter_->db, &err) != HS_SUCCESS) {
        std::string msg = err && err->message ? err->message : "unknown error";
        hs_free_compile_error(err);
        return core::make_error("cannot build the literal prefilter: " + msg);
    }
    return core::ok();
}

std::string Matcher::prefilter_description() const {
    if (every_line_) return "every line";
    if (!prefilter_) return "none";
    std::string out = prefilter_->db ? "hyperscan" : "";
    if (prefilter_->pairs) {
        if (!out.empty()) out += " + ";
        out += "pair search (" + std::string(util::PairSearch::isa_name(prefilter_->pairs->isa())) + ")";
    }
    return out;
}

}  // namespace rp::matching
