// Table-driven tests of the built-in patterns and the syslog framings.
#include <atomic>
#include <cstring>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "matching/matcher.hpp"
#include "matching/syslog_line.hpp"

using namespace rp;
using matching::Matcher;
using matching::MatchState;

namespace {

struct UtcZone {
    UtcZone() {
        setenv("TZ", "UTC", 1);
        tzset();
    }
};

const core::Time k_now = core::from_unix_seconds(1795480463);  // 2026-11-24T00:34:23Z

std::shared_ptr<const Matcher> all() {
    static auto m = *Matcher::build({}, {});
    return m;
}

struct Case {
    const char* line;
    const char* ip;    // nullptr = no login
    const char* user;
};

}  // namespace

TEST(Matching, DovecotPositivesAndNegatives) {
    UtcZone tz;
    const Case cases[] = {
        // 2.3 through syslog, classic, ISO and RFC 5424 framing
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=123, TLS, session=<AbCd>",
         "192.0.2.10", "alice"},
        {"2026-11-22T00:34:23.322872+00:00 mx1 dovecot: pop3-login: Login: user=<bob@example.org>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, mpid=9, session=<x>",
         "198.51.100.7", "bob@example.org"},
        {"<22>1 2026-11-22T00:34:23.322872+00:00 mx1 dovecot - - -  imap-login: Login: user=<carol>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, mpid=9, session=<x>",
         "203.0.113.9", "carol"},
        {"<22>Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<dave>, method=PLAIN, rip=203.0.113.10, lip=192.0.2.1, mpid=1, session=<x>",
         "203.0.113.10", "dave"},
        {"Nov 22 00:31:13 mail.info mx1 dovecot: imap-login: Login: user=<erin>, method=PLAIN, rip=203.0.113.11, lip=192.0.2.1, mpid=1, session=<x>",
         "203.0.113.11", "erin"},
        // Dovecot's own log file
        {"Nov 22 00:31:13 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.3, lip=127.0.0.1, mpid=14305, session=<x>",
         "127.0.0.3", "alice"},
        {"Nov 22 00:31:13 pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.2, lip=127.0.0.1, mpid=1, secured, session=<x>",
         "127.0.0.2", "alice"},
        // 2.4
        {"2026-11-22T00:34:23+00:00 mx1 dovecot: imap-login: Logged in: user=<alice>, method=PLAIN, rip=192.0.2.20, lip=192.0.2.1, mpid=5, session=<x>",
         "192.0.2.20", "alice"},
        {"Nov 22 00:31:13 imap-login: Info: Logged in: user=<alice>, method=PLAIN, rip=192.0.2.21, lip=192.0.2.1, mpid=5, session=<x>",
         "192.0.2.21", "alice"},
        // a custom instance_name becomes the tag
        {"Nov 22 00:31:13 mx1 dovecot-edge: imap-login: Login: user=<i>, method=PLAIN, rip=192.0.2.33, lip=192.0.2.1, mpid=1, session=<x>",
         "192.0.2.33", "i"},
        // 2.0 field order (session before method), IPv6, v4-mapped, tag with pid
        {"Nov 22 00:31:13 mx1 dovecot[77]: imap-login: Login: user=<f>, session=<x>, method=PLAIN, rip=2001:DB8::7, lip=2001:db8::1",
         "2001:db8::7", "f"},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<g>, method=PLAIN, rip=::ffff:203.0.113.5, lip=::ffff:192.0.2.1, mpid=1, session=<x>",
         "203.0.113.5", "g"},
        // a user name imitating fields: the real rip (the last) wins
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<x>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1>, method=PLAIN, rip=192.0.2.44, lip=192.0.2.1, mpid=1, session=<y>",
         "192.0.2.44", "x"},
        // commas inside later fields (login_log_format_elements): the fields after the user are
        // backtracked a field at a time, the last rip= first
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<c,d>, method=PLAIN, rip=192.0.2.45, lip=192.0.2.1, x=a,,b,, mpid=1, session=<y>",
         "192.0.2.45", "c,d"},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<e>, method=PLAIN, rip=192.0.2.46, lip=192.0.2.1, note=, rip=zz",
         "192.0.2.46", "e"},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<e>, rip=192.0.2.47,rip=192.0.2.48, rip=192.0.2.49", "192.0.2.49", "e"},
        // failures, aborts, limits, other services: nothing
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, session=<x>", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, session=<x>", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, session=<x>", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10): user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: submission-login: Login: user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=1, session=<x>", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: managesieve-login: Login: user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=1", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap(alice)<123><x>: Logged out in=1 out=2 rip=192.0.2.10", nullptr, nullptr},
        // a failed login whose user name holds a whole fake success line
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<imap-login: Login: user=<a>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1", nullptr, nullptr},
        // malformed addresses
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.168.123, lip=192.0.2.1, mpid=1", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=xx.xx.xx.xx, lip=192.0.2.1, mpid=1", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.300, lip=192.0.2.1, mpid=1", nullptr, nullptr},
        // not the server's tag
        {"Nov 22 00:31:13 mx1 postfix/smtpd[1]: warning: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 alice: dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1", nullptr, nullptr},
        // truncated
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1", "192.0.2.1", "a"},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=", nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a", nullptr, nullptr},
        {"", nullptr, nullptr},
        {"\x01\x02\xff\xfe Login: user=<", nullptr, nullptr},
    };
    MatchState st(*all());
    for (const auto& c : cases) {
        auto m = all()->match_line(c.line, k_now, st);
        if (!c.ip) {
            EXPECT_FALSE(m) << c.line;
            continue;
        }
        ASSERT_TRUE(m) << c.line;
        EXPECT_EQ(m->ip.to_string(), c.ip) << c.line;
        EXPECT_EQ(m->user, c.user) << c.line;
        EXPECT_EQ(m->server, "dovecot");
    }
}

