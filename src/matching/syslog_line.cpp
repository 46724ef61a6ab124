#include "matching/syslog_line.hpp"

#include <array>
#include <cstdint>
#include <ctime>

namespace rp::matching {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view next_token(std::string_view& s) {
    const auto sp = s.find(' ');
    auto tok = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    return tok;
}

void skip_spaces(std::string_view& s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
}

bool is_facility_severity(std::string_view tok) {
    const auto dot = tok.find('.');
    if (dot == std::string_view::npos) return false;
    static constexpr std::array<std::string_view, 24> facilities = {
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "ntp", "security",
        "console", "clock"};
    static constexpr std::array<std::string_view, 11> severities = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "warn", "error", "panic"};
    const auto f = tok.substr(0, dot), s = tok.substr(dot + 1);
    bool fok = false, sok = false;
    for (auto x : facilities) fok |= x == f;
    for (auto x : severities) sok |= x == s;
    return fok && sok;
}

// "tag[pid]:" or "tag:" at the start of s; on success fills tag/pid and consumes through ": ".
bool take_tag(std::string_view& s, SyslogLine& out) {
    std::size_t i = 0;
    while (i < s.size() && i < 64 && s[i] != ':' && s[i] != '[' && s[i] != ' ') ++i;
    if (i == 0 || i >= s.size()) return false;
    const auto tag = s.substr(0, i);
    std::string_view pid;
    if (s[i] == '[') {
        const auto close = s.find(']', i);
        if (close == std::string_view::npos || close - i > 24) return false;
        pid = s.substr(i + 1, close - i - 1);
        i = close + 1;
    }
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] != ' ') return false;  // "tag:x" is not a tag
    if (i < s.size()) ++i;
    out.tag = tag;
    out.pid = pid;
    out.message = s.substr(i);
    s = {};
    return true;
}

// Dovecot 1.x's own log writes its time after the tag: "dovecot: Nov 22 00:31:13 Info: ...".
// A line with no time of its own takes the one its message begins with (the message keeps it).
SyslogLine& adopt_message_time(SyslogLine& out) {
    if (out.time_format == TimeFormat::none) {
        const auto t = find_leading_time(out.message);
        out.time_format = t.format;
        out.timestamp = t.text;
    }
    return out;
}

std::optional<SyslogLine> parse_rfc5424(std::string_view s, std::string_view pri_stripped_from) {
    (void)pri_stripped_from;
    SyslogLine out;
    auto ts = next_token(s);
    if (ts != "-") {  // a TIMESTAMP of no known form is an invalid RFC 3339 time, not none
        const auto t = classify_time(ts);
        out.time_format = t.format == TimeFormat::none ? TimeFormat::rfc3339 : t.format;
        out.timestamp = ts;
    }
    auto host = next_token(s);
    auto app = next_token(s);
    auto procid = next_token(s);
    auto msgid = next_token(s);
    if (msgid.empty()) return std::nullopt;
    // STRUCTURED-DATA: "-" or one or more [id k="v" ...] elements (values may hold escaped ']').
    if (s.starts_with("-")) {
        s.remove_prefix(1);
    } else {
        while (s.starts_with("[")) {
            std::size_t i = 1;
            bool in_quotes = false;
            for (; i < s.size(); ++i) {
                if (in_quotes && s[i] == '\\') { ++i; continue; }
                if (s[i] == '"') in_quotes = !in_quotes;
                else if (!in_quotes && s[i] == ']') break;
            }
            if (i >= s.size()) return std::nullopt;
            s.remove_prefix(i + 1);
        }
    }
    skip_spaces(s);
    if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
    out.host = host == "-" ? std::string_view() : host;
    out.tag = app == "-" ? std::string_view() : app;
    out.pid = procid == "-" ? std::string_view() : procid;
    out.message = s;
    return out;
}

}  // namespace

std::optional<SyslogLine> parse_syslog_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    std::string_view s = line;
    const auto original = s;
    if (s.starts_with("<")) {
        std::size_t i = 1;
        while (i < s.size() && i <= 4 && is_digit(s[i])) ++i;
        if (i > 1 && i < s.size() && s[i] == '>') s.remove_prefix(i + 1);
    }
    if (s.size() > 2 && s[0] == '1' && s[1] == ' ' && s.data() != original.data()) return parse_rfc5424(s.substr(2), original);

    SyslogLine out;
    if (const auto t = find_leading_time(s); t.format != TimeFormat::none) {
        out.time_format = t.format;
        out.timestamp = t.text;
        s.remove_prefix(t.text.size());
        skip_spaces(s);
        if (t.format == TimeFormat::rfc3164_year) {
            // Apple's server log: no host; a tag is optional, the message may follow the time.
            if (!take_tag(s, out)) out.message = s;
            return out;
        }
    }
    // Optional "facility.severity" (rsyslog/syslog-ng templates that print it).
    {
        auto probe = s;
        if (is_facility_severity(next_token(probe))) s = probe;
    }
    // Either "tag[pid]: msg" (a server's own log file) or "host tag[pid]: msg".
    if (take_tag(s, out)) return adopt_message_time(out);
    auto probe = s;
    auto host = next_token(probe);
    if (!host.empty() && take_tag(probe, out)) {
        out.host = host;
        return adopt_message_time(out);
    }
    if (out.time_format == TimeFormat::none) return std::nullopt;
    // A header without a recognisable tag: keep the rest as the message.
    out.host = host;
    out.message = probe;
    return out;
}

LineTime resolve_line_time(const SyslogLine& line, core::Time now) {
    return resolve_line_time(TimeToken{line.time_format, line.timestamp}, now);
}

}  // namespace rp::matching
