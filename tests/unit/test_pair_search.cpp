// util::PairSearch: every occurrence of each needle, in order, the same on every instruction set
// this CPU runs as on the scalar code and as std::string_view::find; and the matcher's prefilter
// with a pair literal ("Login: ") keeps exactly the lines that hold a literal.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "matching/matcher.hpp"
#include "util/pair_search.hpp"

namespace {

using rp::util::PairSearch;
using Hit = PairSearch::Hit;

const PairSearch::Isa k_isas[] = {PairSearch::Isa::scalar, PairSearch::Isa::sse2, PairSearch::Isa::avx2,
                                  PairSearch::Isa::avx512bw};

std::vector<Hit> naive(std::string_view text, const std::vector<PairSearch::Needle>& needles) {
    std::vector<Hit> out;
    for (std::size_t pos = 0; pos < text.size(); ++pos)
        for (const auto& n : needles) {
            const auto rest = text.substr(pos);
            if (rest.starts_with(n.text) &&
                std::none_of(n.except.begin(), n.except.end(), [&](const std::string& e) { return rest.starts_with(e); }))
                out.push_back({pos, n.id});
        }
    return out;
}

std::vector<Hit> found(const PairSearch& s, std::string_view text) {
    // A copy of exactly the text's size, so that ASan (scripts/test.sh) sees any read past it.
    const auto copy = std::make_unique<char[]>(text.size());
    std::copy(text.begin(), text.end(), copy.get());
    std::vector<Hit> out{{12345, 99}};  // find() appends: what was there stays
    s.find(std::string_view(copy.get(), text.size()), out);
    EXPECT_EQ(out.front(), (Hit{12345, 99}));
    out.erase(out.begin());
    return out;
}

// Every instruction set this CPU runs finds `want` in `text`.
void expect_every_isa(const std::vector<PairSearch::Needle>& needles, std::string_view text,
                      const std::vector<Hit>& want, const std::string& context) {
    for (const auto isa : k_isas) {
        if (!PairSearch::supported(isa)) continue;
        auto s = PairSearch::make(needles, isa);
        ASSERT_TRUE(s);
        ASSERT_EQ(found(*s, text), want) << PairSearch::isa_name(isa) << " " << context;
    }
}

TEST(PairSearch, FindsEveryOccurrenceInOrder) {
    struct Case {
        std::string text;
        std::vector<PairSearch::Needle> needles;
        std::vector<Hit> hits;
    };
    const std::string pad(100, '.');
    const std::vector<Case> cases = {
        {"", {{"Login: ", 0, 4, 7}}, {}},
        {"Login: ", {{"Login: ", 0, 4, 7}}, {{0, 7}}},
        {"Login:", {{"Login: ", 0, 4, 7}}, {}},  // cut short at the end
        {"imap-login: Login: user=<a>", {{"Login: ", 0, 4, 7}}, {{12, 7}}},
        {"Lxxxn Login: LoginLogin: ", {{"Login: ", 0, 4, 7}}, {{6, 7}, {18, 7}}},  // a pair alone is no hit
        {pad + "Login: " + pad + "Login: ", {{"Login: ", 0, 4, 1}}, {{100, 1}, {207, 1}}},
        // overlapping occurrences, and two needles ordered by position, then by needle order
        {"aaaa", {{"aa", 0, 1, 3}}, {{0, 3}, {1, 3}, {2, 3}}},
        {pad + "xyz" + pad, {{"yz", 0, 1, 2}, {"xyz", 0, 2, 1}}, {{100, 1}, {101, 2}}},
        {pad + "abc", {{"abc", 0, 2, 1}, {"abc", 1, 2, 2}}, {{100, 1}, {100, 2}}},
        // a pair whose second byte is in the next 64-byte block, and one at the very end
        {std::string(62, '.') + "Login: " + std::string(70, '.'), {{"Login: ", 0, 4, 0}}, {{62, 0}}},
        {std::string(200, '.') + "Login: ", {{"Login: ", 2, 5, 0}}, {{200, 0}}},
        // a pair 63 bytes apart
        {pad + "A" + std::string(62, '-') + "B" + pad, {{"A" + std::string(62, '-') + "B", 0, 63, 5}}, {{100, 5}}},
        // two needles at one position whose pairs lie in different blocks: still the needles' order
        {std::string(63, '.') + "xab" + pad, {{"xab", 1, 2, 1}, {"xa", 0, 1, 2}}, {{63, 1}, {63, 2}}},
        {std::string(63, '.') + "xab" + pad, {{"xa", 0, 1, 2}, {"xab", 1, 2, 1}}, {{63, 2}, {63, 1}}},
        // exceptions: Dovecot's own "pop3-login: " and "pop3(" are no hit of "pop"
        {pad + "pop3-login: pop3(a) popper", {{"pop", 0, 2, 4, {"pop3-login: ", "pop3("}}}, {{120, 4}}},
        {"pop3-logi", {{"pop", 0, 2, 4, {"pop3-login: "}}}, {{0, 4}}},  // an exception cut short is none
        // needles that share an id keep their order in the needles (their hits alike apart from it)
        {pad + "abcd", {{"ab", 0, 1, 7}, {"abc", 0, 2, 8}, {"abcd", 0, 3, 7}}, {{100, 7}, {100, 8}, {100, 7}}},
        // more needles than one pass takes (4): two passes, merged by position
        {pad + "abcdefg",
         {{"fg", 0, 1, 6}, {"ef", 0, 1, 5}, {"de", 0, 1, 4}, {"cd", 0, 1, 3}, {"bc", 0, 1, 2}, {"ab", 0, 1, 1}},
         {{100, 1}, {101, 2}, {102, 3}, {103, 4}, {104, 5}, {105, 6}}},
    };
    for (const auto isa : k_isas) {
        if (!PairSearch::supported(isa)) continue;
        for (const auto& c : cases) {
            auto s = PairSearch::make(c.needles, isa);
            ASSERT_TRUE(s);
            EXPECT_EQ(found(*s, c.text), c.hits) << PairSearch::isa_name(isa) << ": " << c.text;
            EXPECT_EQ(naive(c.text, c.needles), c.hits) << c.text;
        }
    }
}

TEST(PairSearch, EveryInstructionSetAgreesWithFind) {
    // Texts over a few letters, so pairs and near-occurrences abound; lengths around the 64-byte
    // blocks and the 4 KiB batches (64 blocks) of the wide variants.
    std::mt19937 rng(20261207);
    const std::string alphabet = "Lo gin:\n";
    auto word = [&](std::size_t n) {
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
        return s;
    };
    std::size_t total = 0;
    for (int round = 0; round < 400; ++round) {
        std::vector<std::size_t> sizes = {0, 1, 63, 64, 65, 127, 128, 129, 191, 4095, 4096, 4097, 4160, 4225};
        const std::size_t size = round < 14 ? sizes[round] : rng() % 9000;
        std::string text = word(size);
        std::vector<PairSearch::Needle> needles;
        // 1 to 6 needles (one pass takes 4), now and then a long one (pairs up to 63 apart) or
        // one with an exception (the needle and one more letter).
        const int count = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < count; ++i) {
            const std::size_t len = rng() % 8 == 0 ? 2 + rng() % 70 : 2 + rng() % 6;
            const std::size_t first = rng() % (len - 1);
            std::size_t second = std::min(first + 1 + rng() % (len - 1 - first), first + 63);
            if (len >= 65 && rng() % 2) second = first + 63 < len ? first + 63 : len - 1;  // the widest pairs
            needles.push_back({word(len), first, second, static_cast<unsigned>(i)});
            if (rng() % 3 == 0) needles.back().except.push_back(needles.back().text + word(1));
        }
        const auto want = naive(text, needles);
        total += want.size();
        expect_every_isa(needles, text, want, "round " + std::to_string(round));
        if (HasFatalFailure()) return;
    }
    EXPECT_GT(total, 10000U);  // the comparison had something to compare
}