// The Dovecot regex walks the fields after the user a comma at a time, on the JIT's stack
// (builtin_patterns.cpp): a login message just under the length cap whose fields after the user
// are nearly all commas still grants, with its session id; at the cap it is refused whatever the
// regex does.
TEST(Matching, DovecotLoginWithManyCommasUnderTheLengthCap) {
    UtcZone tz;
    const std::string head = "Nov 22 00:31:13 mx1 dovecot: ";
    auto message = [](std::size_t commas) {
        return "imap-login: Login: user=<u>, method=PLAIN, rip=192.0.2.61, x=" + std::string(commas, ',') +
               ", session=<s1>";
    };
    std::size_t commas = 0;
    while (message(commas + 1).size() < matching::k_max_login_message_bytes) ++commas;
    ASSERT_GT(commas, 700u);
    MatchState st(*all());
    const std::string line = head + message(commas);  // the match's views point into it
    auto m = all()->match_line(line, k_now, st);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->ip.to_string(), "192.0.2.61");
    EXPECT_EQ(m->session, "s1");
    EXPECT_EQ(m->user, "u");
    const auto long_lines = st.long_lines();
    EXPECT_FALSE(all()->match_line(head + message(commas + 1), k_now, st));  // at the cap
    EXPECT_EQ(st.long_lines(), long_lines + 1) << "refused by the cap, not by the regex";
}

TEST(Matching, ScanFindsEachLoginOnceInABuffer) {
    UtcZone tz;
    std::string buf;
    for (int i = 0; i < 50; ++i) {
        buf += "Nov 22 00:31:13 mx1 postfix/smtpd[1]: connect from unknown[192.0.2.1]\n";
        buf += "Nov 22 00:31:13 mx1 dovecot: imap-login: Logged in: user=<u" + std::to_string(i) +
               ">, method=PLAIN, rip=192.0.2." + std::to_string(i) + ", lip=192.0.2.1, mpid=1, session=<x>\n";
        buf += "Nov 22 00:31:14 mx1 dovecot: pop3-login: Login: user=<v" + std::to_string(i) +
               ">, method=PLAIN, rip=198.51.100." + std::to_string(i) + ", lip=192.0.2.1, mpid=1, session=<x>";
        if (i != 49) buf += "\n";  // last line without newline still counts
    }
    MatchState st(*all());
    int n = 0;
    all()->scan(buf, k_now, st, [&](const matching::LoginMatch&) { ++n; });
    EXPECT_EQ(n, 100);
}

