// Table-driven tests of the built-in pattern sets for servers other than Dovecot, from their
// documented log formats (docs/servers.md lists the sources). Each row is one line; a row with
// an address must give exactly that login, a row without one must give nothing.
#include <gtest/gtest.h>
#include <pcre2.h>

#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "matching/matcher.hpp"

using namespace rp;
using matching::Matcher;
using matching::MatchState;

namespace {

const core::Time k_now = core::from_unix_seconds(1795480463);

struct Row {
    const char* line;
    const char* ip;  // nullptr: no login
    const char* user;
    const char* server;
};

std::shared_ptr<const Matcher> all() {
    static auto m = *Matcher::build({}, {});
    return m;
}

void check_rows(const std::vector<Row>& rows) {
    for (const auto& r : rows) {
        MatchState st(*all());  // one state per row: no correlation between rows
        auto m = all()->match_line(r.line, k_now, st);
        if (!r.ip) {
            EXPECT_FALSE(m) << r.line << " -> " << (m ? m->ip.to_string() + " " + std::string(m->server) : "");
            continue;
        }
        ASSERT_TRUE(m) << r.line;
        EXPECT_EQ(m->ip.to_string(), r.ip) << r.line;
        EXPECT_EQ(m->user, r.user) << r.line;
        EXPECT_EQ(m->server, r.server) << r.line;
    }
}

}  // namespace

