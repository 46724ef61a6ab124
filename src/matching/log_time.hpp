// Log times: the time forms that servers and syslog daemons write into log lines, recognised in
// text and turned into instants, and where a login's time came from.
//
// Forms (TimeFormat) and who writes them (docs/servers.md has the full table):
//   rfc3164       "Nov 22 00:31:13", "Nov  2 00:31:13", "Nov 22 00:31:13.123456": RFC 3164, rsyslog
//                 traditional, sysklogd, BusyBox, macOS syslogd, Dovecot's default log_timestamp,
//                 journalctl -o short / short-precise. Local time; the year is inferred.
//   rfc3164_year  "Nov 22 2026 00:31:13": Apple's mail server log. Local time.
//   rfc3339       "2026-11-22T00:34:23.322872+00:00", "...Z", "...+0100": rsyslog (Debian 12 default),
//                 RFC 5424, syslog-ng iso, journalctl -o short-iso(-precise). Also with ' ' for 'T'.
//   iso_local     "2026-11-22 00:31:13", "2026-11-22 00:31:13.123456", "2026-11-22T00:31:13": no zone:
//                 Dovecot with log_timestamp = "%Y-%m-%d %H:%M:%S " (and "%{usecs}"), other
//                 strftime writers. Local time, like every zoneless form a server writes.
//   svlogd        "2026-11-22_00:31:13.12345": runit's svlogd -tt. UTC by its definition.
//   tai64n        "@4000000063f1a2b31c2d3e4f": daemontools multilog, s6-log, svlogd -t.
//   epoch         "1763771473", "1763771473.123456": journalctl -o short-unix, syslog-ng
//                 ts-format(unix), Dovecot log_timestamp = "%s ". Ten digits (2001..2286).
//   clf           "22/Nov/2026:00:31:13 +0000": web-style logs; only in a captured (?<time>...).
//   asctime       "Sun Nov 22 00:31:13 2026": ctime(3); only in a captured (?<time>...). Local time.
// A time cannot be determined when the line has none, when its fields are out of range, or when
// it lies more than k_max_ahead after the reading time (a wrong zone or clock: clamping it to
// the reading time would give an old line a fresh time). Then the reading time stands in and the
// origin is `reading`, which never grants from a backlog (core/login_event.hpp).
// Security: the text is untrusted; views never reach outside it; no allocation when parsing.
// Thread-safety: pure functions (local-time conversion caches per thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/login_event.hpp"
#include "core/time.hpp"

namespace rp::matching {

enum class TimeFormat : std::uint8_t { none, rfc3164, rfc3164_year, rfc3339, iso_local, svlogd, tai64n, epoch, clf, asctime };

// A time as it stands in a line.
struct TimeToken {
    TimeFormat format = TimeFormat::none;
    std::string_view text;
};

// The time a log line (or the message after a tag) may begin with: any form but clf and asctime,
// followed by a space or the end of `s`. `text` excludes the space. Format none: there is none.
TimeToken find_leading_time(std::string_view s);
// `s` (surrounding spaces ignored) as exactly one time of any form; format none if it is not.
TimeToken classify_time(std::string_view s);

// Why a login has the time it has.
enum class TimeNote : std::uint8_t {
    from_line,  // the line's own time
    clamped,    // the line's time, slightly ahead of the reading time (clock skew): the reading time
    no_time,    // the line has no time: the reading time
    bad_time,   // a time that is no valid instant (or a captured time of no known form): the reading time
    ahead,      // more than k_max_ahead ahead of the reading time (wrong zone or clock): the reading time
};

inline constexpr auto k_max_ahead = std::chrono::minutes(2);

struct LineTime {
    core::Time time;  // never later than the reading time
    core::TimeOrigin origin = core::TimeOrigin::reading;
    TimeFormat format = TimeFormat::none;
    TimeNote note = TimeNote::no_time;
    bool captured = false;  // from a pattern's (?<time>...) group rather than the framing
};

// The instant `t` denotes; nullopt when it is none or out of range. RFC 3164 times take the
// latest year that does not put them more than a day after `now`.
std::optional<core::Time> time_instant(TimeToken t, core::Time now);
// The time a login read at `now` gets from `t`.
LineTime resolve_line_time(TimeToken t, core::Time now);

std::string_view time_format_name(TimeFormat f);
// For `scan --explain`: "line: rfc3339", "line (captured): iso_local", "line: rfc3164, clamped to
// the reading time", "reading time: no time in line", ...
std::string describe(const LineTime& t);

}  // namespace rp::matching