TEST(Matching, UserPatternsAndSelection) {
    std::vector<matching::PatternSpec> user = {
        {"mypop", "mypop", {}, "", R"(mypop\[\d+\]: login ok user=(?<user>\S+) from (?<ip>[0-9a-fA-F:.]+)$)", true}};
    auto m = Matcher::build({"mypop"}, user);
    ASSERT_TRUE(m);
    MatchState st(**m);
    auto hit = (*m)->match_line("Nov 22 00:31:13 mx1 mypop[9]: login ok user=zed from 192.0.2.99", k_now, st);
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->ip.to_string(), "192.0.2.99");
    EXPECT_EQ(hit->server, "mypop");
    // dovecot is not selected
    EXPECT_FALSE((*m)->match_line("Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1, lip=1.1.1.1", k_now, st));
    EXPECT_FALSE(Matcher::build({"nosuch"}, {}));
    auto bad = Matcher::build({}, {{"x", "x", {}, "", "(?<ip>[", true}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("pattern 'x'"), std::string::npos);
    EXPECT_FALSE(Matcher::build({}, {{"y", "y", {}, "", "no ip group", true}}));
}

TEST(SyslogLine, Framings) {
    using matching::TimeFormat;
    struct Case {
        const char* line;
        TimeFormat format;
        const char *host, *tag, *pid, *message;
    };
    const Case cases[] = {
        {"Nov  2 00:31:13 mx1 cyrus/imap[123]: login: host [192.0.2.1] u plain User logged in", TimeFormat::rfc3164,
         "mx1", "cyrus/imap", "123", "login: host [192.0.2.1] u plain User logged in"},
        {"<22>1 2026-11-22T00:34:23.3+00:00 mx1 cyrus 77 - [meta x=\"a]b\"]  hello world", TimeFormat::rfc3339,
         "mx1", "cyrus", "77", "hello world"},
        {"@4000000063f1a2b31c2d3e4f dovecot: imap-login: x", TimeFormat::tai64n, "", "dovecot", "", "imap-login: x"},
        // Apple's server log: a time with the year, no host, a tag or none
        {"Nov  2 2026 00:31:13 IMAP User \"a\" log on successful from 192.0.2.1", TimeFormat::rfc3164_year, "", "",
         "", "IMAP User \"a\" log on successful from 192.0.2.1"},
        {"Nov 22 2026 00:31:13 AppleMailServer: POP3 User", TimeFormat::rfc3164_year, "", "AppleMailServer", "",
         "POP3 User"},
    };
    for (const auto& c : cases) {
        auto l = matching::parse_syslog_line(c.line);
        ASSERT_TRUE(l) << c.line;
        EXPECT_EQ(l->time_format, c.format) << c.line;
        EXPECT_EQ(l->host, c.host) << c.line;
        EXPECT_EQ(l->tag, c.tag) << c.line;
        EXPECT_EQ(l->pid, c.pid) << c.line;
        EXPECT_EQ(l->message, c.message) << c.line;
    }
    EXPECT_EQ(matching::parse_syslog_line("Nov  2 2026 00:31:13 x")->timestamp, "Nov  2 2026 00:31:13");
    EXPECT_FALSE(matching::parse_syslog_line("random words without a tag"));
}

