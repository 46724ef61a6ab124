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

// Each variant fills, for `count` 64-byte blocks from p, the bit masks of the bytes equal to
// a (ma) and to b (mb): bit t of ma[k] is p[64k + t] == a. The blocks are whole: the caller
// passes no block that reaches past the text. Only this part differs between instruction sets.
using MaskFn = void (*)(const char* p, std::size_t count, char a, char b, std::uint64_t* ma, std::uint64_t* mb);

void masks_scalar(const char* p, std::size_t count, char a, char b, std::uint64_t* ma, std::uint64_t* mb) {
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        std::uint64_t x = 0, y = 0;
        for (unsigned t = 0; t < 64; ++t) {
            x |= std::uint64_t{p[t] == a} << t;
            y |= std::uint64_t{p[t] == b} << t;
        }
        ma[k] = x;
        mb[k] = y;
    }
}

#ifdef RP_PAIR_X86
__attribute__((target("sse2"))) void masks_sse2(const char* p, std::size_t count, char a, char b, std::uint64_t* ma,
                                                std::uint64_t* mb) {
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        std::uint64_t x = 0, y = 0;
        for (unsigned q = 0; q < 4; ++q) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * q));
            x |= std::uint64_t(static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, va)))) << (16 * q);
            y |= std::uint64_t(static_cast<std::uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, vb)))) << (16 * q);
        }
        ma[k] = x;
        mb[k] = y;
    }
}

__attribute__((target("avx2"))) void masks_avx2(const char* p, std::size_t count, char a, char b, std::uint64_t* ma,
                                                std::uint64_t* mb) {
    const __m256i va = _mm256_set1_epi8(a), vb = _mm256_set1_epi8(b);
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
        ma[k] = std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, va)))) |
                std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, va)))) << 32;
        mb[k] = std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, vb)))) |
                std::uint64_t(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, vb)))) << 32;
    }
}

__attribute__((target("avx512f,avx512bw"))) void masks_avx512bw(const char* p, std::size_t count, char a, char b,
                                                                std::uint64_t* ma, std::uint64_t* mb) {
    const __m512i va = _mm512_set1_epi8(a), vb = _mm512_set1_epi8(b);
    for (std::size_t k = 0; k < count; ++k, p += 64) {
        const __m512i v = _mm512_loadu_si512(p);
        ma[k] = _mm512_cmpeq_epi8_mask(v, va);
        mb[k] = _mm512_cmpeq_epi8_mask(v, vb);
    }
}
#endif

MaskFn masks_for(PairSearch::Isa isa) {
#ifdef RP_PAIR_X86
    switch (isa) {
        case PairSearch::Isa::avx512bw: return masks_avx512bw;
        case PairSearch::Isa::avx2: return masks_avx2;
        case PairSearch::Isa::sse2: return masks_sse2;
        case PairSearch::Isa::scalar: break;
    }
#else
    (void)isa;
#endif
    return masks_scalar;
}

// Blocks whose masks are computed in one call: 4 KiB of text, 1 KiB of masks on the stack.
constexpr std::size_t k_batch = 64;

// One needle over `text`: the positions q where text[q] == a and text[q + d] == b (a, b the
// pair's bytes, d their distance) are candidates for an occurrence at q - first, confirmed whole.
void find_one(std::string_view text, const PairSearch::Needle& n, MaskFn masks, std::vector<PairSearch::Hit>& out) {
    const std::size_t len = n.text.size();
    if (text.size() < len) return;
    const char a = n.text[n.first], b = n.text[n.second];
    const unsigned d = static_cast<unsigned>(n.second - n.first);  // 1..63
    const char* p = text.data();
    const std::size_t size = text.size();
    auto confirm = [&](std::size_t q) {
        if (q < n.first) return;
        const std::size_t s = q - n.first;
        if (s + len <= size && std::memcmp(p + s, n.text.data(), len) == 0) out.push_back({s, n.id});
    };
    // Block k's candidates need block k + 1's mb (the b of a pair may lie in the next block), so
    // the masked part ends one whole block before the text does; the rest is scalar.
    const std::size_t whole = size / 64;
    const std::size_t masked = whole >= 2 ? whole - 1 : 0;  // blocks whose candidates come from masks
    std::uint64_t ma[k_batch + 1], mb[k_batch + 1];
    for (std::size_t k0 = 0; k0 < masked; k0 += k_batch) {
        const std::size_t count = std::min(k_batch, masked - k0);
        masks(p + 64 * k0, count + 1, a, b, ma, mb);  // block k0 + count exists: k0 + count <= whole - 1
        for (std::size_t k = 0; k < count; ++k) {
            std::uint64_t hits = ma[k] & ((mb[k] >> d) | ((mb[k + 1] << 1) << (63 - d)));
            while (hits) {
                confirm(64 * (k0 + k) + static_cast<std::size_t>(__builtin_ctzll(hits)));
                hits &= hits - 1;
            }
        }
    }
    for (std::size_t q = 64 * masked; q + d < size; ++q)
        if (p[q] == a && p[q + d] == b) confirm(q);
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
    const MaskFn masks = masks_for(isa_);
    for (const auto& n : needles_) find_one(text, n, masks, out);
    // Each needle's hits are in order; several needles' are merged (ties keep the needles' order).
    if (needles_.size() > 1)
        std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(),
                         [](const Hit& x, const Hit& y) { return x.pos < y.pos; });
}

}  // namespace rp::util
