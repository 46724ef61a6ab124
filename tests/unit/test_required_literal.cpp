// required_literal: what a user's regex must contain, read conservatively.
#include <gtest/gtest.h>
#include <pcre2.h>

#include <string>
#include <vector>

#include "matching/matcher.hpp"
#include "matching/required_literal.hpp"

namespace {

using rp::matching::required_literal;

bool pcre2_matches(const std::string& re, const std::string& subject) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), 0, &err, &off, nullptr);
    EXPECT_NE(code, nullptr) << re;
    if (!code) return false;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0;
}

}  // namespace

TEST(RequiredLiteral, TheLongestPlainRunAtTheTopLevel) {
    struct Case {
        const char* regex;
        const char* literal;
    };
    const Case cases[] = {
        // The examples of docs/servers.md.
        {R"(ipop3d\[\d+\]: Login user=(?<user>\S+) host=(?:\S+ )?\[(?<ip>[0-9a-fA-F:.]+)\])", "]: Login user="},
        {R"(my-popd\[(?<pid>\d+)\]: Session from (?<ip>[0-9a-fA-F:.]+)$)", "]: Session from "},
        {R"(my-popd\[(?<pid>\d+)\]: Authentication passed for (?<user>\S+)$)", "]: Authentication passed for "},
        // A quantified character is not required: the run stops before it.
        {"abcd?efg", "efg"},  // on a tie, the later run
        {"abcdefg?", "abcdef"},
        {"xyzw+abc", "abc"},
        {"abcdef{2}gh", "abcde"},
        {"abcdef{2,}gh", "abcde"},
        {"abcdef{2,5}?gh", "abcde"},
        {"abcdef*+gh", "abcde"},
        {"abc{x}defg", "abc{x}defg"},  // not a quantifier: literal braces
        {"ab.cdefg$", "cdefg"},
        {R"(\d+ logged in from (?<ip>\S+))", " logged in from "},
        {R"(a\.b\[c\]d e)", "a.b[c]d e"},
        {"x[abc]yyyy", "yyyy"},
        {"x[]abc]yyyy", "yyyy"},
        {"x[^]a]yyyy", "yyyy"},
        {"x[[:alpha:]]yyyy", "yyyy"},
        {R"(x[\]]yyyy)", "yyyy"},
        {"(a|b)cdef", "cdef"},  // alternation inside a group is fine
        {"(?i:abc)defg", "defg"},
        {"(?<=abc)defg", "defg"},
        {R"(\bword\b and)", " and"},
        {"ab", ""},  // too short
        // Not read: no literal.
        {"abc|defg", ""},
        {"(?i)abcdef", ""},
        {"abc(?x)defgh", ""},
        {R"(\Qa.b\Edefg)", ""},
        {"(*UTF)abcdef", ""},
        {R"(abc\x41defgh)", "abc"},  // ends at an escape it does not read... (see below)
        {"abc(?#x)defgh", ""},
        {"abc{,3}defgh", ""},
        {"abc(def", ""},
        {"abc[def", ""},
        {"abc\\", ""},
    };
    for (const auto& c : cases) {
        if (std::string(c.regex) == R"(abc\x41defgh)") {
            EXPECT_EQ(required_literal(c.regex), "") << c.regex;  // \x..: gives up entirely
            continue;
        }
        EXPECT_EQ(required_literal(c.regex), c.literal) << c.regex;
    }
}

TEST(RequiredLiteral, EveryMatchingLineHoldsTheLiteral) {
    struct Case {
        std::string regex;
        std::vector<std::string> lines;
    };
    const std::vector<Case> cases = {
        {"abcd?efg", {"abcefg", "abcdefg"}},
        {"abcdef{2}gh", {"abcdeffgh"}},
        {"abcdef{0,1}gh", {"abcdegh"}},
        {"ab\\.?cdef", {"abcdef", "ab.cdef"}},
        {"abc(de)?fghij", {"abcfghij", "abcdefghij"}},
        {"héllo+ wörld", {"héllooo wörld"}},  // bytes: the quantifier takes the last byte only
        {"x\\N+yyyy", {"xayyyy"}},
        {"abc\\Kdefg", {"abcdefg"}},
    };
    for (const auto& c : cases) {
        const auto lit = required_literal(c.regex, 1);
        ASSERT_FALSE(lit.empty()) << c.regex;
        for (const auto& line : c.lines) {
            ASSERT_TRUE(pcre2_matches(c.regex, line)) << c.regex << " / " << line;
            EXPECT_NE(line.find(lit), std::string::npos) << c.regex << " / " << line << " / " << lit;
        }
    }
}

TEST(RequiredLiteral, UserPatternsJoinThePrefilterAndStillMatch) {
    rp::matching::PatternSpec p{"mypop", "mypop", {}, "", R"(mypopd\[\d+\]: login ok user=(?<user>\S+) from (?<ip>[0-9a-fA-F:.]+)$)",
                                true, rp::matching::PatternRole::login};
    auto m = rp::matching::Matcher::build({"mypop"}, {p});
    ASSERT_TRUE(m) << m.error().message;
    rp::matching::MatchState st(**m);
    const std::string text =
        "Nov 22 00:31:13 mx1 postfix/smtpd[1]: connect from x[192.0.2.9]\n"
        "Nov 22 00:31:14 mx1 mypopd[77]: login ok user=alice from 2001:db8::7\n"
        "Nov 22 00:31:15 mx1 mypopd[78]: login failed user=bob from 192.0.2.8\n";
    std::vector<std::string> got;
    (*m)->scan(text, rp::core::from_unix_seconds(1'800'000'000), st,
               [&](const rp::matching::LoginMatch& lm) { got.push_back(lm.ip.to_string() + " " + std::string(lm.user)); });
    EXPECT_EQ(got, std::vector<std::string>{"2001:db8::7 alice"});
}
