// Pair search: every occurrence of a few literals in a buffer, found by two bytes of each
// literal, compared 64 positions at a time with SIMD, then confirmed whole.
//
// What it is for: the log prefilter's engine, Hyperscan's Teddy, first looks for each literal's
// LAST THREE BYTES and confirms each place they occur. A literal whose last bytes are everywhere
// in mail logs costs it a confirmation on most lines ("Login: " ends in "n: ", as every Dovecot
// "imap-login: " does). A pair of the literal's bytes chosen for rarity ('L' and the 'n' four
// bytes on, for "Login: ") leaves almost no false candidates, and one pass over a buffer already
// in the cache costs less than those confirmations (docs/benchmarks.md, "Pair search, a cheaper
// Dovecot regex, a shorter calibration"). A needle may also list exceptions, dropped as they
// are confirmed ("pop" in Dovecot's own "pop3-login: ", a hit on most of its POP lines that
// Hyperscan reported through a callback each); up to four needles share one pass.
//
// The widest instruction set the CPU and kernel support is used (AVX-512BW, AVX2, SSE2; scalar
// code elsewhere, slow: for tests and other CPUs; the matcher uses the pair search only with
// AVX2 or AVX-512BW); every variant gives the same results (tests/unit/test_pair_search.cpp,
// fuzz/pair_search_fuzz.cpp). The enumerators are in order of width.
//
// Thread-safety: immutable after construction; find() may run on any number of threads at once.
// Security: the text is untrusted. Reads stay inside it: a 64-byte block is compared with SIMD
// only when a whole block follows it (its second load reaches up to 63 bytes into that one), the
// rest by scalar code. find() allocates only to grow the caller's vector (16 bytes per hit:
// callers bound the text they pass, see Matcher::prefilter_piece).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rp::util {

class PairSearch {
public:
    enum class Isa { scalar, sse2, avx2, avx512bw };

    struct Needle {
        std::string text;
        std::size_t first = 0, second = 0;  // the pair: first < second < text.size(), second - first < 64
        unsigned id = 0;                    // reported with its hits
        std::vector<std::string> except = {};  // an occurrence that begins one of these (each the
                                               // needle and more) is no hit
    };
    struct Hit {
        std::size_t pos;  // where the occurrence begins
        unsigned id;
        bool operator==(const Hit&) const = default;
    };

    // Nullopt when a needle breaks the pair's rules above or has an exception that does not
    // begin with it and go on, or `isa` is not supported here.
    static std::optional<PairSearch> make(std::vector<Needle> needles, Isa isa = best_isa());

    // The widest instruction set this CPU runs (with the kernel saving its registers).
    static Isa best_isa();
    static bool supported(Isa isa);
    static std::string_view isa_name(Isa isa);

    // Appends every occurrence of every needle in `text` (overlapping ones too) that none of its
    // exceptions begins, ordered by position, then by the needles' order. With AVX2 or
    // AVX-512BW, up to four needles are searched in one pass over the text.
    void find(std::string_view text, std::vector<Hit>& out) const;

    Isa isa() const { return isa_; }
    const std::vector<Needle>& needles() const { return needles_; }
    std::size_t max_length() const;  // of the needles' texts

private:
    PairSearch(std::vector<Needle> n, Isa isa) : needles_(std::move(n)), isa_(isa) {}
    std::vector<Needle> needles_;
    Isa isa_;
};

}  // namespace rp::util
