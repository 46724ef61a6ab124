// Matcher::for_each_candidate (the literal prefilter alone, which the FIFO and datagram sources
// run before queuing): scanning only the lines it keeps finds exactly the logins, in the same
// order, that scanning every line finds, two-line servers (popa3d) included; noise is left out;
// with a [[pattern]] that has no literal every line is kept.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "matching/matcher.hpp"

namespace {

using rp::matching::Matcher;
using rp::matching::MatchState;

const char* const k_log =
    "Nov 22 00:31:13 mx1 postfix/smtpd[123]: connect from unknown[203.0.113.7]\n"
    "Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<ann>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1\n"
    "Nov 22 00:31:13 mx1 popa3d[101]: Session from 192.0.2.91\n"
    "Nov 22 00:31:13 mx1 postfix/smtpd[123]: disconnect from unknown[203.0.113.7]\n"
    "Nov 22 00:31:14 mx1 popa3d[101]: Authentication passed for bob\n"
    "Nov 22 00:31:14 mx1 kernel: eth0 link up\n"
    "Nov 22 00:31:15 mx1 dovecot: pop3-login: Login: user=<cy>, method=PLAIN, rip=192.0.2.11, lip=192.0.2.1";

std::vector<std::string> logins(const Matcher& m, std::string_view text) {
    MatchState state(m);
    std::vector<std::string> out;
    m.scan(text, rp::core::from_unix_seconds(1'900'000'000), state,
           [&](const rp::matching::LoginMatch& hit) { out.push_back(std::string(hit.user) + "@" + hit.ip.to_string()); });
    return out;
}

std::string candidates(const Matcher& m, std::string_view text, std::size_t* kept = nullptr) {
    MatchState state(m);
    std::string out;
    std::size_t n = 0;
    m.for_each_candidate(text, state, [&](std::size_t b, std::size_t e) {
        ++n;
        out.append(text.substr(b, e - b));
        out.push_back('\n');
    });
    if (kept != nullptr) *kept = n;
    return out;
}

TEST(CandidateFilter, KeepsExactlyWhatScanNeeds) {
    auto m = Matcher::build({}, {});
    ASSERT_TRUE(m) << m.error().message;
    std::size_t kept = 0;
    const auto only = candidates(**m, k_log, &kept);
    EXPECT_EQ(logins(**m, only), logins(**m, k_log));
    EXPECT_EQ(logins(**m, k_log), (std::vector<std::string>{"ann@192.0.2.10", "bob@192.0.2.91", "cy@192.0.2.11"}));
    EXPECT_EQ(kept, 4U) << only;  // the postfix and kernel lines are noise
    EXPECT_EQ(only.find("postfix"), std::string::npos);
}

TEST(CandidateFilter, PatternWithoutLiteralKeepsEveryLine) {
    rp::matching::PatternSpec p;
    p.server = "mine";
    p.name = "any";
    p.regex = "(?<ip>[0-9.]+)";  // no plain run to use as a literal
    p.whole_line = true;
    auto m = Matcher::build({"dovecot", "mine"}, {p});
    ASSERT_TRUE(m) << m.error().message;
    std::size_t kept = 0;
    candidates(**m, k_log, &kept);
    EXPECT_EQ(kept, 7U);
}

TEST(CandidateFilter, EmptyAndNoiseOnly) {
    auto m = Matcher::build({"dovecot"}, {});
    ASSERT_TRUE(m);
    std::size_t kept = 1;
    EXPECT_EQ(candidates(**m, "", &kept), "");
    EXPECT_EQ(kept, 0U);
    EXPECT_EQ(candidates(**m, "a\nb\nc\n", &kept), "");
    EXPECT_EQ(kept, 0U);
}

}  // namespace
