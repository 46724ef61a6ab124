// Every time form a supported server or syslog daemon writes, through the whole matcher: the
// exact instant each login gets, and where it came from (issue 12 item 1). And lines that may
// have been cut by a syslog size limit never grant (issue 12 item 14).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "matching/log_time.hpp"
#include "matching/matcher.hpp"
#include "matching/syslog_line.hpp"

using namespace rp;
using matching::Matcher;
using matching::MatchState;
using matching::TimeFormat;
using matching::TimeNote;

namespace {

// Sets TZ for one test and goes back to UTC (what the other tests assume) afterwards.
struct Zone {
    explicit Zone(const char* tz) {
        setenv("TZ", tz, 1);
        tzset();
    }
    ~Zone() {
        setenv("TZ", "UTC", 1);
        tzset();
    }
};

const core::Time k_now = core::from_unix_seconds(1795480463);  // 2026-11-24T00:34:23Z
constexpr std::int64_t k_t = 1795307473;                       // 2026-11-22T00:31:13Z
const std::string k_fields = "user=<a>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, mpid=1, session=<x>";

const std::vector<matching::PatternSpec>& user_patterns() {
    static const std::vector<matching::PatternSpec> p = {
        {"mypop", "mypop", {}, "",
         R"(mypop\[\d+\]: (?:at (?<time>.+?) )?login ok user=(?<user>\S+) from (?<ip>[0-9a-fA-F:.]+)$)", true}};
    return p;
}

std::shared_ptr<const Matcher> matcher() {
    static auto m = *Matcher::build({}, user_patterns());
    return m;
}

std::optional<matching::LoginMatch> match(const std::string& line, core::Time now = k_now) {
    MatchState st(*matcher());
    return matcher()->match_line(line, now, st);
}

struct TimeRow {
    const char* what;
    std::string line;
    std::int64_t micros;  // expected instant, unix microseconds
    TimeFormat format;
};

}  // namespace

