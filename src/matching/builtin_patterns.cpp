// The built-in pattern sets. Each is data: literals for the prefilter, a tag regex as evidence
// of the sender, and a message regex. Formats and sources are in docs/servers.md.
//
// Literals (the prefilter, see matcher.hpp): each must occur in every line its pattern matches,
// and together they should be few and rare in mail logs, because every line holding one is
// parsed and Hyperscan's Teddy, which finds them, slows down with their number (8 at most, or
// it switches to a slower engine) and with how common their LAST THREE BYTES are: Teddy looks
// for those first, then confirms. So the sets share 8 literals, each cut to end on rare bytes,
// but "Login: " and "pop", which the pair search finds by two bytes instead (Literal::pair):
// "tarted prox" (not "...proxying": "ing" is everywhere; "started" and 2.3.19's "Started"), "ucc" (success, Successful),
// "ogged i" ("Logged in", "logged in"; not "...in": " in" is common, and the set prefiltered 12%
// slower with it),
// `status="ok"` (Perdition, not "perdition": "ion"), "LOGIN, u" (Courier; not "LOGIN, user=":
// "er=" ends the user= field of every Dovecot login process line), and "pop" for the tags of the pop family,
// with Dovecot's own "pop3-login: "/"pop3(" excepted. docs/benchmarks.md has the figures.
//
// Conventions that keep user-controlled text from granting:
//  - message regexes are anchored at the start of the message, on text the server writes;
//  - the address is taken from the LAST occurrence of its field (a greedy match), so a field
//    imitated inside a user name (which comes first) is skipped; the user is informational;
//  - the ip group accepts only address characters and must parse as a whole address.
#include "matching/matcher.hpp"