// Texts of every size up to four blocks, each ending in an occurrence of a needle whose pair
// spans d bytes (and another just before it), exact-size copies: a search that reads one byte
// past the text (a block taken one too many, for the wide pairs) fails here under ASan, and one
// that leaves the last occurrences unfound fails in any build.
TEST(PairSearch, EveryDistanceAtEveryEnd) {
    std::size_t total = 0;
    for (const unsigned d : {1u, 2u, 31u, 32u, 33u, 62u, 63u}) {
        std::string needle(d + 1, '-');
        needle.front() = 'A';
        needle.back() = 'B';
        const std::vector<PairSearch::Needle> needles = {{needle, 0, d, 1}, {"xy", 0, 1, 2}};
        for (std::size_t size = 0; size <= 260; ++size) {
            std::string text(size, '.');
            if (size >= needle.size()) text.replace(size - needle.size(), needle.size(), needle);
            if (size >= needle.size() + 2) text.replace(size - needle.size() - 2, 2, "xy");
            const auto want = naive(text, needles);
            total += want.size();
            expect_every_isa(needles, text, want, "d " + std::to_string(d) + " size " + std::to_string(size));
            if (HasFatalFailure()) return;
        }
    }
    EXPECT_GT(total, 2000U);
}

TEST(PairSearch, RejectsAPairOutsideItsNeedle) {
    EXPECT_TRUE(PairSearch::make({{"Login: ", 0, 4, 0}}, PairSearch::Isa::scalar));
    EXPECT_FALSE(PairSearch::make({{"Login: ", 4, 4, 0}}, PairSearch::Isa::scalar));  // not two bytes
    EXPECT_FALSE(PairSearch::make({{"Login: ", 4, 0, 0}}, PairSearch::Isa::scalar));
    EXPECT_FALSE(PairSearch::make({{"Login: ", 0, 7, 0}}, PairSearch::Isa::scalar));  // past the end
    EXPECT_FALSE(PairSearch::make({{std::string(70, 'a'), 0, 64, 0}}, PairSearch::Isa::scalar));  // 64 apart
    EXPECT_TRUE(PairSearch::make({{std::string(70, 'a'), 1, 64, 0}}, PairSearch::Isa::scalar));
    // Exceptions must begin with the needle and go on: else they would hide every hit, or none.
    EXPECT_TRUE(PairSearch::make({{"pop", 0, 2, 0, {"pop3("}}}, PairSearch::Isa::scalar));
    for (const char* bad : {"", "po", "pop", "pip3(", "xpop"})
        EXPECT_FALSE(PairSearch::make({{"pop", 0, 2, 0, {"pop3(", bad}}}, PairSearch::Isa::scalar)) << bad;
    EXPECT_TRUE(PairSearch::supported(PairSearch::Isa::scalar));
    EXPECT_TRUE(PairSearch::supported(PairSearch::best_isa()));
}