// Each row is a complete login line in one form; the login's time must be exactly the line's.
TEST(LogTime, EveryFormGivesTheLinesExactTime) {
    Zone tz("UTC");
    const std::int64_t us = k_t * 1'000'000;
    const TimeRow rows[] = {
        {"rsyslog RFC 3339 (Debian 12 default)", "2026-11-22T00:31:13.322872+00:00 mx1 dovecot: imap-login: Login: " + k_fields,
         us + 322872, TimeFormat::rfc3339},
        {"RFC 3339 without fraction, Z", "2026-11-22T00:31:13Z mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3339},
        {"RFC 3339 with an offset", "2026-11-22T01:31:13.5+01:00 mx1 dovecot: imap-login: Login: " + k_fields,
         us + 500000, TimeFormat::rfc3339},
        {"journalctl short-iso (+hhmm)", "2026-11-21T19:31:13-0500 mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3339},
        {"ISO with a space and a zone", "2026-11-22 01:31:13+01:00 mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3339},
        {"RFC 3164", "Nov 22 00:31:13 mx1 dovecot: imap-login: Login: " + k_fields, us, TimeFormat::rfc3164},
        {"RFC 3164, day < 10", "Nov  2 00:31:13 mx1 dovecot: imap-login: Login: " + k_fields, us - 20 * 86400'000'000LL,
         TimeFormat::rfc3164},
        {"RFC 3164 with <PRI>", "<22>Nov 22 00:31:13 mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3164},
        {"RFC 3164, facility.severity", "Nov 22 00:31:13 mail.info mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3164},
        {"RFC 3164 with fraction (journalctl short-precise)",
         "Nov 22 00:31:13.250000 mx1 dovecot: imap-login: Login: " + k_fields, us + 250000, TimeFormat::rfc3164},
        {"RFC 5424", "<22>1 2026-11-22T00:31:13.322872+00:00 mx1 dovecot 12 - -  imap-login: Login: " + k_fields,
         us + 322872, TimeFormat::rfc3339},
        {"Dovecot's own log, default log_timestamp", "Nov 22 00:31:13 imap-login: Info: Login: " + k_fields, us,
         TimeFormat::rfc3164},
        {"Dovecot log_timestamp \"%Y-%m-%d %H:%M:%S \"", "2026-11-22 00:31:13 imap-login: Info: Login: " + k_fields, us,
         TimeFormat::iso_local},
        {"... with microseconds", "2026-11-22 00:31:13.123456 imap-login: Info: Login: " + k_fields, us + 123456,
         TimeFormat::iso_local},
        {"... through syslog-less pop3", "2026-11-22 00:31:13 pop3-login: Info: Login: " + k_fields, us,
         TimeFormat::iso_local},
        {"Dovecot 1.x own log", "dovecot: Nov 22 00:31:13 Info: imap-login: Login: " + k_fields, us,
         TimeFormat::rfc3164},
        {"Dovecot 1.x own log, ISO log_timestamp", "dovecot: 2026-11-22 00:31:13 Info: imap-login: Login: " + k_fields,
         us, TimeFormat::iso_local},
        {"ISO with T, no zone", "2026-11-22T00:31:13 mx1 dovecot: imap-login: Login: " + k_fields, us,
         TimeFormat::iso_local},
        {"svlogd -tt (UTC)", "2026-11-22_00:31:13.12345 dovecot: imap-login: Login: " + k_fields, us + 123450,
         TimeFormat::svlogd},
        {"multilog TAI64N", "@400000006b0237db0ee6b280 dovecot: imap-login: Login: " + k_fields, us + 250000,
         TimeFormat::tai64n},
        {"journalctl short-unix", "1795307473.250000 mx1 dovecot: imap-login: Login: " + k_fields, us + 250000,
         TimeFormat::epoch},
        {"Dovecot log_timestamp \"%s \"", "1795307473 imap-login: Info: Login: " + k_fields, us, TimeFormat::epoch},
        {"Apple's mail server log", "Nov 22 2026 00:31:13 IMAP User \"a\" log on successful from 192.0.2.1", us,
         TimeFormat::rfc3164_year},
        {"Courier through rsyslog", "2026-11-22T00:31:13+00:00 mx1 pop3d: LOGIN, user=a, ip=[::ffff:192.0.2.1], port=[4]",
         us, TimeFormat::rfc3339},
        {"Cyrus through RFC 5424", "<22>1 2026-11-22T00:31:13Z mx1 cyrus 77 - -  login: h [192.0.2.1] a PLAIN User logged in",
         us, TimeFormat::rfc3339},
        {"[[pattern]] with the framing's time", "Nov 22 00:31:13 mx1 mypop[9]: login ok user=a from 192.0.2.1", us,
         TimeFormat::rfc3164},
    };
    for (const auto& r : rows) {
        const auto m = match(r.line);
        ASSERT_TRUE(m) << r.what << ": " << r.line;
        EXPECT_EQ(core::to_unix_micros(m->time), r.micros) << r.what << ": " << r.line;
        EXPECT_EQ(m->time_origin, core::TimeOrigin::line) << r.what;
        EXPECT_EQ(m->time_detail.format, r.format) << r.what;
        EXPECT_EQ(m->time_detail.note, TimeNote::from_line) << r.what;
    }
}

// A pattern's (?<time>...) group: every documented form, wherever it stands in the line.
TEST(LogTime, CapturedTimesInEveryForm) {
    Zone tz("UTC");
    const std::int64_t us = k_t * 1'000'000;
    const TimeRow rows[] = {
        {"rfc3164", "Nov 22 00:31:13", us, TimeFormat::rfc3164},
        {"rfc3164 with fraction", "Nov 22 00:31:13.5", us + 500000, TimeFormat::rfc3164},
        {"rfc3164 with year", "Nov 22 2026 00:31:13", us, TimeFormat::rfc3164_year},
        {"rfc3339", "2026-11-22T02:31:13.000001+02:00", us + 1, TimeFormat::rfc3339},
        {"iso local", "2026-11-22 00:31:13", us, TimeFormat::iso_local},
        {"iso local, comma fraction", "2026-11-22 00:31:13,250", us + 250000, TimeFormat::iso_local},
        {"svlogd", "2026-11-22_00:31:13", us, TimeFormat::svlogd},
        {"tai64n", "@400000006b0237db00000000", us, TimeFormat::tai64n},
        {"epoch", "1795307473", us, TimeFormat::epoch},
        {"epoch with fraction", "1795307473.5", us + 500000, TimeFormat::epoch},
        {"common log format", "22/Nov/2026:01:31:13 +0100", us, TimeFormat::clf},
        {"asctime", "Sun Nov 22 00:31:13 2026", us, TimeFormat::asctime},
    };
    for (const auto& r : rows) {
        // The framing has a time of its own (an hour later): the captured one wins.
        const std::string line = "Nov 22 01:31:13 mx1 mypop[9]: at " + r.line + " login ok user=a from 192.0.2.1";
        const auto m = match(line);
        ASSERT_TRUE(m) << r.what;
        EXPECT_EQ(core::to_unix_micros(m->time), r.micros) << r.what;
        EXPECT_EQ(m->time_origin, core::TimeOrigin::line) << r.what;
        EXPECT_EQ(m->time_detail.format, r.format) << r.what;
        EXPECT_TRUE(m->time_detail.captured) << r.what;
        EXPECT_EQ(matching::describe(m->time_detail), "line (captured): " + std::string(matching::time_format_name(r.format)));
    }
    // A captured time of no known form: the time is unknown, even though the framing has one.
    for (const char* bad : {"yesterday", "2026-11-22", "Nov 22", "Feb 30 00:00:00", "2026-13-01T00:00:00Z", "17953074730"}) {
        const auto m = match("Nov 22 00:31:13 mx1 mypop[9]: at " + std::string(bad) + " login ok user=a from 192.0.2.1");
        ASSERT_TRUE(m) << bad;
        EXPECT_EQ(m->time, k_now) << bad;
        EXPECT_EQ(m->time_origin, core::TimeOrigin::reading) << bad;
        EXPECT_EQ(m->time_detail.note, TimeNote::bad_time) << bad;
        EXPECT_EQ(matching::describe(m->time_detail).rfind("reading time: ", 0), 0u) << bad;
    }
}

// No time, an invalid one, or one far ahead of the clock: the reading time, origin `reading`.
TEST(LogTime, UnknownTimesAreTheReadingTimeWithOriginReading) {
    Zone tz("UTC");
    struct Row {
        std::string line;
        TimeNote note;
    };
    const Row rows[] = {
        {"imap-login: Info: Login: " + k_fields, TimeNote::no_time},  // log_timestamp = ""
        {"mx1 dovecot: imap-login: Login: " + k_fields, TimeNote::no_time},
        {"dovecot: Info: imap-login: Login: " + k_fields, TimeNote::no_time},
        {"mypop[9]: login ok user=a from 192.0.2.1", TimeNote::no_time},
        {"Feb 30 00:31:13 mx1 dovecot: imap-login: Login: " + k_fields, TimeNote::bad_time},
        {"2026-11-31 00:31:13 imap-login: Info: Login: " + k_fields, TimeNote::bad_time},
        {"2026-11-22T24:31:13Z mx1 dovecot: imap-login: Login: " + k_fields, TimeNote::bad_time},
        {"@000000000000000000000000 dovecot: imap-login: Login: " + k_fields, TimeNote::bad_time},
        {"<22>1 yesterday mx1 dovecot 12 - -  imap-login: Login: " + k_fields, TimeNote::bad_time},
        {"2026-11-24T00:40:00Z mx1 dovecot: imap-login: Login: " + k_fields, TimeNote::ahead},  // 6 min
        {"Nov 24 03:00:00 mx1 dovecot: imap-login: Login: " + k_fields, TimeNote::ahead},  // wrong zone
    };
    for (const auto& r : rows) {
        const auto m = match(r.line);
        ASSERT_TRUE(m) << r.line;
        EXPECT_EQ(m->time, k_now) << r.line;
        EXPECT_EQ(m->time_origin, core::TimeOrigin::reading) << r.line;
        EXPECT_EQ(m->time_detail.note, r.note) << r.line;
    }
    EXPECT_EQ(matching::describe(match(rows[0].line)->time_detail), "reading time: no time in line");
    // Slightly ahead (clock skew): the line's time, clamped to the reading time.
    const auto skew = match("2026-11-24T00:35:23Z mx1 dovecot: imap-login: Login: " + k_fields);
    ASSERT_TRUE(skew);
    EXPECT_EQ(skew->time, k_now);
    EXPECT_EQ(skew->time_origin, core::TimeOrigin::line);
    EXPECT_EQ(skew->time_detail.note, TimeNote::clamped);
}

// Zoneless forms are local time; forms with a zone, svlogd's and the epoch are not.
TEST(LogTime, ZonelessFormsAreLocalTime) {
    Zone tz("Europe/Berlin");  // UTC+1 in November
    const std::int64_t us = k_t * 1'000'000;
    const TimeRow rows[] = {
        {"rfc3164", "Nov 22 01:31:13 mx1 dovecot: imap-login: Login: " + k_fields, us, TimeFormat::rfc3164},
        {"iso local", "2026-11-22 01:31:13.000002 imap-login: Info: Login: " + k_fields, us + 2, TimeFormat::iso_local},
        {"Apple", "Nov 22 2026 01:31:13 IMAP User \"a\" log on successful from 192.0.2.1", us, TimeFormat::rfc3164_year},
        {"rfc3339", "2026-11-22T00:31:13Z mx1 dovecot: imap-login: Login: " + k_fields, us, TimeFormat::rfc3339},
        {"svlogd", "2026-11-22_00:31:13 dovecot: imap-login: Login: " + k_fields, us, TimeFormat::svlogd},
        {"epoch", "1795307473 imap-login: Info: Login: " + k_fields, us, TimeFormat::epoch},
    };
    for (const auto& r : rows) {
        const auto m = match(r.line);
        ASSERT_TRUE(m) << r.what;
        EXPECT_EQ(core::to_unix_micros(m->time), r.micros) << r.what;
        EXPECT_EQ(m->time_detail.format, r.format) << r.what;
    }
}

TEST(LogTime, LeadingAndWholeTimeRecognition) {
    using matching::classify_time;
    using matching::find_leading_time;
    EXPECT_EQ(find_leading_time("2026-11-22 00:31:13 imap-login: x").text, "2026-11-22 00:31:13");
    EXPECT_EQ(find_leading_time("Nov 22 00:31:13.25 x").text, "Nov 22 00:31:13.25");
    EXPECT_EQ(find_leading_time("1795307473 x").format, TimeFormat::epoch);
    EXPECT_EQ(find_leading_time("17953074731 x").format, TimeFormat::none);  // 11 digits
    EXPECT_EQ(find_leading_time("Nov 22 00:31:13x").format, TimeFormat::none);
    EXPECT_EQ(find_leading_time("2026-11-22 hostname x").format, TimeFormat::none);
    EXPECT_EQ(find_leading_time("22/Nov/2026:00:31:13 +0000 x").format, TimeFormat::none);  // captured only
    EXPECT_EQ(classify_time(" 22/Nov/2026:00:31:13 +0000 ").format, TimeFormat::clf);
    EXPECT_EQ(classify_time("2026-11-22T00:31:13Z trailing").format, TimeFormat::none);
    EXPECT_EQ(classify_time("").format, TimeFormat::none);
}

namespace {

// A line as a syslog writer with a size limit writes it: cut after `limit` bytes.
std::string cut(const std::string& line, std::size_t limit) { return line.substr(0, std::min(line.size(), limit)); }

// A failure line whose client-chosen user name ends in the text a success line ends with,
// padded so that a cut at `limit` bytes falls right after it.
std::string forged_cut(const std::string& before_user, const std::string& forged_tail, const std::string& real_tail,
                       std::size_t limit) {
    const std::size_t pad = limit - before_user.size() - forged_tail.size();
    return cut(before_user + std::string(pad, 'u') + forged_tail + real_tail, limit);
}

}  // namespace

// Issue 12 item 14: a failure line cut by a syslog size limit right after a user name that
// ends like a success line never grants.
TEST(LongLines, CutFailureLinesNeverGrant) {
    Zone tz("UTC");
    const std::string perdition =
        "Nov 22 00:31:13 mx1 perdition.imap4[12]: Auth: 198.51.100.7:40000->192.0.2.2:143 client-secure=ssl "
        "authorisation_id=NONE authentication_id=\"";
    const std::string apple = "Nov 22 2026 00:31:13 IMAP User \"";
    for (std::size_t limit : {std::size_t{1024}, std::size_t{2048}, std::size_t{8192}}) {
        const auto p = forged_cut(perdition, "\" server=\"h\" protocol=IMAP4S server-secure=ssl status=\"ok\"",
                                  "\" server=\"10.0.0.5:143\" protocol=IMAP4S server-secure=ssl status=\"failed\"",
                                  limit);
        ASSERT_EQ(p.size(), limit);
        ASSERT_TRUE(p.ends_with("status=\"ok\""));
        const auto a = forged_cut(apple, "\" log on successful from 198.51.100.7", "\" log on failed from 203.0.113.5",
                                  limit);
        ASSERT_TRUE(a.ends_with("successful from 198.51.100.7"));
        MatchState st(*matcher());
        EXPECT_FALSE(matcher()->match_line(p, k_now, st)) << limit;
        EXPECT_FALSE(matcher()->match_line(a, k_now, st)) << limit;
        EXPECT_EQ(st.long_lines(), 2u);  // counted
    }
    // The same servers' real success lines still grant.
    EXPECT_TRUE(match("Nov 22 00:31:13 mx1 perdition.imap4[12]: Auth: 198.51.100.7:40000->192.0.2.2:143 "
                      "client-secure=ssl authorisation_id=NONE authentication_id=\"alice\" server=\"10.0.0.5:143\" "
                      "protocol=IMAP4S server-secure=ssl status=\"ok\""));
    EXPECT_TRUE(match("Nov 22 2026 00:31:13 IMAP User \"alice\" log on successful from 198.51.100.7"));
}

// Every built-in pattern: a success line whose message is one byte short of the limit grants;
// at the limit it does not (it may have been cut). {P} is padding inside a client-chosen field.
TEST(LongLines, EveryBuiltinPatternRefusesMessagesAtTheLimit) {
    Zone tz("UTC");
    struct Row {
        const char* prefix;  // framing and tag: not counted
        const char* message;
    };
    const Row rows[] = {
        {"Nov 22 00:31:13 mx1 dovecot: ", "imap-login: Login: user=<{P}>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2"},
        {"Nov 22 00:31:13 imap-login: ", "Info: Logged in: user=<{P}>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2"},
        {"Nov 22 00:31:13 mx1 dovecot: ", "Info: imap-login: Login: user=<{P}>, method=PLAIN, rip=192.0.2.1"},
        {"Nov 22 00:31:13 mx1 dovecot: ", "imap-login: Login: {P} [192.0.2.1]"},
        {"Nov 22 00:31:13 mx1 dovecot: ",
         "imap-login: proxy({P}): started proxying to 192.0.2.5:143: user=<{P}>, method=PLAIN, rip=192.0.2.1"},
        {"Nov 22 00:31:13 mx1 pop3d: ", "LOGIN, user={P}, ip=[::ffff:192.0.2.1], port=[41234]"},
        {"Nov 22 00:31:13 mx1 cyrus/imap[12]: ", "login: host [192.0.2.1] {P} PLAIN User logged in"},
        {"Nov 22 00:31:13 mx1 ipop3d[12]: ", "Login user={P} host=client.example [192.0.2.1] nmsgs=0/0"},
        {"Nov 22 00:31:13 mx1 popper[12]: ", "(v4.1.0) POP login by user \"{P}\" at (client.example) 192.0.2.1"},
        {"Nov 22 00:31:13 mx1 vchkpw-pop3[12]: ", "(PLAIN) login success {P}@example.com:192.0.2.1"},
        {"Nov 22 00:31:13 mx1 vpopmail[12]: ", "vchkpw: login [{P}@example.com] from 192.0.2.1"},
        {"Nov 22 00:31:13 mx1 spop3d[12]: ", "user {P} authenticated - 192.0.2.1"},
        {"Nov 22 00:31:13 mx1 popa3d[12]: ", "Authentication passed for {P} -- [192.0.2.1]"},
        {"Nov 22 00:31:13 mx1 gnu-pop3d[12]: ", "User '{P}' logged in with mailbox /var/mail/a from 192.0.2.1"},
        {"Nov 22 00:31:13 mx1 perdition.imap4[12]: ",
         "Auth: 192.0.2.1:40000->192.0.2.2:143 client-secure=ssl authorisation_id=NONE authentication_id=\"{P}\" "
         "server=\"10.0.0.5:143\" protocol=IMAP4S server-secure=ssl status=\"ok\""},
        {"Nov 22 00:31:13 mx1 teapop[12]: ", "Successful login for {P} [192.0.2.1]"},
        {"Nov 22 00:31:13 mx1 cucipop[12]: ", "{P} 192.0.2.1 0, 0 (0), 0 (0)"},
        {"Nov 22 00:31:13 mx1 vm-pop3d[12]: ", "User '{P}' logged in from 192.0.2.1"},
        {"Nov 22 2026 00:31:13 ", "IMAP User \"{P}\" log on successful from 192.0.2.1"},
    };
    auto fill = [](std::string msg, std::size_t size) {
        std::size_t holes = 0;
        for (auto pos = msg.find("{P}"); pos != std::string::npos; pos = msg.find("{P}", pos + 1)) ++holes;
        const std::size_t fixed = msg.size() - 3 * holes;
        const std::size_t each = (size - fixed) / holes, extra = (size - fixed) % holes;
        bool first = true;
        for (auto pos = msg.find("{P}"); pos != std::string::npos; pos = msg.find("{P}")) {
            msg.replace(pos, 3, std::string(each + (first ? extra : 0), 'a'));
            first = false;
        }
        return msg;
    };
    const std::size_t k = matching::k_max_login_message_bytes;
    for (const auto& r : rows) {
        const auto below = std::string(r.prefix) + fill(r.message, k - 1);
        const auto at = std::string(r.prefix) + fill(r.message, k);
        ASSERT_EQ(matching::parse_syslog_line(at)->message.size(), k) << r.message;
        EXPECT_TRUE(match(below)) << r.message;
        EXPECT_FALSE(match(at)) << r.message;
    }
}