TEST(SyslogLine, TimesAreResolvedAndClamped) {
    UtcZone tz;
    using matching::parse_syslog_line;
    using matching::resolve_time;
    // ISO with offset
    auto iso = parse_syslog_line("2026-11-22T01:34:23.5+01:00 mx1 dovecot: x");
    EXPECT_EQ(resolve_time(*iso, k_now), core::from_unix_micros(1795480463LL * 1000000 - 2 * 86400LL * 1000000 + 500000));
    // classic: year inferred from now (2026), UTC zone
    auto classic = parse_syslog_line("Nov 22 00:34:23 mx1 dovecot: x");
    EXPECT_EQ(resolve_time(*classic, k_now), core::from_unix_seconds(1795480463 - 2 * 86400));
    // a December line read in late November belongs to last year
    auto dec = parse_syslog_line("Dec 31 23:59:59 mx1 dovecot: x");
    EXPECT_LT(resolve_time(*dec, k_now), k_now - std::chrono::hours(24 * 300));
    // a time with its year (Apple): no inference
    auto apple = parse_syslog_line("Nov 22 2025 00:34:23 IMAP User x");
    EXPECT_EQ(resolve_time(*apple, k_now), core::from_unix_seconds(1795480463 - 2 * 86400 - 365 * 86400));
    auto apple_bad = parse_syslog_line("Nov 22 2025 25:34:23 IMAP User x");
    ASSERT_TRUE(apple_bad);
    EXPECT_EQ(resolve_time(*apple_bad, k_now), k_now);
    // TAI64N: a label far outside 1970..9999 is no time (it would overflow), not a crash
    auto tai = parse_syslog_line("@4000000069e1b2b300000000 dovecot: x");
    EXPECT_EQ(resolve_time(*tai, k_now), core::from_unix_seconds(0x69e1b2b3 - 10));
    for (const char* label : {"@7fffffffffffffff00000000 dovecot: x", "@000000000000000000000000 dovecot: x",
                              "@4000700000000000ffffffff dovecot: x"}) {
        auto bad = parse_syslog_line(label);
        ASSERT_TRUE(bad) << label;
        EXPECT_EQ(resolve_time(*bad, k_now), k_now) << label;
    }
    // the future is clamped to now
    auto future = parse_syslog_line("2027-01-01T00:00:00Z mx1 dovecot: x");
    EXPECT_EQ(resolve_time(*future, k_now), k_now);
    // unparsable time: now
    auto junk = parse_syslog_line("Foo 99 99:99:99 mx1 dovecot: x");
    if (junk) {
        EXPECT_EQ(resolve_time(*junk, k_now), k_now);
    }
}

namespace {

// Everything a scan reports, one line per login, for comparing scans.
std::string scan_all(std::string_view text, MatchState& st, const matching::ScanOptions* opts) {
    std::string out;
    auto on = [&](const matching::LoginMatch& m) {
        out += m.ip.to_string() + "\t" + std::string(m.user) + "\t" + std::string(m.server) + "/" +
               std::string(m.pattern) + "\t" + core::format_time(m.time) + "\t" + std::string(m.line) + "\n";
    };
    if (opts) all()->scan(text, k_now, st, on, *opts);
    else all()->scan(text, k_now, st, on);
    return out;
}

// Real server logs plus two-line sessions whose lines end up in different chunks, patched
// one-line forms completing a session, timed-out sessions, noise holding the literals, CRLF.
std::string mixed_log() {
    std::string buf;
    const auto dir = std::filesystem::path(RP_SOURCE_DIR) / "tests/data/golden";
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".log") continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        buf += ss.str();
        if (!buf.empty() && buf.back() != '\n') buf += '\n';
    }
    for (int i = 0; i < 40; ++i) {
        const auto n = std::to_string(i);
        buf += "Nov 22 00:31:1" + std::to_string(i % 10) + " mx1 popa3d[" + n + "]: Session from 192.0.2." + n + "\n";
        buf += "Nov 22 00:31:13 mx1 dovecot: pop3-login: Disconnected: user=<x>, rip=203.0.113." + n + "\n";
        buf += "Nov 22 00:31:13 mx1 vm-pop3d[" + n + "]: Connect from 198.51.100." + n + "\r\n";
        buf += "Nov 22 00:31:13 mx1 spop3d[" + n + "]: connect from 203.0.113." + n + "\n";
        buf += "Nov 22 00:31:14 mx1 dovecot: imap-login: Login: user=<d" + n + ">, method=PLAIN, rip=192.0.2." + n +
               ", lip=192.0.2.1, session=<x>\n";
        buf += "\n";
        if (i % 3 == 0) buf += "Nov 22 00:31:15 mx1 popa3d[" + n + "]: Authentication passed for p" + n + "\n";
        if (i % 3 == 1)
            buf += "Nov 22 00:31:15 mx1 popa3d[" + n + "]: Authentication passed for q" + n + " -- [192.0.2." + n + "]\n";
        buf += "Nov 22 00:31:15 mx1 vm-pop3d[" + n + "]: User 'v" + n + "' logged in\n";
        if (i % 2 == 0) buf += "Nov 22 00:45:15 mx1 spop3d[" + n + "]: user s" + n + " authenticated\n";  // too late
        else buf += "Nov 22 00:31:16 mx1 spop3d[" + n + "]: user s" + n + " authenticated\n";
    }
    buf += "Nov 22 00:31:17 mx1 popa3d[0]: Authentication passed for last";  // no final newline
    return buf;
}

}  // namespace

