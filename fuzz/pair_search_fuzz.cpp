// Fuzz target: util::PairSearch against std::string_view::starts_with at every position, on
// every instruction set this CPU runs. Input: a byte giving the number of needles (1-6: more than
// the four searched in one pass), with its high bit exceptions and with the next bit ids shared
// by every other needle; then per needle a length byte (2-9, or up to 71), two bytes choosing the
// pair, the needle's bytes and, with exceptions, a byte choosing them: the needle and 1-4 more
// bytes of the input, and sometimes the needle and that byte as a second one. The rest is the
// text, searched from an exact-size copy (so ASan sees any read past it); then the text repeated
// to 9,000 bytes or more, which a short input never reaches: the SIMD variants work in batches
// of 64 blocks of 64 bytes, and only a text past 4,160 bytes fills one and starts the next.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "util/pair_search.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using rp::util::PairSearch;
    std::size_t at = 0;
    auto next = [&]() -> int { return at < size ? data[at++] : -1; };
    const int count_byte = next();
    if (count_byte < 0) return 0;
    std::vector<PairSearch::Needle> needles;
    const bool excepts = (count_byte & 0x80) != 0;
    for (int i = 0, n = 1 + (count_byte & 0x7f) % 6; i < n; ++i) {
        const int len_b = next(), f = next(), s = next();
        if (len_b < 0 || s < 0) return 0;
        // Mostly short needles; every eighth length byte makes one of up to 71 bytes, so pairs
        // up to 63 apart cross the 64-byte blocks.
        const std::size_t len = 2 + static_cast<std::size_t>(len_b % 8 == 7 ? len_b % 70 : len_b % 8);
        if (size - at < len) return 0;
        const std::size_t first = static_cast<std::size_t>(f) % (len - 1);
        const std::size_t second = std::min(first + 1 + static_cast<std::size_t>(s) % (len - 1 - first), first + 63);
        needles.push_back({std::string(reinterpret_cast<const char*>(data + at), len), first, second, static_cast<unsigned>(i)});
        at += len;
        if (excepts) {  // the needle and 1 to 4 more bytes (the count's low bits), once or twice
            const int extra = next();
            if (extra < 0) return 0;
            const std::size_t more = 1 + static_cast<std::size_t>(extra % 4);
            if (size - at < more) return 0;
            needles.back().except.push_back(needles.back().text + std::string(reinterpret_cast<const char*>(data + at), more));
            if (extra & 4) needles.back().except.push_back(needles.back().text + std::string(1, static_cast<char>(extra)));
            at += more;
        }
        if (count_byte & 0x40) needles.back().id = static_cast<unsigned>(i) % 2;  // ids shared by needles
    }
    auto check = [&](const std::uint8_t* bytes, std::size_t n, std::size_t copies) {
        const auto text = std::make_unique<char[]>(n * copies);
        for (std::size_t c = 0; c < copies && n; ++c) std::memcpy(text.get() + c * n, bytes, n);
        const std::string_view view(text.get(), n * copies);
        std::vector<PairSearch::Hit> want;
        for (std::size_t pos = 0; pos < view.size(); ++pos)
            for (const auto& nd : needles)
                if (view.substr(pos).starts_with(nd.text) &&
                    std::none_of(nd.except.begin(), nd.except.end(), [&](const std::string& e) { return view.substr(pos).starts_with(e); }))
                    want.push_back({pos, nd.id});
        for (auto isa : {PairSearch::Isa::scalar, PairSearch::Isa::sse2, PairSearch::Isa::avx2, PairSearch::Isa::avx512bw}) {
            if (!PairSearch::supported(isa)) continue;
            auto search = PairSearch::make(needles, isa);
            if (!search) std::abort();
            std::vector<PairSearch::Hit> got;
            search->find(view, got);
            if (got != want) std::abort();
        }
    };
    const std::size_t n = size - at;
    check(data + at, n, 1);
    if (n > 0 && n < 9000) check(data + at, n, 9000 / n + 1);
    return 0;
}
