#include "util/pair_search.hpp"

#include <algorithm>
#include <array>
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
// confirmed whole (and not one its exceptions begin). Rare (a pair is chosen for it): the
// candidate functions call take() only for the blocks that have some.
// Its hits carry the needle's index among the searched ones (PairSearch::find sorts by it and then
// puts the ids in).
struct Search {
    std::string_view text;
    const PairSearch::Needle* n = nullptr;
    unsigned index = 0;
    std::vector<PairSearch::Hit>* out = nullptr;
    char a = 0, b = 0;
    unsigned d = 1;  // 1..63

    Search() = default;
    Search(std::string_view t, const PairSearch::Needle& needle, unsigned i, std::vector<PairSearch::Hit>& o)
        : text(t), n(&needle), index(i), out(&o), a(needle.text[needle.first]), b(needle.text[needle.second]),
          d(static_cast<unsigned>(needle.second - needle.first)) {}

    // Byte by byte: needles and exceptions are short, and most candidates differ early (a call
    // to memcmp per comparison cost the scan ~3%: "pop" has ~400,000 candidates per GB of log).
    static bool same(const char* x, const char* y, std::size_t len) {
        for (std::size_t i = 0; i < len; ++i)
            if (x[i] != y[i]) return false;
        return true;
    }
    void confirm(std::size_t q) {
        if (q < n->first) return;
        const std::size_t s = q - n->first, len = n->text.size();
        if (s + len > text.size() || !same(text.data() + s, n->text.data(), len)) return;
        for (const auto& e : n->except)
            if (e.size() <= text.size() - s && same(text.data() + s, e.data(), e.size())) return;
        out->push_back({s, index});
    }
    // Bit t of `bits` is a candidate at base + t.
    void take(std::size_t base, std::uint64_t bits) {
        for (; bits; bits &= bits - 1) confirm(base + static_cast<std::size_t>(__builtin_ctzll(bits)));
    }
};

// Needles searched in one pass over the text (the load of each block's first bytes serves them
// all; each needle loads its second bytes).
constexpr std::size_t k_fused = 4;

// Each variant computes, for `count` 64-byte blocks from the text's start, the candidates of
// each block for the N needles of s[0..N) (one text) and hands the blocks that have some to
// s[j].take(). The second byte is loaded at its own offset, so one pass gives the candidates.
// Block k reads up to 63 bytes into block k + 1 (d < 64): the caller passes only blocks that one
// more whole block follows in the text. Only this part differs between instruction sets; AVX2 and
// AVX-512BW (what the matcher uses) take the needles together, the others one after another.
using CandidateFn = void (*)(Search* s, std::size_t count);

void one_scalar(Search& s, std::size_t count) {
    const char* p = s.text.data();
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        std::uint64_t x = 0;
        for (unsigned t = 0; t < 64; ++t) x |= std::uint64_t{p[t] == s.a && p[t + s.d] == s.b} << t;
        if (x) s.take(64 * k, x);
    }
}

template <std::size_t N>
void candidates_scalar(Search* s, std::size_t count) {
    for (std::size_t j = 0; j < N; ++j) one_scalar(s[j], count);
}

#ifdef RP_PAIR_X86
__attribute__((target("sse2"))) void one_sse2(Search& s, std::size_t count) {
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

template <std::size_t N>
void candidates_sse2(Search* s, std::size_t count) {
    for (std::size_t j = 0; j < N; ++j) one_sse2(s[j], count);
}

// The wide variants compute a batch of blocks at a time into h[j][k] (needle j, block k) and a
// word of the blocks with any candidate, then hand those to take(): no call in the loop, so the
// compared bytes stay in registers (a call would clobber every vector register). (Noting only
// the blocks with candidates, behind a branch, measured no faster.)
constexpr std::size_t k_batch = 64;

template <std::size_t N>
struct Batch {
    std::uint64_t h[N][k_batch];
    void take(Search* s, std::size_t k0, std::uint64_t any) {
        for (; any; any &= any - 1) {
            const std::size_t k = static_cast<std::size_t>(__builtin_ctzll(any));
            for (std::size_t j = 0; j < N; ++j)
                if (h[j][k]) s[j].take(64 * (k0 + k), h[j][k]);
        }
    }
};

template <std::size_t N>
__attribute__((target("avx2"))) std::uint64_t batch_avx2(const Search* s, const char* p, std::size_t count,
                                                        Batch<N>& out) {
    __m256i va[N], vb[N];
    unsigned d[N];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < N; ++j) {
        va[j] = _mm256_set1_epi8(s[j].a);
        vb[j] = _mm256_set1_epi8(s[j].b);
        d[j] = s[j].d;
    }
    std::uint64_t any = 0;
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
        std::uint64_t all = 0;
#pragma GCC unroll 4
        for (std::size_t j = 0; j < N; ++j) {
            const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + d[j]));
            const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 + d[j]));
            const auto lo = static_cast<std::uint32_t>(
                _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(v0, va[j]), _mm256_cmpeq_epi8(w0, vb[j]))));
            const auto hi = static_cast<std::uint32_t>(
                _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(v1, va[j]), _mm256_cmpeq_epi8(w1, vb[j]))));
            const std::uint64_t x = std::uint64_t{lo} | std::uint64_t{hi} << 32;
            out.h[j][k] = x;
            all |= x;
        }
        any |= std::uint64_t{all != 0} << k;
    }
    return any;
}

