// Matcher: log lines -> successful logins, driven by pattern sets that are data, not code.
//
// A pattern set is a server (e.g. "dovecot") with one or more patterns. A pattern is
//   - literals: strings one of which must occur in the line (the prefilter: all literals of all
//     patterns are searched in one Hyperscan pass over the buffer, so a line without any literal
//     costs nothing more, however many pattern sets are enabled),
//   - tag: a PCRE2 regex the program tag must match (evidence that the line comes from the
//     server, empty = any tag),
//   - regex: a PCRE2 regex matched against the message, with named groups `ip` (required),
//     `user`, `pid`, `session` and `time` (optional; a session_end pattern has `session` and
//     no `ip`). A `time` group that took part in the match gives the
//     login's time (any form of log_time.hpp; one of no known form: the time is unknown);
//     otherwise the time is the line's framing time (syslog_line.hpp), else unknown.
// (A literal with a byte pair is searched by util::PairSearch in a pass of its own; see Literal.)
// User patterns from the config (`[[pattern]]`) have no tag and no literal: their regex is
// searched in the whole line, like pop-before-smtp's $pat.
// Two-line servers (popa3d: "Session from IP", then "Authentication passed for USER" from the
// same pid) use a `session` pattern that remembers the address per (server, host, pid) and a
// `session_login` pattern that completes it. The memory is bounded (k_max_sessions entries,
// oldest dropped first) and an entry older than k_session_timeout (by line time) is ignored.
// The `ip` group must parse as a complete address (Address::parse), so partial or malformed
// addresses never match. One line yields at most one login: the first pattern that matches.
// A line whose message is k_max_login_message_bytes or longer never yields anything: it may have
// been cut by a syslog size limit right after text a client chose (a failure line cut after a
// user name ending in `status="ok"`); MatchState counts those that a pattern matched.
// Security: every line is untrusted. Built-in patterns anchor at the start of the message and
// take the last occurrence of a field, so a user name that imitates a field grants nothing.
// Backtracking is bounded per line (k_regex_match_limit).
// Large buffers can be scanned on several threads in two steps: scan_chunk() runs the prefilter
// over a chunk of whole lines and resolves the lines that only patterns of one-line servers could
// match (those need no MatchState), on any thread with that thread's ScanScratch; emit_chunk()
// takes the chunks in order on one thread, resolves the remaining lines (two-line servers)
// against the state and calls on_match, so the results, their order and the pid correlation are
// exactly those of the single-threaded scan. scan() with ScanOptions does that over a buffer
// with util::ordered_parallel_map; `relaypermit scan` over the chunks of a file it reads.
// The matcher does no I/O, and its only threads are util::ordered_parallel_map's, in that scan().
// Thread-safety: a built Matcher is immutable and may be shared; MatchState is per source,
// ScanScratch per thread. on_match is only ever called on the thread that called scan() or
// emit_chunk().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "core/login_event.hpp"
#include "core/time.hpp"
#include "matching/log_time.hpp"