// Every byte pair of the built-in patterns is valid, on any CPU (the matcher makes the pair
// search only with AVX2; the scalar code checks the same rules).
TEST(PairSearch, EveryBuiltInPairIsValid) {
    std::size_t pairs = 0;
    for (const auto& p : rp::matching::builtin_patterns())
        for (const auto& l : p.literals)
            if (l.pair) {
                ++pairs;
                EXPECT_TRUE(PairSearch::make({{l.text, l.pair->first, l.pair->second, 0}}, PairSearch::Isa::scalar))
                    << p.server << "/" << p.name << ": " << l.text;
            }
    EXPECT_GE(pairs, 1U);
}

// The built-in matcher finds "Login: " by its pair: the prefilter keeps exactly the lines that
// hold one of its literals (Literal::occurs_in), wherever they fall in the buffer.
TEST(PairSearch, PrefilterKeepsTheLinesWithALiteral) {
    auto m = rp::matching::Matcher::build({}, {});
    ASSERT_TRUE(m) << m.error().message;
    const std::vector<std::string> kinds = {
        "Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<ann>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1",
        "Nov 22 00:31:13 mx1 dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.9",
        "Nov 22 00:31:13 mx1 dovecot: pop3-login: Login: user=<bo>, method=PLAIN, rip=2001:db8::5, lip=::1",
        "Nov 22 00:31:13 mx1 dovecot: imap(ann)<1><x>: Logged out in=0 out=0",
        "Nov 22 00:31:13 mx1 postfix/smtpd[1]: connect from unknown[203.0.113.7]",
        "Login: ",
        "Lxxxn Login:",
        "Nov 22 00:31:14 mx1 popa3d[101]: Authentication passed for bob",
    };
    std::mt19937 rng(7);
    std::string text;
    std::vector<std::string> want;
    std::vector<rp::matching::Literal> literals;  // the built-in sets', each with its exceptions
    for (const auto& p : rp::matching::builtin_patterns()) literals.insert(literals.end(), p.literals.begin(), p.literals.end());
    for (int i = 0; i < 3000; ++i) {
        std::string line = kinds[rng() % kinds.size()].substr(0, 40 + rng() % 80);
        text += line + "\n";
        if (std::any_of(literals.begin(), literals.end(), [&](const auto& l) { return l.occurs_in(line); }))
            want.push_back(line);
    }
    rp::matching::MatchState state(**m);
    std::vector<std::string> got;
    (*m)->for_each_candidate(text, state, [&](std::size_t b, std::size_t e) { got.push_back(text.substr(b, e - b)); });
    EXPECT_EQ(got, want);
    EXPECT_GT(want.size(), 1000U);
}

// The prefilter pair-searches 64 KiB at a time: an occurrence that begins just before a window's
// end and ends in the next is found once, and one that begins at its end too.
TEST(PairSearch, PrefilterFindsLiteralsAcrossItsWindows) {
    auto m = rp::matching::Matcher::build({"dovecot"}, {});
    ASSERT_TRUE(m) << m.error().message;
    const std::string login = "mx dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1";
    const std::size_t at = login.find("Login: ");
    for (std::size_t start : {std::size_t{65536} - 3, std::size_t{65536}, std::size_t{131072} - 6}) {
        // filler lines (no literal) up to the line whose "Login: " begins at `start`
        std::string text;
        while (text.size() + 100 < start - at) text += std::string(60, 'x') + "\n";
        text += std::string(start - at - text.size() - 1, 'y') + "\n";
        text += login + "\n" + std::string(70000, 'z') + "\n";
        ASSERT_EQ(text.find("Login: "), start);
        rp::matching::MatchState state(**m);
        std::vector<std::string> got;
        (*m)->for_each_candidate(text, state, [&](std::size_t b, std::size_t e) { got.push_back(text.substr(b, e - b)); });
        EXPECT_EQ(got, std::vector<std::string>{login}) << start;
    }
}

}  // namespace
