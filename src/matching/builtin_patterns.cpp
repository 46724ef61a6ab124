// The built-in pattern sets. Each is data: literals for the prefilter, a tag regex as evidence
// of the sender, and a message regex. Formats and sources are in docs/servers.md.
//
// Conventions that keep user-controlled text from granting:
//  - message regexes are anchored at the start of the message, on text the server writes;
//  - the address is taken from the LAST occurrence of its field (a greedy match), so a field
//    imitated inside a user name (which comes first) is skipped; the user is informational;
//  - the ip group accepts only address characters and must parse as a whole address.
#include "matching/matcher.hpp"

namespace rp::matching {

const std::vector<PatternSpec>& builtin_patterns() {
    // Dovecot 2.0-2.3 "Login:", 2.4 "Logged in:"; elements after user=<> may be reordered or
    // customised (login_log_format_elements), so anything may stand between user and rip.
    static const std::string dovecot_fields =
        R"(user=<(?<user>.*?)>(?:, .*)?, rip=(?<ip>[0-9A-Fa-f:.]+)(?:,|$))";
    static const std::vector<PatternSpec> patterns = {
        // Through syslog: "host dovecot: imap-login: Login: user=<...>, ..."
        {"dovecot", "login", {"Login: user=<", "Logged in: user=<"}, "^dovecot$",
         "^(?:imap|pop3)-login: (?:Info: )?(?:Login|Logged in): " + dovecot_fields, false},
        // Dovecot's own log file (log_path): "imap-login: Info: Login: user=<...>, ..."
        {"dovecot", "login-logfile", {"Login: user=<", "Logged in: user=<"}, "^(?:imap|pop3)-login$",
         "^(?:Info: )?(?:Login|Logged in): " + dovecot_fields, false},
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
