// SyslogLine: splits one log line into timestamp, host, program tag, pid and message.
//
// Understood framings (each optionally preceded by a raw "<PRI>" and, after the timestamp, a
// "facility.severity" token):
//   RFC 3164 / rsyslog traditional  "Nov 22 00:31:13 host dovecot[12]: imap-login: Login: ..."
//   rsyslog ISO-8601 (Debian 12)    "2026-11-22T00:34:23.322872+00:00 host dovecot: ..."
//   RFC 5424                        "<22>1 2026-11-22T00:34:23.322872+00:00 host dovecot 12 - -  ..."
//   a server's own log file         "Nov 22 00:31:13 imap-login: Info: Login: ..." (no host)
//   daemontools/multilog            "@4000000063f1a2b31c2d3e4f dovecot: ..." (TAI64N label)
//   a time with the year            "Nov 22 2026 00:31:13 IMAP User ..." (Apple's mail server
//                                   log; the tag, if any, is optional: no host)
//   any other time form of log_time.hpp at the start: "2026-11-22 00:31:13 imap-login: ..."
//                                   (Dovecot's log_timestamp), "1763771473.123456 host tag: ..."
//   no time before the tag, one after it: "dovecot: Nov 22 00:31:13 Info: imap-login: ..."
//                                   (Dovecot 1.x's own log): the time is the message's leading
//                                   one; the message keeps it.
// A line that fits none of them yields nothing. Pure function, no allocation.
// Security: the whole line is untrusted; views never reach outside it.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "core/time.hpp"
#include "matching/log_time.hpp"

namespace rp::matching {

struct SyslogLine {
    TimeFormat time_format = TimeFormat::none;
    std::string_view timestamp;
    std::string_view host;     // empty when the line has none
    std::string_view tag;      // program name, without "[pid]" (RFC 5424: APP-NAME)
    std::string_view pid;      // empty when absent
    std::string_view message;  // text after "tag[pid]: " (RFC 5424: MSG, leading spaces removed)
};

std::optional<SyslogLine> parse_syslog_line(std::string_view line);

// The time a line was written and where it came from (log_time.hpp): zoneless times are local
// time in the process's time zone, RFC 3164's year inferred; a time up to k_max_ahead later than
// `now` is clamped to `now`; a line without a usable time gets `now` with origin `reading`.
LineTime resolve_line_time(const SyslogLine& line, core::Time now);
inline core::Time resolve_time(const SyslogLine& line, core::Time now) { return resolve_line_time(line, now).time; }

}  // namespace rp::matching
