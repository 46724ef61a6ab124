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
// A line that fits none of them yields nothing. Pure function, no allocation.
// Security: the whole line is untrusted; views never reach outside it.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "core/time.hpp"

namespace rp::matching {

enum class TimeFormat { none, rfc3164, rfc3164_year, rfc3339, tai64n };

struct SyslogLine {
    TimeFormat time_format = TimeFormat::none;
    std::string_view timestamp;
    std::string_view host;     // empty when the line has none
    std::string_view tag;      // program name, without "[pid]" (RFC 5424: APP-NAME)
    std::string_view pid;      // empty when absent
    std::string_view message;  // text after "tag[pid]: " (RFC 5424: MSG, leading spaces removed)
};

std::optional<SyslogLine> parse_syslog_line(std::string_view line);

// The time a line was written. RFC 3164 times are local time in the process's time zone with
// the year inferred (the latest year that does not put the line more than a day in the future;
// "Nov 22 2026 00:31:13" gives it);
// any time later than `now` is clamped to `now`; a line without a usable time is `now`.
core::Time resolve_time(const SyslogLine& line, core::Time now);

}  // namespace rp::matching