TEST(Matching, ParallelScanGivesExactlyTheSequentialResult) {
    UtcZone tz;
    const std::string buf = mixed_log();
    MatchState seq_state(*all());
    const std::string expected = scan_all(buf, seq_state, nullptr);
    ASSERT_GT(expected.size(), 1000u);
    EXPECT_NE(expected.find("\tp3\tpopa3d/session-login"), std::string::npos);
    EXPECT_NE(expected.find("\tv39\tvm-pop3d/session-login"), std::string::npos);
    std::string more;
    for (int i = 0; i < 40; ++i) more += "Nov 22 00:31:18 mx1 popa3d[" + std::to_string(i) + "]: Authentication passed for r\n";
    const std::string expected_more = scan_all(more, seq_state, nullptr);
    // Chunks from one byte (a chunk per line) up to larger than the buffer; 2 to 4 threads.
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{1000}, std::size_t{4096},
                              buf.size() - 1, buf.size() + 1}) {
        for (unsigned threads : {2u, 3u, 4u}) {
            MatchState st(*all());
            // Released chunks are overwritten at once: the scan must not read them again (the
            // reported lines and users are copies), or the results would differ.
            std::string copy = buf;
            std::atomic<std::size_t> released{0};
            matching::ScanOptions opts{threads, chunk, {}};
            opts.release = [&](const char* data, std::size_t n) {
                ASSERT_GE(data, copy.data());
                ASSERT_LE(data + n, copy.data() + copy.size());
                std::memset(const_cast<char*>(data), 'X', n);
                released += n;
            };
            EXPECT_EQ(scan_all(copy, st, &opts), expected) << "chunk " << chunk << ", threads " << threads;
            if (chunk < buf.size()) {
                EXPECT_EQ(released.load(), buf.size());  // every byte, once
            }
            // The pid cache afterwards is the same too: sessions left open complete the same way.
            EXPECT_EQ(scan_all(more, st, nullptr), expected_more);
        }
    }
}

TEST(Matching, LiteralExceptionsAreNoHits) {
    const matching::Literal pop{"pop", {"pop3-login: ", "pop3("}};
    EXPECT_FALSE(pop.occurs_in("Nov 22 00:31:13 mx1 dovecot: pop3-login: Disconnected: rip=192.0.2.1"));
    EXPECT_FALSE(pop.occurs_in("Nov 22 00:31:13 mx1 dovecot: pop3(alice)<7><x>: Disconnected: Logged out"));
    EXPECT_TRUE(pop.occurs_in("Nov 22 00:31:13 mx1 popa3d[7]: Session from 192.0.2.1"));
    EXPECT_TRUE(pop.occurs_in("Nov 22 00:31:13 mx1 dovecot: pop3-login: pop"));  // a later, plain one counts
    EXPECT_TRUE(pop.occurs_in("pop"));
    EXPECT_FALSE(pop.occurs_in("po"));
    // A pop-family line whose user imitates Dovecot's text still matches through its tag.
    MatchState st(*all());
    const auto m2 = all()->match_line("Nov 22 00:31:13 mx1 popa3d[7]: Authentication passed for pop3(x) -- [192.0.2.7]",
                                      k_now, st);
    ASSERT_TRUE(m2.has_value());
    EXPECT_EQ(m2->ip.to_string(), "192.0.2.7");
    // Dovecot's own POP lines are never candidates of the pop family, and its logins still match.
    const auto d = all()->match_line(
        "Nov 22 00:31:13 mx1 dovecot: pop3-login: Login: user=<a>, method=PLAIN, rip=192.0.2.8, lip=192.0.2.1", k_now, st);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->server, "dovecot");
}

TEST(Matching, ParallelScanOfEmptyAndTinyBuffers) {
    for (const std::string text : {"", "\n", "\n\n\n", "Login: ", "x\nNov 22 00:31:13 mx1 popa3d[1]: Session from 192.0.2.1"}) {
        MatchState st(*all());
        const matching::ScanOptions opts{2, 1, {}};
        EXPECT_EQ(scan_all(text, st, &opts), "") << text;
    }
}
