#include "util/pair_search.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RP_PAIR_X86 1
#endif

namespace rp::util {
namespace {

// One needle's search over one text: the positions q where text[q] == a and text[q + d] == b
// (a, b the pair's bytes, d their distance) are candidates for an occurrence at q - first,
// confirmed whole. Rare (a pair is chosen for it): candidates() calls take() only for the blocks
// that have some.
struct Search {
    std::string_view text;
    const PairSearch::Needle& n;
    std::vector<PairSearch::Hit>& out;
    char a, b;
    unsigned d;  // 1..63

    Search(std::string_view t, const PairSearch::Needle& needle, std::vector<PairSearch::Hit>& o)
        : text(t), n(needle), out(o), a(needle.text[needle.first]), b(needle.text[needle.second]),
          d(static_cast<unsigned>(needle.second - needle.first)) {}

    void confirm(std::size_t q) {
        if (q < n.first) return;
        const std::size_t s = q - n.first, len = n.text.size();
        if (s + len <= text.size() && std::memcmp(text.data() + s, n.text.data(), len) == 0) out.push_back({s, n.id});
    }
    // Bit t of `bits` is a candidate at base + t.
    void take(std::size_t base, std::uint64_t bits) {
        for (; bits; bits &= bits - 1) confirm(base + static_cast<std::size_t>(__builtin_ctzll(bits)));
    }
};

// Each variant computes, for `count` 64-byte blocks from the text's start, the candidates of
// each block in one pass (the second byte loaded at its own offset) and hands the blocks that
// have some to s.take(). Block k reads up to 63 bytes into block k + 1 (d < 64): the caller
// passes only blocks that one more whole block follows in the text. Only this part differs
// between instruction sets.
using CandidateFn = void (*)(Search& s, std::size_t count);

void candidates_scalar(Search& s, std::size_t count) {
    const char* p = s.text.data();
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        std::uint64_t x = 0;
        for (unsigned t = 0; t < 64; ++t) x |= std::uint64_t{p[t] == s.a && p[t + s.d] == s.b} << t;
        if (x) s.take(64 * k, x);
    }
}

#ifdef RP_PAIR_X86
__attribute__((target("sse2"))) void candidates_sse2(Search& s, std::size_t count) {
    const __m128i va = _mm_set1_epi8(s.a), vb = _mm_set1_epi8(s.b);
    const char* p = s.text.data();
    const unsigned d = s.d;
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        std::uint64_t x = 0;
        for (unsigned q = 0; q < 4; ++q) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * q));
            const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * q + d));
            const __m128i m = _mm_and_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(w, vb));
            x |= std::uint64_t(static_cast<std::uint16_t>(_mm_movemask_epi8(m))) << (16 * q);
        }
        if (x) s.take(64 * k, x);
    }
}

__attribute__((target("avx2"))) void candidates_avx2(Search& s, std::size_t count) {
    const __m256i va = _mm256_set1_epi8(s.a), vb = _mm256_set1_epi8(s.b);
    const char* p = s.text.data();
    const unsigned d = s.d;
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __m256i lo = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), va),
                                            _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + d)), vb));
        const __m256i hi =
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), va),
                             _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 + d)), vb));
        if (!_mm256_testz_si256(_mm256_or_si256(lo, hi), _mm256_or_si256(lo, hi))) [[unlikely]]
            s.take(64 * k, std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(lo))) |
                               std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(hi))) << 32);
    }
}

__attribute__((target("avx512f,avx512bw"))) void candidates_avx512bw(Search& s, std::size_t count) {
    const __m512i va = _mm512_set1_epi8(s.a), vb = _mm512_set1_epi8(s.b);
    const char* p = s.text.data();
    const unsigned d = s.d;
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __mmask64 x =
            _mm512_mask_cmpeq_epi8_mask(_mm512_cmpeq_epi8_mask(_mm512_loadu_si512(p), va), _mm512_loadu_si512(p + d), vb);
        if (x) [[unlikely]]
            s.take(64 * k, x);
    }
}
#endif

CandidateFn candidates_for(PairSearch::Isa isa) {
#ifdef RP_PAIR_X86
    switch (isa) {
        case PairSearch::Isa::avx512bw: return candidates_avx512bw;
        case PairSearch::Isa::avx2: return candidates_avx2;
        case PairSearch::Isa::sse2: return candidates_sse2;
        case PairSearch::Isa::scalar: break;
    }
#else
    (void)isa;
#endif
    return candidates_scalar;
}

void find_one(std::string_view text, const PairSearch::Needle& n, CandidateFn candidates,
              std::vector<PairSearch::Hit>& out) {
    if (text.size() < n.text.size()) return;
    Search s(text, n, out);
    // The blocks that one more whole block follows come from candidates(); the rest is scalar.
    const std::size_t whole = text.size() / 64;
    const std::size_t masked = whole >= 2 ? whole - 1 : 0;
    candidates(s, masked);
    for (std::size_t q = 64 * masked; q + s.d < text.size(); ++q)
        if (text[q] == s.a && text[q + s.d] == s.b) s.confirm(q);
}

}  // namespace

std::optional<PairSearch> PairSearch::make(std::vector<Needle> needles, Isa isa) {
    if (!supported(isa)) return std::nullopt;
    for (const auto& n : needles)
        if (!(n.first < n.second && n.second < n.text.size() && n.second - n.first < 64)) return std::nullopt;
    return PairSearch(std::move(needles), isa);
}

bool PairSearch::supported(Isa isa) {
#ifdef RP_PAIR_X86
    // __builtin_cpu_supports checks that the kernel saves the registers too (XGETBV).
    switch (isa) {
        case Isa::avx512bw: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        case Isa::avx2: return __builtin_cpu_supports("avx2");
        case Isa::sse2: return __builtin_cpu_supports("sse2");
        case Isa::scalar: return true;
    }
    return false;
#else
    return isa == Isa::scalar;
#endif
}

PairSearch::Isa PairSearch::best_isa() {
    for (auto isa : {Isa::avx512bw, Isa::avx2, Isa::sse2})
        if (supported(isa)) return isa;
    return Isa::scalar;
}

std::string_view PairSearch::isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512bw: return "avx512bw";
        case Isa::avx2: return "avx2";
        case Isa::sse2: return "sse2";
        case Isa::scalar: break;
    }
    return "scalar";
}

std::size_t PairSearch::max_length() const {
    std::size_t n = 0;
    for (const auto& needle : needles_) n = std::max(n, needle.text.size());
    return n;
}

void PairSearch::find(std::string_view text, std::vector<Hit>& out) const {
    const std::size_t from = out.size();
    const CandidateFn candidates = candidates_for(isa_);
    for (const auto& n : needles_) find_one(text, n, candidates, out);
    // Each needle's hits are in order; several needles' are merged (ties keep the needles' order).
    if (needles_.size() > 1)
        std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(),
                         [](const Hit& x, const Hit& y) { return x.pos < y.pos; });
}

}  // namespace rp::util