namespace rp::matching {

// What a matching line means.
enum class PatternRole {
    login,          // the line records a successful login with its address
    session,        // first line of a two-line server: the client address of process `pid`
    session_login,  // second line: process `pid` authenticated; the login takes the cached address
    session_end,    // the server's end line for the session in group `session` (no address);
                    // reported as LoginMatch::kind == session_end (see builtin_session_end_patterns)
};

// A prefilter literal. An occurrence that begins one of `except` is not a hit: the literal is
// there for another reason (see the "pop" literal in builtin_patterns.cpp).
// `pair`, when set, names two byte positions of text that together are rare in mail logs while
// the literal's last three bytes are not: the prefilter then finds it by that pair
// (util/pair_search.hpp) instead of by Hyperscan's Teddy, which looks for the last three bytes
// first (see "Login: " in builtin_patterns.cpp), on CPUs with AVX2 or AVX-512 (Hyperscan does
// on others). Results are the same either way.
struct Literal {
    struct Pair {
        std::uint8_t first, second;  // first < second < text.size(), second - first < 64
        bool operator==(const Pair&) const = default;
    };
    std::string text;
    std::vector<std::string> except;
    std::optional<Pair> pair;
    Literal(const char* t) : text(t) {}  // NOLINT: pattern tables list literals as strings
    Literal(std::string t, std::vector<std::string> e = {}, std::optional<Pair> p = std::nullopt)
        : text(std::move(t)), except(std::move(e)), pair(p) {}
    bool operator==(const Literal&) const = default;
    // Whether `line` holds an occurrence of text that is a hit.
    bool occurs_in(std::string_view line) const;
    // Whether the occurrence at `pos` of `buffer` is a hit.
    bool hit_at(std::string_view buffer, std::size_t pos) const;
};

struct PatternSpec {
    std::string server;             // pattern set name
    std::string name;               // pattern name, unique within the set
    std::vector<Literal> literals;  // prefilter; empty = every line is a candidate
    std::string tag;                    // regex for the program tag; empty = not checked
    std::string regex;                  // regex for the message (or the whole line if whole_line)
    bool whole_line = false;
    PatternRole role = PatternRole::login;
};

// The built-in pattern sets, in priority order.
const std::vector<PatternSpec>& builtin_patterns();
std::vector<std::string> builtin_servers();
// The built-in session end lines (role session_end; Dovecot's "imap(user)<pid><session>:
// Disconnected: ..."). Not part of builtin_patterns(): the daemon adds them to a matcher's
// user patterns only when max_lifetime is set, so `scan` and the prefilter of a daemon without
// max_lifetime stay as they were (their literal is Teddy's ninth, docs/limits.md).
const std::vector<PatternSpec>& builtin_session_end_patterns();

struct LoginMatch {
    core::Address ip;
    std::string_view user;     // view into the line
    std::string_view server;   // pattern set name (owned by the Matcher)
    std::string_view pattern;  // pattern name (owned by the Matcher)
    std::string_view line;
    core::Time time;                 // resolved and clamped, see resolve_line_time()
    core::TimeOrigin time_origin;    // line: from the line or its framing; reading: unknown
    LineTime time_detail;            // the form and why (scan --explain); .time/.origin as above
    // A login whose pattern has a `session` group carries the session id it opened (a view into
    // the line, "" = none); a session_end match (no address: ip is unset) the id it closes.
    core::LoginKind kind = core::LoginKind::login;
    std::string_view session;
};

inline constexpr std::size_t k_max_sessions = 4096;
inline constexpr auto k_session_timeout = std::chrono::minutes(10);
// Syslog writers cut long messages (1 KiB: RFC 3164, sysklogd, musl's syslog(); 2 KiB; 8 KiB:
// rsyslog, FreeBSD; 48 KiB: journald's LineMax; 64 KiB: syslog-ng), and the line they write
// ends where they cut, possibly right after text a client chose. The line written is re-framed
// (its header differs from the one the limit counted), so its length tells the limit only
// roughly: any message this long may have been cut (even at 1 KiB with a 64-byte tag and a
// forwarding host name), while real login messages stay below ~350 bytes.
inline constexpr std::size_t k_max_login_message_bytes = 800;
// Every tag and message regex, built-in or a [[pattern]], runs with PCRE2's match limit set to
// this (the JIT honours it too); a run that reaches it is no match. A login line needs a few
// hundred steps; a line crafted to make a regex backtrack (a Dovecot user name of thousands of
// ">, " before a failing address: ~55 ms per 16 KiB line with PCRE2's default of 10 million)
// stops within ~1 ms.
inline constexpr std::uint32_t k_regex_match_limit = 100'000;
class MatchState;
class Matcher;

struct ScanOptions {
    unsigned threads = 1;                            // threads to use, the caller's included
    std::size_t chunk_bytes = std::size_t{8} << 20;  // work unit of a thread (cut at line ends)
    // Called once per chunk, on the thread that scanned it, when the scan will read none of the
    // chunk's bytes again (the lines it reports are copied first). A mapped file can drop the
    // chunk's pages there, so that the unmapping is spread over the threads instead of following
    // the scan. Not called by the one-thread scan.
    std::function<void(const char* data, std::size_t size)> release;
};

// The lines of one chunk that the caller must see, from Matcher::scan_chunk: the logins found
// and the lines to decide with the state, copied (the chunk's bytes may be released or reused).
struct ChunkMatches {
    struct Line {
        std::size_t begin = 0, end = 0;  // the line in `arena`
        std::uint64_t mask = 0;          // literals found in it
        bool resolved = false;           // decided without the state: `match` is the result
        std::optional<LoginMatch> match;  // views into the scanned text until emit_chunk
        std::size_t user_begin = 0;       // offset of match->user in the line
        std::size_t session_begin = 0;    // offset of match->session in the line
    };
    std::vector<Line> lines;
    std::string arena;
};

// A thread's scratch space for Matcher::scan_chunk. Throws std::bad_alloc when it cannot be made.
class ScanScratch {
public:
    explicit ScanScratch(const Matcher& m);
    ~ScanScratch();
    ScanScratch(const ScanScratch&) = delete;
    ScanScratch& operator=(const ScanScratch&) = delete;
    struct Impl;
    Impl& impl() { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

class Matcher {
public:
    // `servers`: built-in sets to enable (empty = all); `user_patterns` are appended as sets of
    // their own (server = name). Fails on an unknown server name or a bad regex, naming it.
    static core::Result<std::shared_ptr<const Matcher>> build(const std::vector<std::string>& servers,
                                                              const std::vector<PatternSpec>& user_patterns);
    ~Matcher();

    // Calls on_match for each line of `text` that records a successful login. `text` is one or
    // more lines; a final line without '\n' is treated as complete.
    void scan(std::string_view text, core::Time now, MatchState& state,
              const std::function<void(const LoginMatch&)>& on_match) const;
    // The same results in the same order, computed on up to opts.threads threads when `text` is
    // larger than one chunk.
    void scan(std::string_view text, core::Time now, MatchState& state,
              const std::function<void(const LoginMatch&)>& on_match, const ScanOptions& opts) const;
    // Chunk by chunk, for a caller that runs the threads (see the top of this file): scan_chunk
    // appends to `out` what `lines` (complete lines; a final one without '\n' counts as complete)
    // holds for the caller; a chunk may be given in several consecutive pieces to one `out`.
    // emit_chunk then calls on_match for the chunk's logins, chunks in file order, and empties
    // `chunk`. Over consecutive chunks the results are exactly those of scan() over their text.
    void scan_chunk(std::string_view lines, core::Time now, ScanScratch& scratch, ChunkMatches& out) const;
    void emit_chunk(ChunkMatches& chunk, core::Time now, MatchState& state,
                    const std::function<void(const LoginMatch&)>& on_match) const;
    std::optional<LoginMatch> match_line(std::string_view line, core::Time now, MatchState& state) const;
    // The literal prefilter alone, for a source that queues lines before it parses them: calls
    // on_line(begin, end) with the offsets of each line of `text` ('\n' excluded) that scan()
    // would examine, in order; every line when some pattern has no literal, none when no pattern
    // is enabled. scan() over only these lines finds exactly the logins (and the two-line
    // sessions) that scan() over `text` finds, so the other lines are noise that may be dropped.
    // One Hyperscan pass: memory speed. Uses `state` for scratch space only.
    void for_each_candidate(std::string_view text, MatchState& state,
                            const std::function<void(std::size_t begin, std::size_t end)>& on_line) const;
    // As match_line, with the set of literals known to occur in the line (bit i = literals_[i]),
    // as the prefilter found them; patterns none of whose literals occur are skipped.
    std::optional<LoginMatch> match_line_with(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                              MatchState& state) const;

    std::vector<std::string> servers() const;  // enabled pattern set names
    // How lines are prefiltered, for `scan --stats`: "hyperscan", "hyperscan + pair search
    // (avx512bw)", "pair search (avx2)", "every line" (a pattern without literal) or "none".
    std::string prefilter_description() const;

    struct Compiled;
    struct Scratch;           // per-thread PCRE2 match data and tag results
    struct PrefilterScratch;  // per-thread Hyperscan scratch and pair-search hits

private:
    Matcher() = default;
    // The steps of build(), in matcher_build.cpp.
    core::Status compile_patterns(std::vector<PatternSpec> specs);
    void mark_stateful();
    core::Status build_prefilter();
    // A line's literal mask computed without the prefilter (Literal::occurs_in).
    std::uint64_t literal_mask_of(std::string_view line) const;
    // Calls on_line(start, end, mask) for each line of `text` holding a literal, in order.
    template <class F>
    void prefilter(std::string_view text, PrefilterScratch& scratch, F&& on_line) const;
    template <class F>
    void prefilter_piece(std::string_view text, std::size_t base, PrefilterScratch& scratch, F& on_line) const;
    // match_line_with's work with explicit PCRE2 scratch. Without a state (a worker thread), a
    // line that a pattern of a two-line server matches (tag and regex) sets *needs_state and
    // yields nothing: the caller decides it in order, with the state. Patterns are tried in the
    // same order either way, so every other line gets the result it would get with the state.
    std::optional<LoginMatch> match_impl(std::string_view line, std::uint64_t literal_mask, core::Time now,
                                         Scratch& scratch, MatchState* state, bool* needs_state) const;
    std::vector<std::unique_ptr<Compiled>> patterns_;
    std::vector<Literal> literals_;      // union of all literals, for the prefilter
    bool every_line_ = false;            // some pattern has no literal
    std::uint32_t max_groups_ = 1;       // PCRE2 match data size for all patterns
    int tag_count_ = 0;                  // distinct tag regexes (at most 64 are told apart)
    struct Prefilter;                    // Hyperscan database and pair search of literals_
    std::unique_ptr<Prefilter> prefilter_;
    friend class MatchState;
    friend class ScanScratch;
};

// Per-source scratch space (PCRE2 match data) and, for two-line servers, the pid cache.
class MatchState {
public:
    explicit MatchState(const Matcher& m);
    ~MatchState();
    MatchState(const MatchState&) = delete;
    MatchState& operator=(const MatchState&) = delete;
    struct Impl;
    Impl& impl() { return *impl_; }
    // Lines a pattern matched that were refused for their length (k_max_login_message_bytes).
    std::uint64_t long_lines() const;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace rp::matching
