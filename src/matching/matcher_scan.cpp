// Buffers through the prefilter: the one-thread scan, the candidate filter, and the chunk steps
// (scan_chunk on any thread, emit_chunk in order) that the threaded scan is made of.
#include <algorithm>
#include <cstring>

#include "matching/matcher_internal.hpp"
#include "util/parallel_map.hpp"

namespace rp::matching {

template <class F>
void Matcher::prefilter(std::string_view all, PrefilterScratch& scratch, F&& on_line) const {
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

namespace {

// The prefilter's hits -> the lines holding them, each reported once, in order, with the set of
// literals found in it. Hits must come in order of their lines (see prefilter_piece). (No literal
// holds a '\n': a hit's line is the line its first byte is in.)
template <class F>
struct LineCollector {
    const std::vector<Literal>& literals;
    std::string_view text;
    std::size_t base;  // text's offset in the caller's buffer
    F* on_line;
    const std::optional<util::PairSearch>& pairs;
    std::vector<util::PairSearch::Hit>& pair_hits;  // those of text before window_end
    std::size_t window_end = 0;                // text before it has been pair-searched
    std::size_t next_pair = 0;                 // pair_hits before it are merged
    std::size_t line_start = 0, line_end = 0;  // current line [start, end); end == 0: none
    std::uint64_t mask = 0;

    void flush() {
        if (line_end == 0) return;
        (*on_line)(base + line_start, base + line_end, mask);
        line_end = 0;
        mask = 0;
    }
    // Literal `id` occurs at `start`.
    void hit(unsigned id, std::size_t start) {
        const auto& lit = literals[id];
        // For the pair search's hits too: it drops exceptions as it confirms, but a window of it
        // sees only a needle's length past its end, so an exception that reaches further (a
        // "pop3-login: " across the window's end) is caught only here.
        if (!lit.except.empty() && !lit.hit_at(text, start)) return;
        const std::uint64_t bit = id < 64 ? std::uint64_t{1} << id : ~std::uint64_t{0};
        if (line_end != 0 && start < line_end) {  // another literal of the current line
            mask |= bit;
            return;
        }
        flush();
        const void* nl = ::memrchr(text.data(), '\n', start);
        line_start = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1 : 0;
        const void* e = std::memchr(text.data() + start, '\n', text.size() - start);
        line_end = e ? static_cast<std::size_t>(static_cast<const char*>(e) - text.data()) : text.size();
        if (line_end == 0) line_end = 1;  // an empty first line cannot hold a literal; keep "none" distinct
        mask = bit;
    }
    // The pair search's hits that begin before `pos`. The text is pair-searched a window at a
    // time, as far as the hits are needed, so the hits held take memory in proportion to the
    // window, not to the text (a text of nothing but "Login: " has a hit every 7 bytes).
    static constexpr std::size_t k_window = std::size_t{64} << 10;
    void pairs_before(std::size_t pos) {
        for (;;) {
            for (; next_pair < pair_hits.size() && pair_hits[next_pair].pos < pos; ++next_pair)
                hit(pair_hits[next_pair].id, pair_hits[next_pair].pos);
            if (next_pair < pair_hits.size() || !pairs || window_end >= std::min(pos, text.size())) return;
            // The occurrences that begin in [from, window_end): their bytes reach a needle's
            // length - 1 further.
            const std::size_t from = window_end;
            window_end = std::min(from + k_window, text.size());
            const std::size_t reach = std::min(window_end + pairs->max_length() - 1, text.size());
            pair_hits.clear();
            next_pair = 0;
            pairs->find(text.substr(from, reach - from), pair_hits);
            while (!pair_hits.empty() && pair_hits.back().pos >= window_end - from) pair_hits.pop_back();
            for (auto& h : pair_hits) h.pos += from;
        }
    }
};

}  // namespace

template <class F>
void Matcher::prefilter_piece(std::string_view text, std::size_t base, PrefilterScratch& scratch, F& on_line) const {
    // One Hyperscan pass and the pair search (if some literal has a byte pair) find every
    // literal of every pattern in the buffer. Hyperscan's matches arrive in order of their end
    // offset, so in order of their lines; the pair search's, in order of position, are merged in
    // before each Hyperscan match that begins after them. A line is reported when the
    // first hit of a later line (or the end of the buffer) shows that it is complete.
    scratch.pair_hits.clear();
    LineCollector<F> lines{literals_, text, base, &on_line, prefilter_->pairs, scratch.pair_hits};
    if (prefilter_->db) {
        auto on_hit = [](unsigned id, unsigned long long, unsigned long long to, unsigned, void* p) -> int {
            auto& c = *static_cast<LineCollector<F>*>(p);
            const std::size_t start = static_cast<std::size_t>(to) - c.literals[id].text.size();
            c.pairs_before(start);
            c.hit(id, start);
            return 0;
        };
        hs_scan(prefilter_->db, text.data(), static_cast<unsigned>(text.size()), 0, scratch.hs, on_hit, &lines);
    }
    lines.pairs_before(text.size());
    lines.flush();
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
        if (auto m = match_impl(text.substr(b, e - b), mask, now, state.impl().scratch_md, &state, nullptr))
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

void Matcher::scan_chunk(std::string_view text, core::Time now, ScanScratch& scratch, ChunkMatches& out) const {
    auto& s = scratch.impl();
    auto keep = [&](std::string_view line, std::uint64_t mask) {
        bool needs_state = false;
        auto match = match_impl(line, mask, now, s.md, nullptr, &needs_state);
        if (!needs_state && !match) return;  // nothing to emit, nothing to keep
        ChunkMatches::Line c{out.arena.size(), out.arena.size() + line.size(), mask, !needs_state, std::move(match)};
        if (c.match && !c.match->user.empty()) c.user_begin = static_cast<std::size_t>(c.match->user.data() - line.data());
        if (c.match && !c.match->session.empty())
            c.session_begin = static_cast<std::size_t>(c.match->session.data() - line.data());
        out.arena.append(line);
        out.lines.push_back(std::move(c));
    };
    if (every_line_) {
        for (std::size_t pos = 0; pos < text.size();) {
            const auto end = std::min(text.find('\n', pos), text.size());
            const auto line = text.substr(pos, end - pos);
            keep(line, literal_mask_of(line));
            pos = end + 1;
        }
        return;
    }
    prefilter(text, s.prefilter, [&](std::size_t b, std::size_t e, std::uint64_t mask) { keep(text.substr(b, e - b), mask); });
}

void Matcher::emit_chunk(ChunkMatches& chunk, core::Time now, MatchState& state,
                         const std::function<void(const LoginMatch&)>& on_match) const {
    auto& impl = state.impl();
    for (auto& c : chunk.lines) {
        const std::string_view line = std::string_view(chunk.arena).substr(c.begin, c.end - c.begin);
        if (!c.resolved) {
            c.match = match_impl(line, c.mask, now, impl.scratch_md, &state, nullptr);
        } else if (c.match) {  // re-point the views from the scanned text to the copy
            c.match->user = line.substr(c.user_begin, c.match->user.size());
            c.match->session = line.substr(c.session_begin, c.match->session.size());
            c.match->line = line.substr(0, c.match->line.size());
        }
        if (c.match) on_match(*c.match);
    }
    chunk.lines.clear();
    chunk.arena.clear();
}

void Matcher::scan(std::string_view text, core::Time now, MatchState& state,
                   const std::function<void(const LoginMatch&)>& on_match, const ScanOptions& opts) const {
    if (opts.threads <= 1 || every_line_ || !prefilter_ || text.size() <= std::max<std::size_t>(opts.chunk_bytes, 1))
        return scan(text, now, state, on_match);
    const auto cuts = util::line_cuts(text, opts.chunk_bytes);
    ScanScratch caller(*this);
    util::SparePool<ChunkMatches> spare;
    util::ordered_parallel_map<ChunkMatches>(
        cuts.size() - 1, util::ParallelOptions{opts.threads}, caller, [&] { return std::make_unique<ScanScratch>(*this); },
        [&](std::size_t i, ScanScratch& scratch) {
            const std::string_view part = text.substr(cuts[i], cuts[i + 1] - cuts[i]);
            ChunkMatches out = spare.take();
            scan_chunk(part, now, scratch, out);
            if (opts.release) opts.release(part.data(), part.size());
            return out;
        },
        [&](std::size_t, ChunkMatches&& chunk) {
            emit_chunk(chunk, now, state, on_match);
            spare.give(std::move(chunk));  // emptied, its capacity kept
        });
}

}  // namespace rp::matching