TEST(Servers, Courier) {
    check_rows({
        {"Nov 22 00:31:13 mx1 pop3d: LOGIN, user=alice, ip=[::ffff:192.0.2.1], port=[41234]", "192.0.2.1", "alice", "courier"},
        {"Nov 22 00:31:13 mx1 pop3d-ssl: LOGIN, user=alice, ip=[::ffff:192.0.2.2], port=[41234]", "192.0.2.2", "alice", "courier"},
        {"Nov 22 00:31:13 mx1 imapd: LOGIN, user=bob@example.org, ip=[2001:db8::9], port=[4], protocol=IMAP", "2001:db8::9", "bob@example.org", "courier"},
        {"Nov 22 00:31:13 mx1 imapd-ssl: LOGIN, user=bob, ip=[::ffff:192.0.2.3], port=[4], protocol=IMAP", "192.0.2.3", "bob", "courier"},
        {"Nov 22 00:31:13 mx1 courierpop3login: LOGIN, user=carol, ip=[::ffff:192.0.2.4]", "192.0.2.4", "carol", "courier"},  // old: no port
        {"Nov 22 00:31:13 mx1 pop3d: LOGIN FAILED, user=alice, ip=[::ffff:192.0.2.1]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 pop3d: LOGOUT, user=alice, ip=[::ffff:192.0.2.1], port=[41234], top=0, retr=0, rcvd=6, sent=40, time=0", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd: DISCONNECTED, user=alice, ip=[::ffff:192.0.2.1], headers=0, body=0, rcvd=6, sent=40, time=0", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd: TIMEOUT, user=alice, ip=[::ffff:192.0.2.1], headers=0", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 pop3d: LOGIN, user=x, ip=[6.6.6.6], port=[1], ip=[192.0.2.5], port=[2]", "192.0.2.5", "x, ip=[6.6.6.6], port=[1]", "courier"},
        {"Nov 22 00:31:13 mx1 pop3d: LOGIN, user=alice, ip=[192.168.123], port=[41234]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 sshd[1]: LOGIN, user=alice, ip=[::ffff:192.0.2.1], port=[41234]", nullptr, nullptr, nullptr},
    });
}

TEST(Servers, Cyrus) {
    check_rows({
        {"Nov 22 00:31:13 mx1 cyrus/imap[123]: login: client.example [192.0.2.10] alice PLAIN User logged in SESSIONID=<cyrus-1-2-3>", "192.0.2.10", "alice", "cyrus"},
        {"Nov 22 00:31:13 mx1 cyrus/pop3[124]: login: localhost [127.0.0.2] bob plaintext+TLS User logged in", "127.0.0.2", "bob", "cyrus"},
        {"<22>1 2026-11-22T00:34:23.3+00:00 mx1 cyrus 125 - -  login: [192.0.2.11] carol PLAIN User logged in SESSIONID=<x>", "192.0.2.11", "carol", "cyrus"},
        {"Nov 22 00:31:13 mx1 imapd[9]: login: h [::ffff:192.0.2.12] d PLAIN User logged in", "192.0.2.12", "d", "cyrus"},
        // syslog_prefix "mx-a" (imapd.conf): Cyrus prepends it to the service name
        {"Nov 22 00:31:13 mx1 mx-a/imap[123]: login: h [192.0.2.13] e PLAIN User logged in", "192.0.2.13", "e", "cyrus"},
        {"<22>1 2026-11-22T00:34:23.3+00:00 mx1 mx-a/pop3 126 - -  login: [192.0.2.14] f PLAIN User logged in", "192.0.2.14", "f", "cyrus"},
        // a tag that is not the server's: never, whatever the message says
        {"Nov 22 00:31:13 mx1 sshd[123]: login: h [192.0.2.15] g PLAIN User logged in", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cyrus/imap[123]: badlogin: client.example [192.0.2.10] plaintext alice SASL(-13): authentication failure", nullptr, nullptr, nullptr},
        {"Nov 22 02:25:01 mailhost cyrus/imap[23927]: login: [127.0.0.11] rptestuser PLAIN User logged in SESSIONID=<x>", "127.0.0.11", "rptestuser", "cyrus"},
        {"Nov 22 02:25:01 mailhost cyrus/imap[23927]: badlogin: [127.0.0.22] PLAIN (rptestuser2) [SASL(-13): authentication failure: Password verification failed]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cyrus/imap[123]: login: client.example [192.0.2.10] alice PLAIN User logged out", nullptr, nullptr, nullptr},
    });
}

TEST(Servers, UwImap) {
    check_rows({
        {"Nov 22 00:31:13 mx1 ipop3d[12]: Login user=alice host=client.example [192.0.2.20] nmsgs=0/0", "192.0.2.20", "alice", "uw"},
        {"Nov 22 00:31:13 mx1 imapd[12]: Authenticated user=bob host=[192.0.2.21] mech=PLAIN", "192.0.2.21", "bob", "uw"},
        {"Nov 22 00:31:13 mx1 imapd[12]: Auth user=bob host=client.example [192.0.2.22]", "192.0.2.22", "bob", "uw"},
        {"Nov 22 00:31:13 mx1 ipop3d[12]: APOP user=carol host=[192.0.2.23] nmsgs=1/1", "192.0.2.23", "carol", "uw"},
        {"Nov 22 00:31:13 mx1 imapsd[12]: Login user=dave host=[2001:db8::23]", "2001:db8::23", "dave", "uw"},
        {"Nov 22 00:31:13 mx1 ipop3d[12]: Login failed user=alice auth=alice host=client.example [192.0.2.20]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 ipop3d[12]: Logout user=alice host=client.example [192.0.2.20] nmsgs=0 ndele=0", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd[12]: Autologout user=alice host=client.example [192.0.2.20]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd[12]: Login user=alice host=client.example", nullptr, nullptr, nullptr},  // hostname only
    });
}

TEST(Servers, QpopperVpopmailTeapopPerdition) {
    check_rows({
        {"Nov 22 00:31:13 mx1 popper[12]: (v4.1.0) POP login by user \"alice\" at (client.example) 192.0.2.30", "192.0.2.30", "alice", "qpopper"},
        {"Nov 22 00:31:13 mx1 in.qpopper[12]: (v4.0.5) POP login by user \"bob\" at (192.0.2.31) 192.0.2.31", "192.0.2.31", "bob", "qpopper"},
        {"Nov 22 00:31:13 mx1 qpopper[12]: Stats: alice 0 0 3 12345 client.example 192.0.2.30", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popper[12]: alice at client.example (192.0.2.30): -ERR [AUTH] Password supplied for \"alice\" is incorrect.", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vchkpw-pop3[12]: (PLAIN) login success alice@example.com:192.0.2.40", "192.0.2.40", "alice@example.com", "vpopmail"},
        {"Nov 22 00:31:13 mx1 vchkpw-imap[12]: (LOGIN) login success bob@example.com:2001:db8::40", "2001:db8::40", "bob@example.com", "vpopmail"},
        {"Nov 22 00:31:13 mx1 vchkpw-smtp[12]: (PLAIN) login success alice@example.com:192.0.2.40", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vchkpw-pop3[12]: password fail (pass: 'x') alice@example.com:192.0.2.40", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vchkpw-pop3[12]: vpopmail user not found alice@example.com:192.0.2.40", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vpopmail[12]: vchkpw: login [carol@example.com] from 192.0.2.41", "192.0.2.41", "carol@example.com", "vpopmail"},
        {"Nov 22 00:31:13 mx1 teapop[12]: Successful login for dave@example.com [192.0.2.50]", "192.0.2.50", "dave@example.com", "teapop"},
        {"Nov 22 00:31:13 mx1 teapop[12]: Failed login for dave@example.com [192.0.2.50]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 perdition[12]: Auth: 192.0.2.60->192.0.2.2 user=\"erin\" server=\"10.0.0.5\" port=\"143\" status=\"ok\"", "192.0.2.60", "erin", "perdition"},
        {"Nov 22 00:31:13 mx1 perdition.imap4s[12]: Auth: 192.0.2.61:40000->192.0.2.2:993 client-secure=ssl authorisation_id=NONE authentication_id=\"frank\" server=\"10.0.0.5:143\" protocol=IMAP4S server-secure=plaintext status=\"ok\"", "192.0.2.61", "frank", "perdition"},
        {"Nov 22 00:31:13 mx1 perdition[12]: Auth: 192.0.2.60->192.0.2.2 user=\"erin\" server=\"10.0.0.5\" port=\"143\" status=\"failed\"", nullptr, nullptr, nullptr},
    });
}

TEST(Servers, OneLinePop3Servers) {
    check_rows({
        {"Nov 22 00:31:13 mx1 spop3d[12]: user alice authenticated - 192.0.2.70", "192.0.2.70", "alice", "solid-pop3d"},
        {"Nov 22 00:31:13 mx1 spop3d[12]: user alice authenticated - client.example (192.0.2.71)", "192.0.2.71", "alice", "solid-pop3d"},
        {"Nov 22 00:31:13 mx1 spop3d[12]: user alice authenticated - client.example", nullptr, nullptr, nullptr},
        {"Nov 22 02:24:52 mailhost solid-pop3d[2352]: user rptestuser authenticated through APOP - 127.0.0.11", "127.0.0.11", "rptestuser", "solid-pop3d"},
        {"Nov 22 02:24:52 mailhost solid-pop3d[2352]: mapped user bob authenticated - 192.0.2.77", "192.0.2.77", "bob", "solid-pop3d"},
        {"Nov 22 02:24:52 mailhost solid-pop3d[2352]: APOP authentication failed for user rptestuser - 127.0.0.11", nullptr, nullptr, nullptr},
        {"Nov 22 02:24:52 mailhost solid-pop3d[2352]: can't find APOP secret for user rptestuser - 127.0.0.11", nullptr, nullptr, nullptr},
        {"Nov 22 02:24:52 mailhost solid-pop3d[2352]: session ended for user rptestuser - 127.0.0.11", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popa3d[12]: Authentication passed for bob -- [192.0.2.72]", "192.0.2.72", "bob", "popa3d"},
        {"Nov 22 00:31:13 mx1 popa3d[12]: Authentication failed for bob", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 gnu-pop3d[12]: User 'carol' logged in with mailbox '/var/mail/carol' from 192.0.2.73", "192.0.2.73", "carol", "gnu-pop3d"},
        // GNU Mailutils 3.x: no address with the login, never a grant
        {"Nov 22 00:31:13 mx1 pop3d[12]: User 'carol' logged in with mailbox '/var/mail/carol' (0 msgs)", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 pop3d[11]: connect from 192.0.2.73", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cucipop[12]: dave 192.0.2.74 0, 0 (0), 0 (0)", "192.0.2.74", "dave", "cucipop"},
        {"Nov 22 00:31:13 mx1 vm-pop3d[12]: User 'erin' logged in from 192.0.2.75", "192.0.2.75", "erin", "vm-pop3d"},
        {"Nov 22 2026 00:31:13 AppleMailServer: IMAP User \"frank\" log on successful from 192.0.2.76", "192.0.2.76", "frank", "apple"},
        {"Nov 22 2026 00:31:13 POP3 User \"fred\" log on successful from 2001:db8::76", "2001:db8::76", "fred", "apple"},
        {"Nov 22 00:31:13 mx1 MailService[5]: IMAP User \"fay\" log on successful from 192.0.2.75", "192.0.2.75", "fay", "apple"},
        // another program's line that ends like Apple's: a user name, a Subject header
        {"Nov 22 00:31:13 mx1 sshd[1]: Invalid user IMAP User \"x\" log on successful from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 sshd[1]: IMAP User \"x\" log on successful from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 postfix/cleanup[2]: warning: header Subject: IMAP User \"x\" log on successful from 192.0.2.2", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: proxy(gina): started proxying to 192.0.2.200:143: user=<gina>, method=PLAIN, rip=192.0.2.77, lip=192.0.2.1, session=<x>", "192.0.2.77", "gina", "dovecot"},
        // 2.3.19 (written by Debian 12's Dovecot in the real-server test) and 2.4's optional parts
        {"Dec  2 22:51:50 mx1 dovecot: imap-login: proxy(gina,127.0.0.1:24143): Started proxying to <127.0.0.1> (0.027 secs): user=<gina>, method=PLAIN, rip=192.0.2.78, lip=127.0.0.1, session=<iH8Rfa5hhrx/AAAF>", "192.0.2.78", "gina", "dovecot"},
        {"Dec  2 22:51:50 imap-login: Info: proxy(gina,[2001:db8::5]:143): Started proxying to <2001:db8::5> (<backend.example>) from 2001:db8::1 as user g2 (master m) (0.01 secs): user=<gina>, method=PLAIN, rip=2001:db8::79, lip=2001:db8::2", "2001:db8::79", "gina", "dovecot"},
        {"Dec  2 22:51:50 mx1 dovecot: imap-login: proxy(gina,127.0.0.1:24143): Disconnected by server (0s idle, in=245, out=856): user=<gina>, method=PLAIN, rip=192.0.2.78, lip=127.0.0.1, session=<x>", nullptr, nullptr, nullptr},
        {"Dec  2 22:52:14 mx1 dovecot: imap-login: Disconnected: Connection closed (proxy dest auth failed): user=<bob>, method=PLAIN, rip=192.0.2.78, lip=127.0.0.1, session=<x>", nullptr, nullptr, nullptr},
        {"Dec  2 22:52:17 mx1 dovecot: pop3-login: Error: proxy(alice,127.0.0.1:24143): Remote server sent invalid input: Invalid banner: * OK Dovecot ready.: user=<alice>, method=PLAIN, rip=192.0.2.78, lip=127.0.0.1, session=<x>", nullptr, nullptr, nullptr},
        {"Dec  2 22:52:17 mx1 dovecot: imap-login: proxy(alice,127.0.0.1:24143): Login failed to 127.0.0.1:24143: Authentication failed: user=<alice>, method=PLAIN, rip=192.0.2.78, lip=127.0.0.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: Nov 22 00:31:13 Info: imap-login: Login: user=<hal>, method=PLAIN, rip=::ffff:192.0.2.78, lip=192.0.2.1", "192.0.2.78", "hal", "dovecot"},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Login: ian [192.0.2.79]", "192.0.2.79", "ian", "dovecot"},
        {"@4000000063f1a2b31c2d3e4f dovecot: imap-login: Login: user=<jo>, method=PLAIN, rip=192.0.2.80, lip=192.0.2.1", "192.0.2.80", "jo", "dovecot"},
    });
}

TEST(Servers, TwoLineCorrelationByPid) {
    MatchState st(*all());
    auto m = [&](const char* line) { return all()->match_line(line, k_now, st); };
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 popa3d[100]: Session from 192.0.2.90"));
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 popa3d[101]: Session from 192.0.2.91"));
    auto a = m("Nov 22 00:31:14 mx1 popa3d[101]: Authentication passed for bob");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ip.to_string(), "192.0.2.91");
    EXPECT_EQ(a->user, "bob");
    EXPECT_FALSE(m("Nov 22 00:31:14 mx1 popa3d[101]: Authentication passed for bob")) << "one session, one login";
    EXPECT_FALSE(m("Nov 22 00:31:14 mx1 popa3d[102]: Authentication passed for eve")) << "no session line";
    EXPECT_FALSE(m("Nov 22 00:31:14 mx2 popa3d[100]: Authentication passed for eve")) << "another host's pid";
    // the patched one-line form after a session line: one event only
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 popa3d[103]: Session from 192.0.2.93"));
    EXPECT_TRUE(m("Nov 22 00:31:14 mx1 popa3d[103]: Authentication passed for z -- [192.0.2.93]"));
    EXPECT_FALSE(m("Nov 22 00:31:14 mx1 popa3d[103]: Authentication passed for z"));
    // too late: the session timed out
    EXPECT_FALSE(m("Nov 22 00:00:00 mx1 vm-pop3d[7]: Connect from 192.0.2.94"));
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 vm-pop3d[7]: User 'late' logged in"));
    // vm-pop3d and solid-pop3d two-line forms
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 vm-pop3d[8]: Connect from 192.0.2.95"));
    auto v = m("Nov 22 00:31:14 mx1 vm-pop3d[8]: User 'erin' logged in");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->ip.to_string(), "192.0.2.95");
    EXPECT_FALSE(m("Nov 22 00:31:13 mx1 spop3d[9]: connect from 192.0.2.96"));
    auto s = m("Nov 22 00:31:14 mx1 spop3d[9]: user fay authenticated");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->ip.to_string(), "192.0.2.96");
}

TEST(Servers, SessionMemoryIsBounded) {
    MatchState st(*all());
    for (int i = 0; i < static_cast<int>(matching::k_max_sessions) + 100; ++i) {
        const std::string line = "Nov 22 00:31:13 mx1 popa3d[" + std::to_string(i) + "]: Session from 192.0.2.1";
        all()->match_line(line, k_now, st);
    }
    // the oldest were dropped, the newest are kept
    EXPECT_FALSE(all()->match_line("Nov 22 00:31:14 mx1 popa3d[0]: Authentication passed for a", k_now, st));
    const std::string last = "Nov 22 00:31:14 mx1 popa3d[" + std::to_string(matching::k_max_sessions + 99) +
                             "]: Authentication passed for a";
    EXPECT_TRUE(all()->match_line(last, k_now, st));
}

TEST(Servers, SelectionByName) {
    auto m = Matcher::build({"courier"}, {});
    ASSERT_TRUE(m);
    MatchState st(**m);
    EXPECT_FALSE((*m)->match_line("Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1, lip=1.1.1.1", k_now, st));
    EXPECT_TRUE((*m)->match_line("Nov 22 00:31:13 mx1 pop3d: LOGIN, user=alice, ip=[::ffff:192.0.2.1], port=[1]", k_now, st));
    auto names = matching::builtin_servers();
    for (const char* s : {"dovecot", "courier", "cyrus", "uw", "qpopper", "vpopmail", "solid-pop3d", "popa3d",
                          "gnu-pop3d", "perdition", "teapop", "cucipop", "vm-pop3d", "apple"})
        EXPECT_NE(std::find(names.begin(), names.end(), s), names.end()) << s;
}

// Lines that mention an address next to a user or a login but are not a successful login:
// PAM's own lines, connection and process limits, connects, closes, failures of every set.
TEST(Servers, PamLimitsConnectsAndClosesNeverGrant) {
    check_rows({
        // PAM, through any server's tag
        {"Nov 22 00:31:13 mx1 dovecot: auth: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot ruser=alice rhost=192.0.2.1  user=alice", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: auth-worker(77): pam(alice,192.0.2.1,<x>): pam_authenticate() failed: Authentication failure (Password mismatch?)", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 pop3d: pam_unix(pop3:session): session opened for user alice(uid=1000) by (uid=0)", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cyrus/imap[12]: pam_unix(imap:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1 user=alice", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 ipop3d[12]: pam_unix(pop:session): session opened for user alice by (uid=0)", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popa3d[12]: pam_unix(popa3d:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=192.0.2.1  user=alice", nullptr, nullptr, nullptr},
        // limits
        {"Nov 22 00:31:13 mx1 dovecot: master: Warning: service(imap-login): process_limit (100) reached, client connections are being dropped", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 dovecot: imap-login: Disconnected: Too many invalid commands (no auth attempts in 0 secs): user=<>, rip=192.0.2.1, lip=192.0.2.2, session=<x>", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd: Maximum connection limit reached for ::ffff:192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popa3d[12]: 192.0.2.1: per source limit reached", nullptr, nullptr, nullptr},
        // connects and closes (they repeat the address)
        {"Nov 22 00:31:13 mx1 pop3d: Connection, ip=[::ffff:192.0.2.1]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd-ssl: Connection, ip=[::ffff:192.0.2.1]", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cyrus/imap[12]: accepted connection", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cyrus/pop3[12]: login: client.example [192.0.2.1] alice plaintext User logged out", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 imapd[12]: imap service init from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 perdition[12]: Connect: 192.0.2.1->192.0.2.2", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 perdition[12]: Close: 192.0.2.1->192.0.2.2 user=\"alice\" received=10 sent=20", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popper[12]: (v4.1.0) Unable to get canonical name of client 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vm-pop3d[12]: Connect from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 spop3d[12]: connect from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 popa3d[12]: Session from 192.0.2.1", nullptr, nullptr, nullptr},
        // failures of the sets not covered above
        {"Nov 22 00:31:13 mx1 spop3d[12]: authentication failed: no such user: alice - 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 cucipop[12]: alice 192.0.2.1 authentication failure", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vm-pop3d[12]: Failed password for alice from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 gnu-pop3d[12]: User 'alice': authentication failed from 192.0.2.1", nullptr, nullptr, nullptr},
        {"Nov 22 2026 00:31:13 AppleMailServer: IMAP User \"frank\" log on failed from 192.0.2.76", nullptr, nullptr, nullptr},
        // hostnames without an address
        {"Nov 22 00:31:13 mx1 spop3d[12]: user alice authenticated - client.example", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 vm-pop3d[12]: User 'erin' logged in from client.example", nullptr, nullptr, nullptr},
        {"Nov 22 00:31:13 mx1 teapop[12]: Successful login for dave@example.com [client.example]", nullptr, nullptr, nullptr},
    });
}

// A server that writes both forms (a session line, then the one-line login that repeats the
// address) is one login, not two; the bare second line of the same pid adds nothing either.
TEST(Servers, OneLineLoginAfterASessionLineIsOneEvent) {
    struct Case {
        const char* session;
        const char* login;   // the one-line form, repeating the session's address
        const char* repeat;  // the two-line form's second line, same pid
        const char* ip;
    };
    for (const auto& c : {
             Case{"Nov 22 00:31:13 mx1 vm-pop3d[20]: Connect from 192.0.2.97",
                  "Nov 22 00:31:14 mx1 vm-pop3d[20]: User 'erin' logged in from 192.0.2.97",
                  "Nov 22 00:31:14 mx1 vm-pop3d[20]: User 'erin' logged in", "192.0.2.97"},
             Case{"Nov 22 00:31:13 mx1 spop3d[21]: connect from 192.0.2.98",
                  "Nov 22 00:31:14 mx1 spop3d[21]: user fay authenticated - 192.0.2.98",
                  "Nov 22 00:31:14 mx1 spop3d[21]: user fay authenticated", "192.0.2.98"},
             Case{"Nov 22 00:31:13 mx1 popa3d[22]: Session from 192.0.2.99",
                  "Nov 22 00:31:14 mx1 popa3d[22]: Authentication passed for gil -- [192.0.2.99]",
                  "Nov 22 00:31:14 mx1 popa3d[22]: Authentication passed for gil", "192.0.2.99"},
         }) {
        MatchState st(*all());
        const std::string buf = std::string(c.session) + "\n" + c.login + "\n" + c.repeat + "\n";
        std::vector<std::string> got;
        all()->scan(buf, k_now, st, [&](const matching::LoginMatch& m) { got.push_back(m.ip.to_string()); });
        EXPECT_EQ(got, std::vector<std::string>{c.ip}) << c.login;
    }
}

// Huge lines built to make a regex backtrack, or to hide a field deep inside: each is decided
// (and the real login after them still found) without a grant from the bait.
TEST(Servers, HugeAdversarialLines) {
    std::string buf;
    auto repeat = [](const std::string& s, int n) {
        std::string out;
        for (int i = 0; i < n; ++i) out += s;
        return out;
    };
    const std::string p = "Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<";
    buf += p + repeat(">, rip=z", 100000) + "\n";                               // no address at all
    buf += p + repeat(">, x", 250000) + ", rip=xx\n";                           // many '>' and a bad rip
    buf += p + repeat(">, rip=1, ", 100000) + "lip=1\n";                        // rips that are not addresses
    buf += "Nov 22 00:31:13 mx1 pop3d: LOGIN, user=" + repeat(", ip=[1", 200000) + "]\n";
    buf += "Nov 22 00:31:13 mx1 perdition[1]: Auth: 192.0.2.1->192.0.2.2 " + repeat("user=\"a\" ", 100000) + "status=\"no\"\n";
    buf += "Nov 22 00:31:13 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<" +
           repeat("imap-login: Login: user=<a>, method=PLAIN, rip=6.6.6.6, lip=1.1.1.1>, ", 20000) +
           ">, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2\n";
    // a 1 MB user name: matched in bounded time, and refused (a line that long may have been cut)
    buf += p + std::string(1 << 20, 'a') + ">, method=PLAIN, rip=192.0.2.9, lip=192.0.2.2\n";
    buf += p + "ok>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.2, mpid=1, session=<x>\n";
    MatchState st(*all());
    std::vector<std::string> got;
    all()->scan(buf, k_now, st, [&](const matching::LoginMatch& m) { got.push_back(m.ip.to_string()); });
    EXPECT_EQ(got, (std::vector<std::string>{"192.0.2.10"}));
    EXPECT_GE(st.long_lines(), 1u);  // every huge line a regex matched, valid address or not
}

// Backtracking is bounded per line (k_regex_match_limit), for built-in and [[pattern]] regexes
// alike: a line that a regex matches only after ~10^5 steps is no match, where PCRE2's default
// limit (10^7) would let it match. Counted in steps, not time, so the same on every host.
TEST(Servers, BacktrackingIsBoundedPerLine) {
    const std::string re = R"(^(?:(?:(?:a|a)+)+$|a+ from (?<ip>[0-9.]+)$))";  // 2^n paths fail first
    matching::PatternSpec p;
    p.server = "mine";
    p.name = "exponential";
    p.regex = re;
    p.whole_line = true;
    auto m = Matcher::build({"mine"}, {p});
    ASSERT_TRUE(m) << m.error().message;
    auto login = [&](int n) {
        MatchState st(**m);
        auto hit = (*m)->match_line(std::string(n, 'a') + " from 192.0.2.1", k_now, st);
        return hit ? hit->ip.to_string() : std::string("none");
    };
    auto default_limit = [&](int n) {  // the same regex with PCRE2's defaults
        int err = 0;
        PCRE2_SIZE off = 0;
        pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), 0, &err, &off, nullptr);
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
        const std::string s = std::string(n, 'a') + " from 192.0.2.1";
        const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, nullptr);
        pcre2_match_data_free(md);
        pcre2_code_free(code);
        return rc;
    };
    EXPECT_EQ(login(8), "192.0.2.1");
    EXPECT_GT(default_limit(10), 0);
    EXPECT_EQ(login(10), "none") << "matched beyond k_regex_match_limit";
    // The built-in Dovecot regex on a crafted user name (">, " thousands of times before an
    // address that fails): no login, and a real login line after it still counts.
    const std::string crafted = "Nov 22 00:31:13 mx1 dovecot: imap-login: Login: user=<";
    std::string buf = crafted;
    for (int i = 0; i < 20000; ++i) buf += ">, ";
    buf += ">, method=PLAIN, rip=1.2.3.4x\n";
    buf += crafted + "ok>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.2, mpid=1, session=<x>\n";
    MatchState st(*all());
    std::vector<std::string> got;
    all()->scan(buf, k_now, st, [&](const matching::LoginMatch& hit) { got.push_back(hit.ip.to_string()); });
    EXPECT_EQ(got, (std::vector<std::string>{"192.0.2.10"}));
}