template <std::size_t N>
__attribute__((target("avx512f,avx512bw"))) std::uint64_t batch_avx512bw(const Search* s, const char* p,
                                                                        std::size_t count, Batch<N>& out) {
    __m512i va[N], vb[N];
    unsigned d[N];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < N; ++j) {
        va[j] = _mm512_set1_epi8(s[j].a);
        vb[j] = _mm512_set1_epi8(s[j].b);
        d[j] = s[j].d;
    }
    // The loop only writes each block's masks; which blocks have any candidate is worked out
    // after it, eight blocks per instruction (a word per block built in the loop cost it half
    // of its instructions).
#pragma GCC unroll 2
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __m512i v = _mm512_loadu_si512(p);
#pragma GCC unroll 4
        for (std::size_t j = 0; j < N; ++j)
            out.h[j][k] = _mm512_mask_cmpeq_epi8_mask(_mm512_cmpeq_epi8_mask(v, va[j]), _mm512_loadu_si512(p + d[j]), vb[j]);
    }
    std::uint64_t any = 0;
    for (std::size_t k = 0; k < count; k += 8) {
        __m512i x = _mm512_loadu_si512(&out.h[0][k]);
#pragma GCC unroll 4
        for (std::size_t j = 1; j < N; ++j) x = _mm512_or_si512(x, _mm512_loadu_si512(&out.h[j][k]));
        any |= std::uint64_t{_mm512_test_epi64_mask(x, x)} << k;
    }
    return count == k_batch ? any : any & ((std::uint64_t{1} << count) - 1);
}

template <std::size_t N, std::uint64_t (*batch)(const Search*, const char*, std::size_t, Batch<N>&)>
void candidates_batched(Search* s, std::size_t count) {
    Batch<N> b{};  // zeroed: batch_avx512bw reads whole groups of eight blocks (the excess masked off)
    const char* p = s[0].text.data();
    for (std::size_t k0 = 0; k0 < count; k0 += k_batch) {
        const std::size_t n = std::min(k_batch, count - k0);
        b.take(s, k0, batch(s, p + 64 * k0, n, b));
    }
}

template <std::size_t N>
void candidates_avx2(Search* s, std::size_t count) {
    candidates_batched<N, batch_avx2<N>>(s, count);
}

template <std::size_t N>
void candidates_avx512bw(Search* s, std::size_t count) {
    candidates_batched<N, batch_avx512bw<N>>(s, count);
}
#endif

// The variant for `isa` and n (1..k_fused) needles.
CandidateFn candidates_for(PairSearch::Isa isa, std::size_t n) {
    using Table = std::array<CandidateFn, k_fused>;
#define RP_PAIR_TABLE(f) Table{f<1>, f<2>, f<3>, f<4>}
    static const Table scalar = RP_PAIR_TABLE(candidates_scalar);
#ifdef RP_PAIR_X86
    static const Table sse2 = RP_PAIR_TABLE(candidates_sse2), avx2 = RP_PAIR_TABLE(candidates_avx2),
                       avx512bw = RP_PAIR_TABLE(candidates_avx512bw);
    switch (isa) {
        case PairSearch::Isa::avx512bw: return avx512bw[n - 1];
        case PairSearch::Isa::avx2: return avx2[n - 1];
        case PairSearch::Isa::sse2: return sse2[n - 1];
        case PairSearch::Isa::scalar: break;
    }
#else
    (void)isa;
#endif
#undef RP_PAIR_TABLE
    return scalar[n - 1];
}

}  // namespace

std::optional<PairSearch> PairSearch::make(std::vector<Needle> needles, Isa isa) {
    if (!supported(isa)) return std::nullopt;
    for (const auto& n : needles) {
        if (!(n.first < n.second && n.second < n.text.size() && n.second - n.first < 64)) return std::nullopt;
        for (const auto& e : n.except)  // one that is not the needle and more would hide every hit, or none
            if (e.size() <= n.text.size() || !std::string_view(e).starts_with(n.text)) return std::nullopt;
    }
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
    // The blocks that one more whole block follows come from the candidate functions, up to
    // k_fused needles in one pass; the rest of the text is scalar.
    const std::size_t whole = text.size() / 64;
    const std::size_t masked = whole >= 2 ? whole - 1 : 0;
    for (std::size_t g = 0; g < needles_.size(); g += k_fused) {
        const std::size_t n = std::min(k_fused, needles_.size() - g);
        std::array<Search, k_fused> s;
        for (std::size_t j = 0; j < n; ++j) s[j] = Search(text, needles_[g + j], static_cast<unsigned>(g + j), out);
        candidates_for(isa_, n)(s.data(), masked);
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t q = 64 * masked; q + s[j].d < text.size(); ++q)
                if (text[q] == s[j].a && text[q + s[j].d] == s[j].b) s[j].confirm(q);
    }
    // Hits come block by block (a candidate's block is that of its pair, `first` bytes after
    // the occurrence), then each needle's scalar rest, and group (of k_fused needles) after
    // group: sorted here, when they are out of order, by position, then by the needles' order
    // (the index each hit carries), then given their needles' ids.
    const auto by_position = [](const Hit& x, const Hit& y) { return x.pos != y.pos ? x.pos < y.pos : x.id < y.id; };
    if (needles_.size() > 1 && !std::is_sorted(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), by_position))
        std::sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), by_position);
    for (auto it = out.begin() + static_cast<std::ptrdiff_t>(from); it != out.end(); ++it) it->id = needles_[it->id].id;
}

}  // namespace rp::util
