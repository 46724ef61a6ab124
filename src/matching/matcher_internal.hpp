// Matcher's private parts, shared by its three files: matcher_build.cpp (select → compile →
// prefilter), matcher.cpp (one line against the patterns) and matcher_scan.cpp (buffers and
// chunks through the prefilter). Not for use outside src/matching.
// Thread-safety: Compiled and Prefilter are immutable once built; Scratch, PrefilterScratch and
// ScanScratch::Impl belong to one thread; MatchState::Impl to one source.
#pragma once

#include <hs.h>
#include <pcre2.h>

#include <list>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>

#include "matching/matcher.hpp"
#include "matching/syslog_line.hpp"
#include "util/pair_search.hpp"

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
    Compiled() = default;
    Compiled(const Compiled&) = delete;
    Compiled& operator=(const Compiled&) = delete;
    ~Compiled() {
        pcre2_code_free(tag);
        pcre2_code_free(regex);
    }
};

// The literals with a byte pair are in `pairs` (needle id = index in literals_), the others in
// `db` (null when there are none).
struct Matcher::Prefilter {
    hs_database_t* db = nullptr;
    std::optional<util::PairSearch> pairs;
    Prefilter() = default;
    Prefilter(const Prefilter&) = delete;
    Prefilter& operator=(const Prefilter&) = delete;
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

// A thread's Hyperscan scratch (null when Hyperscan has no literal) and the pair search's hits
// in the buffer being prefiltered.
struct Matcher::PrefilterScratch {
    hs_scratch_t* hs = nullptr;
    std::vector<util::PairSearch::Hit> pair_hits;
    PrefilterScratch(const PrefilterScratch&) = delete;
    PrefilterScratch& operator=(const PrefilterScratch&) = delete;
    explicit PrefilterScratch(const hs_database_t* db) {
        if (db && hs_alloc_scratch(db, &hs) != HS_SUCCESS) throw std::bad_alloc();
    }
    ~PrefilterScratch() { hs_free_scratch(hs); }
};

struct ScanScratch::Impl {
    Matcher::Scratch md;
    Matcher::PrefilterScratch prefilter;
    Impl(std::uint32_t groups, const hs_database_t* db) : md(groups), prefilter(db) {}
};

struct MatchState::Impl {
    Matcher::Scratch scratch_md;
    Matcher::PrefilterScratch scratch;
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

    Impl(std::uint32_t groups, const hs_database_t* db) : scratch_md(groups), scratch(db) {}
    const std::string& make_key(std::string_view server, std::string_view host, std::string_view pid);
    void remember(const std::string& k, const core::Address& ip, core::Time t);
    std::optional<Session> take(const std::string& k);
};

}  // namespace rp::matching