namespace rp::matching {

namespace {

// An address as servers print it: IPv4, IPv6, v4-mapped. Parsed strictly afterwards.
#define RP_IP "(?<ip>[0-9A-Fa-f:.]+)"

using R = PatternRole;

}  // namespace

const std::vector<PatternSpec>& builtin_patterns() {
    // Dovecot 2.0-2.3 "Login:", 2.4 "Logged in:"; elements after user=<> may be reordered or
    // customised (login_log_format_elements), so anything may stand between user and rip.
    // `(?=, )(?:[^,\n]*+,)+ rip=` is `(?:, .*)?, rip=`: the same strings, tried in the same order
    // (the last ", rip=" first), so the same captures. Written for PCRE2's JIT, which backtracks
    // it a field at a time where `.*` gave back one character at a time: with the session part
    // below, 219 -> 141 ns per login line for `(?=, ).*, rip=` (docs/benchmarks.md, "Pair search,
    // a cheaper Dovecot regex, ..."), then 219 -> 181 ns on another host for this form ("A third
    // host ..."). (`[^,\n]` is `.` without ',': every regex is compiled with LF as its newline,
    // matcher_build.cpp.) Backtracking is bounded (k_regex_match_limit). The group takes 8 bytes
    // of the JIT's stack (32 KiB) per comma after the user, so from ~4,000 such commas the JIT
    // gives up (no match) where `.*` went on; a login message stays under 800 bytes
    // (k_max_login_message_bytes) and longer ones are refused anyway
    // (Matching.DovecotLoginWithManyCommasUnderTheLengthCap).
    static const std::string dovecot_fields = R"(user=<(?<user>.*?)>(?=, )(?:[^,\n]*+,)+ rip=)" RP_IP "(?:,|$)";
    // The login's session id (2.x: the last field, "session=<8T9Vr+dhxqR/AAAB>"), which its end
    // line names (builtin_session_end_patterns). Searched after the last rip=, where the server
    // writes it and no user-chosen text stands; not for proxies, whose end the backend logs.
    // (`(?:X|)` is `(?:X)?`, which the JIT runs slower.)
    static const std::string dovecot_session = R"((?:.*, session=<(?<session>[A-Za-z0-9+/]{1,64})>|))";
    // "Login: " ends in "n: ", as every "imap-login: " and "pop3-login: " does: Teddy would
    // confirm it on most Dovecot lines. Its 'L' and the 'n' four bytes on are together rare
    // (4,110 places in 30 MB of genlog against 3,946 occurrences), so the pair search finds it.
    static const Literal login{"Login: ", {}, Literal::Pair{0, 4}};
    static const std::vector<Literal> dovecot_literals = {login, "ogged i"};
    // "pop" is there for the program tags of the pop family (popa3d, spop3d, vm-pop3d, cucipop,
    // qpopper's popper, vpopmail), whose session lines have no rarer text. Dovecot writes "pop"
    // at the start of the message in most lines of its POP service ("pop3-login: ...",
    // "pop3(user)<...>: ..."), where none of those tags can be: such an occurrence is no hit.
    // (A third of a busy Dovecot log otherwise, each line parsed for nothing.) Found by Teddy,
    // each of those occurrences cost a confirmation and a callback (~15% of a one-thread scan of
    // genlog); the pair search ('p' and the 'p' two bytes on) drops them as it confirms, in the
    // same pass as "Login: " (docs/benchmarks.md, "... and three cuts").
    static const Literal pop{"pop", {"pop3-login: ", "pop3("}, Literal::Pair{0, 2}};
    static const std::vector<PatternSpec> patterns = {
        // --- Dovecot ---------------------------------------------------------------------
        // Through syslog: "host dovecot: imap-login: Login: user=<...>, ..." The syslog tag is
        // Dovecot's instance_name ("dovecot" unless changed): any tag containing "dovecot".
        {"dovecot", "login", dovecot_literals, "(?i)dovecot",
         "^(?:imap|pop3)-login: (?:Info: )?(?:Login|Logged in): " + dovecot_fields + dovecot_session},
        // Dovecot's own log file (log_path): "imap-login: Info: Login: user=<...>, ..."
        {"dovecot", "login-logfile", dovecot_literals, "^(?:imap|pop3)-login$",
         "^(?:Info: )?(?:Login|Logged in): " + dovecot_fields + dovecot_session},
        // Dovecot 1.x through syslog writes its own date and level after "dovecot:":
        // "dovecot: Nov 22 00:31:13 Info: imap-login: Login: user=<a>, method=PLAIN, rip=..."
        {"dovecot", "login-v1", {login}, "(?i)dovecot",
         R"(^(?:\w{3} [ \d]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?Info: (?:imap|pop3)-login: Login: )" +
             dovecot_fields},
        // Dovecot 1.0 early form: "imap-login: Login: alice [192.0.2.1]"
        {"dovecot", "login-v10", {login}, "(?i)dovecot|^(?:imap|pop3)-login$",
         R"(^(?:(?:imap|pop3)-login: )?(?:Info: )?Login: (?:user=)?(?<user>[^\s<>]+) \[)" RP_IP R"(\]$)"},
        // Proxy, 2.0-2.2: "imap-login: proxy(alice): started proxying to 192.0.2.5:143: user=<alice>, ..., rip=..."
        // 2.3.19 (Debian 12, seen from the real server in the tests) and later:
        // "imap-login: proxy(alice,192.0.2.5:143): Started proxying to <192.0.2.5> (0.027 secs): user=<alice>, ..."
        // (2.4 may add " (<host>)", " from SRC", " as user U", " (master M)" before the ": user=<").
        {"dovecot", "proxy", {"tarted prox"}, "(?i)dovecot|^(?:imap|pop3)-login$",
         R"(^(?:(?:imap|pop3)-login: )?(?:Info: )?proxy\((?<user0>[^)]*)\): [Ss]tarted proxying to \S+(?: .*?)?: )" +
             dovecot_fields},

        // --- Courier pop3d/imapd (and -ssl, courierpop3login, customised tags) ------------
        // "pop3d: LOGIN, user=alice, ip=[::ffff:192.0.2.1], port=[41234]" (older: no port)
        // Not: "LOGIN FAILED, ...", "LOGOUT, ...", "DISCONNECTED, ...", "TIMEOUT, ...".
        {"courier", "login", {"LOGIN, u"}, "(?i)pop3|imap|courier",
         R"(^LOGIN, user=(?<user>.*), ip=\[)" RP_IP R"(\](?:, |$))"},

        // --- Cyrus imapd/pop3d ----------------------------------------------------------
        // "cyrus/imap[12]: login: host.example [192.0.2.1] alice PLAIN User logged in SESSIONID=<...>"
        // (RFC 5424 via rsyslog cuts the tag to "cyrus"). Not: "badlogin: ...".
        {"cyrus", "login", {"ogged i"}, "(?i)cyrus|imap|pop3",
         R"(^login: (?:\S+ )?\[)" RP_IP R"(\] (?<user>\S+) \S+ User logged in(?: |$))"},

        // --- UW ipop3d/imapd ------------------------------------------------------------
        // "ipop3d[12]: Login user=alice host=client.example [192.0.2.1] nmsgs=0/0"
        // "imapd[12]: Authenticated user=alice host=[192.0.2.1] mech=PLAIN", "Auth ...", "APOP ..."
        // Not: "Login failed user=...", "Logout user=...", "Autologout user=...".
        {"uw", "login", {" host="}, "^(?:ipop[23]s?d|imaps?d|pop3s?d)$",
         R"(^(?:Login|Authenticated|Auth|APOP) user=(?<user>\S+) host=(?:\S+ )?\[)" RP_IP R"(\](?: |$))"},

        // --- qpopper ------------------------------------------------------------------
        // "popper[12]: (v4.1.0) POP login by user \"alice\" at (client.example) 192.0.2.1"
        // Not the "Stats: ..." line written at logout.
        {"qpopper", "login", {pop}, "popper",
         R"re(^(?:\[popper\] )?(?:\([^)]*\) )?POP login by user "(?<user>[^"]*)" at \([^)]*\) )re" RP_IP "(?: |$)"},

        // --- vpopmail / vchkpw ------------------------------------------------------------
        // "vchkpw-pop3[12]: (PLAIN) login success alice@example.com:192.0.2.1"
        // Not vchkpw-smtp/-submission (SMTP AUTH), "password fail", "user not found".
        {"vpopmail", "vchkpw", {"ucc"}, "^vchkpw-(?:pop3|imap)d?$",
         R"(^\([A-Za-z0-9-]+\) login success (?<user>[^:\s]+):)" RP_IP "$"},
        // "vpopmail[12]: vchkpw: login [alice@example.com] from 192.0.2.1"
        {"vpopmail", "vpopmail", {pop}, "^vpopmail$",
         R"(^vchkpw: login \[(?<user>[^\]]*)\] from )" RP_IP "$"},

        // --- solid-pop3d ----------------------------------------------------------------
        // "spop3d[12]: user alice authenticated - 192.0.2.1" / "... - client.example (192.0.2.1)"
        // (Debian's 0.15 also writes "user u authenticated through APOP - IP" and, for mapped
        // users, "mapped user u authenticated - IP"; seen from the real server in the tests.)
        {"solid-pop3d", "login", {pop}, "^(?:spop3d|solid-pop3d)$",
         R"(^(?:mapped )?user (?<user>\S+) authenticated(?: through APOP)? - (?|(?<ip>[0-9A-Fa-f:.]+)|\S+ \((?<ip>[0-9A-Fa-f:.]+)\))$)"},
        // Built without --enable-logextend: "connect from IP" ... "user alice authenticated"
        {"solid-pop3d", "session", {pop}, "^(?:spop3d|solid-pop3d)$",
         "^connect from " RP_IP "$", false, R::session},
        {"solid-pop3d", "session-login", {pop}, "^(?:spop3d|solid-pop3d)$",
         R"(^user (?<user>\S+) authenticated$)", false, R::session_login},

        // --- popa3d (two lines from one pid; a patched build writes one line) -------------
        // "popa3d[12]: Authentication passed for alice -- [192.0.2.1]"
        {"popa3d", "login", {pop}, "^popa3d$",
         R"(^Authentication passed for (?<user>\S+) -- \[)" RP_IP R"(\]$)"},
        // "popa3d[12]: Session from 192.0.2.1" ... "popa3d[12]: Authentication passed for alice"
        {"popa3d", "session", {pop}, "^popa3d$", "^Session from " RP_IP "$", false, R::session},
        {"popa3d", "session-login", {pop}, "^popa3d$",
         R"(^Authentication passed for (?<user>\S+)$)", false, R::session_login},

        // --- GNU pop3d (old releases only: Mailutils 3.x never logs the address with the
        // login; see docs/servers.md) ----------------------------------------------------
        // "gnu-pop3d[12]: User 'alice' logged in with mailbox '/var/mail/alice' from 192.0.2.1"
        {"gnu-pop3d", "login", {"ogged i"}, "^gnu-pop3d$",
         R"(^User '?(?<user>[^' ]+)'? logged in with mailbox \S+(?: \(\d+ msgs\))? from )" RP_IP "$"},

        // --- Perdition --------------------------------------------------------------------
        // "perdition.imap4[12]: Auth: 192.0.2.1:40000->192.0.2.2:143 client-secure=ssl
        //  authorisation_id=NONE authentication_id=\"alice\" server=\"10.0.0.5:143\" ... status=\"ok\""
        // and the older "Auth: 192.0.2.1->192.0.2.2 user=\"alice\" server=... port=... status=\"ok\""
        {"perdition", "login", {R"(status="ok")"}, "^perdition",
         R"re(^Auth: (?:\[)?(?<ip>[0-9A-Fa-f:.]+?)(?:\])?(?::\d+)?->\S+ .*?(?:authentication_id|user)="(?<user>[^"]*)".* status="ok"$)re"},

        // --- teapop -------------------------------------------------------------------------
        // "teapop[12]: Successful login for alice@example.com [192.0.2.1]"
        {"teapop", "login", {"ucc"}, "^teapop$",
         R"(^Successful login for (?<user>\S+) \[)" RP_IP R"(\]$)"},

        // --- cucipop --------------------------------------------------------------------------
        // "cucipop[12]: alice 192.0.2.1 0, 0 (0), 0 (0)": the session summary cucipop writes
        // after a successful login (failures log "... authentication failure").
        {"cucipop", "login", {pop}, "^cucipop$",
         R"(^(?<user>\S+) )" RP_IP R"( \d+, \d+ \(\d+\), \d+ \(\d+\)$)"},

        // --- vm-pop3d (one-line, and the older two-line form) --------------------------------
        // "vm-pop3d[12]: User 'alice' logged in from 192.0.2.1"
        {"vm-pop3d", "login", {"ogged i"}, "^vm-pop3d$",
         R"(^User '?(?<user>[^' ]+)'? logged in from )" RP_IP "$"},
        // "vm-pop3d[12]: Connect from 192.0.2.1" ... "vm-pop3d[12]: User 'alice' logged in"
        {"vm-pop3d", "session", {pop}, "^vm-pop3d$", "^Connect from " RP_IP "$", false, R::session},
        {"vm-pop3d", "session-login", {"ogged i"}, "^vm-pop3d$",
         R"(^User '?(?<user>[^' ]+)'? logged in$)", false, R::session_login},

        // --- Apple Mac OS X Server IMAP/POP -----------------------------------------------------
        // Its own log: "Nov 22 2026 00:31:13 IMAP User \"alice\" log on successful from 192.0.2.1"
        // (also POP; a time with the year, no host, no tag). Through syslog the tag must look
        // like Apple's mail service: another program's line that ends so (a user name in an sshd
        // line, a Subject in a Postfix warning) is not a login.
        {"apple", "login", {"ucc"}, "(?i)^$|apple|mailservice",
         R"re(^(?:IMAP|POP3?) User "(?<user>[^"]*)" log on successful from )re" RP_IP "$"},
    };
    return patterns;
}

// Session end lines (docs/limits.md). Dovecot 2.3 writes, for every end of an IMAP or POP3
// session, with its default mail_log_prefix "%s(%u)<%{pid}><%{session}>: " (seen from the real
// 2.3.19 in tests/integration/test_sessions.py):
//   "imap(alice)<5544><8T9Vr+dhxqR/AAAB>: Disconnected: Logged out in=32 out=788 ..."
//   "imap(bob)<5548><NQNYr+dh0qR/AAAB>: Disconnected: Connection closed (No commands sent) in=0 ..."
//   "pop3(alice)<5552><X91ar+dhSL5/AAAB>: Disconnected: Logged out top=0/0, retr=0/0, ..."
// (also "Disconnected for inactivity", "Disconnected in IDLE"; "Logged out ..." without
// "Disconnected: " in other releases). The session id is the login's session=<...>. The user is
// written between "(" and ")" and cannot hold ')' there, so the structure before it is fixed.
// Literal ")<" (the end of "(user)<pid>"): one literal for both protocols and both forms; the
// lines holding it are Dovecot's session-process lines, about one per session.
const std::vector<PatternSpec>& builtin_session_end_patterns() {
    static const std::string tail =
        R"((?:imap|pop3)\((?<user>[^()\s]*)\)<(?<pid>\d+)><(?<session>[A-Za-z0-9+/]{1,64})>: )";
    static const std::string what = "(?:Disconnected|Logged out)";
    static const std::vector<PatternSpec> patterns = {
        // Through syslog: "host dovecot: imap(alice)<5544><8T9V...>: Disconnected: Logged out ..."
        {"dovecot", "session-end", {")<"}, "(?i)dovecot", "^" + tail + what, false, R::session_end},
        // Dovecot's own log file: "Dec 05 19:06:07 imap(alice)<5544><8T9V...>: Info: Disconnected: ..."
        // (the "tag" is "imap(alice)<5544><...>": matched on the whole line, after 1 to 4 time
        // tokens, as log_timestamp writes them).
        {"dovecot", "session-end-logfile", {")<"}, "", "^(?:\\S+ +){1,4}?" + tail + "Info: " + what, true,
         R::session_end},
    };
    return patterns;
}

std::vector<std::string> builtin_servers() {
    std::vector<std::string> out;
    for (const auto& p : builtin_patterns())
        if (out.empty() || out.back() != p.server) out.push_back(p.server);
    return out;
}

}  // namespace rp::matching
