#include "matching/log_time.hpp"

#include <array>
#include <ctime>
#include <optional>

namespace rp::matching {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool digits_at(std::string_view s, std::size_t pos, std::size_t n) {
    if (s.size() < pos + n) return false;
    for (std::size_t i = pos; i < pos + n; ++i)
        if (!is_digit(s[i])) return false;
    return true;
}

int num(std::string_view s, std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
        if (i >= s.size() || !is_digit(s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int month_index(std::string_view m) {
    static constexpr std::array<std::string_view, 12> names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i)
        if (names[static_cast<std::size_t>(i)] == m) return i;
    return -1;
}

// "Nov 22 " / "Nov  2 ": the month and day the RFC 3164 forms begin with (7 characters).
bool is_month_day(std::string_view s, std::size_t pos = 0) {
    return s.size() >= pos + 7 && is_alpha(s[pos]) && is_alpha(s[pos + 1]) && is_alpha(s[pos + 2]) &&
           s[pos + 3] == ' ' && (s[pos + 4] == ' ' || is_digit(s[pos + 4])) && is_digit(s[pos + 5]) && s[pos + 6] == ' ';
}

// "00:31:13" at pos.
bool is_clock(std::string_view s, std::size_t pos) {
    return s.size() >= pos + 8 && digits_at(s, pos, 2) && s[pos + 2] == ':' && digits_at(s, pos + 3, 2) &&
           s[pos + 5] == ':' && digits_at(s, pos + 6, 2);
}

// ".123456" (or ",123" after an ISO time) at pos: its length, 0 if none. At most 9 digits.
std::size_t fraction_len(std::string_view s, std::size_t pos, bool comma_too) {
    if (pos >= s.size() || !(s[pos] == '.' || (comma_too && s[pos] == ','))) return 0;
    std::size_t n = 0;
    while (pos + 1 + n < s.size() && is_digit(s[pos + 1 + n])) ++n;
    return n >= 1 && n <= 9 ? n + 1 : 0;
}

std::int64_t fraction_micros(std::string_view frac) {  // ".5" -> 500000
    std::int64_t v = 0;
    std::size_t digits = 0;
    for (std::size_t i = 1; i < frac.size() && digits < 6; ++i, ++digits) v = v * 10 + (frac[i] - '0');
    for (; digits < 6; ++digits) v *= 10;
    return v;
}

// "Z", "+01:00", "-0500" at pos: its length, 0 if none.
std::size_t zone_len(std::string_view s, std::size_t pos) {
    if (pos >= s.size()) return 0;
    if (s[pos] == 'Z') return 1;
    if (s[pos] != '+' && s[pos] != '-') return 0;
    if (digits_at(s, pos + 1, 2) && s.size() > pos + 3 && s[pos + 3] == ':' && digits_at(s, pos + 4, 2)) return 6;
    if (digits_at(s, pos + 1, 4)) return 5;
    return 0;
}

// "2026-11-22T00:31:13[.frac][zone]" with 'T', ' ' or '_' between date and clock.
std::size_t iso_len(std::string_view s, TimeFormat& format) {
    if (!(digits_at(s, 0, 4) && s.size() > 10 && s[4] == '-' && digits_at(s, 5, 2) && s[7] == '-' &&
          digits_at(s, 8, 2) && (s[10] == 'T' || s[10] == ' ' || s[10] == '_') && is_clock(s, 11)))
        return 0;
    std::size_t n = 19;
    n += fraction_len(s, n, true);
    const std::size_t z = zone_len(s, n);
    format = z > 0 ? TimeFormat::rfc3339 : s[10] == '_' ? TimeFormat::svlogd : TimeFormat::iso_local;
    return n + z;
}

std::size_t rfc3164_len(std::string_view s) {
    if (!is_month_day(s) || !is_clock(s, 7)) return 0;
    return 15 + fraction_len(s, 15, false);
}

std::size_t rfc3164_year_len(std::string_view s) {
    return is_month_day(s) && digits_at(s, 7, 4) && s.size() > 11 && s[11] == ' ' && is_clock(s, 12) ? 20 : 0;
}

std::size_t tai64n_len(std::string_view s) {
    if (s.size() < 25 || s[0] != '@') return 0;
    for (std::size_t i = 1; i < 25; ++i) {
        const char c = s[i];
        if (!is_digit(c) && !((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return 0;
    }
    return 25;
}

std::size_t epoch_len(std::string_view s) {
    if (!digits_at(s, 0, 10) || (s.size() > 10 && is_digit(s[10]))) return 0;
    return 10 + fraction_len(s, 10, false);
}

// "22/Nov/2026:00:31:13 +0000"
std::size_t clf_len(std::string_view s) {
    return s.size() >= 26 && digits_at(s, 0, 2) && s[2] == '/' && is_alpha(s[3]) && s[6] == '/' &&
                   digits_at(s, 7, 4) && s[11] == ':' && is_clock(s, 12) && s[20] == ' ' && zone_len(s, 21) == 5
               ? 26
               : 0;
}

// "Sun Nov 22 00:31:13 2026" / "Sun Nov  2 00:31:13 2026"
std::size_t asctime_len(std::string_view s) {
    return s.size() >= 24 && is_alpha(s[0]) && is_alpha(s[1]) && is_alpha(s[2]) && s[3] == ' ' &&
                   is_month_day(s, 4) && is_clock(s, 11) && s[19] == ' ' && digits_at(s, 20, 4)
               ? 24
               : 0;
}

// The form at the start of s and its length (0: none). clf and asctime only if `all`.
std::size_t time_len(std::string_view s, TimeFormat& format, bool all) {
    if (s.empty()) return 0;
    std::size_t n = 0;
    if (s[0] == '@') {
        if ((n = tai64n_len(s))) format = TimeFormat::tai64n;
    } else if (is_digit(s[0])) {
        if ((n = iso_len(s, format))) return n;
        if ((n = epoch_len(s))) format = TimeFormat::epoch;
        else if (all && (n = clf_len(s))) format = TimeFormat::clf;
    } else if (is_alpha(s[0])) {
        if ((n = rfc3164_len(s))) format = TimeFormat::rfc3164;
        else if ((n = rfc3164_year_len(s))) format = TimeFormat::rfc3164_year;
        else if (all && (n = asctime_len(s))) format = TimeFormat::asctime;
    }
    return n;
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// A calendar time as written: month 0..11.
struct Civil {
    int year = 0, mon = -1, day = 0, hh = 0, mm = 0, ss = 0;
    std::int64_t micros = 0;
    bool valid() const {
        static constexpr std::array<int, 12> days = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        return (leap || mon != 1 || day != 29) && year >= 1970 && year <= 9999 && mon >= 0 && mon < 12 && day >= 1 &&
               day <= days[static_cast<std::size_t>(mon)] && hh >= 0 && hh <= 23 && mm >= 0 && mm <= 59 && ss >= 0 &&
               ss <= 60;
    }
};

std::int64_t utc_seconds(const Civil& c) {
    return days_from_civil(c.year, static_cast<unsigned>(c.mon + 1), static_cast<unsigned>(c.day)) * 86400 +
           c.hh * 3600 + c.mm * 60 + c.ss;
}

// Local time -> unix seconds; mktime per distinct hour (it is slow and rereads the zone).
std::optional<std::int64_t> local_seconds(const Civil& c) {
    thread_local std::int64_t cached_key = -1, cached_base = 0;
    const std::int64_t key = ((static_cast<std::int64_t>(c.year) * 12 + c.mon) * 31 + c.day) * 24 + c.hh;
    if (key != cached_key) {
        std::tm tm{};
        tm.tm_year = c.year - 1900;
        tm.tm_mon = c.mon;
        tm.tm_mday = c.day;
        tm.tm_hour = c.hh;
        tm.tm_isdst = -1;
        const std::time_t t = std::mktime(&tm);
        if (t == static_cast<std::time_t>(-1)) return std::nullopt;
        cached_key = key;
        cached_base = t;
    }
    return cached_base + c.mm * 60 + c.ss;
}

core::Time at(std::int64_t seconds, std::int64_t micros) { return core::from_unix_micros(seconds * 1'000'000 + micros); }

std::optional<core::Time> local_instant(const Civil& c) {
    if (!c.valid()) return std::nullopt;
    const auto s = local_seconds(c);
    if (!s) return std::nullopt;
    return at(*s, c.micros);
}

// Month and day ("Nov 22 " / "Nov  2 ") at pos, the clock at clock_pos, a fraction after it.
Civil month_day_clock(std::string_view ts, std::size_t pos, std::size_t clock_pos) {
    Civil c;
    c.mon = month_index(ts.substr(pos, 3));
    c.day = ts[pos + 4] == ' ' ? num(ts, pos + 5, 1) : num(ts, pos + 4, 2);
    c.hh = num(ts, clock_pos, 2);
    c.mm = num(ts, clock_pos + 3, 2);
    c.ss = num(ts, clock_pos + 6, 2);
    if (ts.size() > clock_pos + 8 && ts[clock_pos + 8] == '.') c.micros = fraction_micros(ts.substr(clock_pos + 8));
    return c;
}

// The latest year that does not put the line more than a day after now.
std::optional<core::Time> rfc3164_instant(Civil c, core::Time now) {
    const std::time_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    thread_local std::time_t cached_now = -1;
    thread_local int cached_year = 0;
    if (now_s != cached_now) {
        std::tm now_tm{};
        localtime_r(&now_s, &now_tm);
        cached_now = now_s;
        cached_year = now_tm.tm_year + 1900;
    }
    for (int year = cached_year; year >= cached_year - 1; --year) {
        c.year = year;
        auto t = local_instant(c);
        if (!t) continue;  // Feb 29 of a common year
        if (*t <= now + std::chrono::hours(24)) return t;
    }
    return std::nullopt;
}

// Seconds east of UTC from "Z", "+01:00", "-0500".
std::int64_t zone_offset(std::string_view z) {
    if (z.empty() || z[0] == 'Z') return 0;
    const int h = num(z, 1, 2), m = num(z, z.size() == 6 ? 4 : 3, 2);
    return (h * 3600 + m * 60) * (z[0] == '-' ? -1 : 1);
}

std::optional<core::Time> iso_instant(std::string_view ts, TimeFormat format) {
    if (ts.size() < 19) return std::nullopt;  // an RFC 5424 TIMESTAMP of no known form
    Civil c;
    c.year = num(ts, 0, 4);
    c.mon = num(ts, 5, 2) - 1;
    c.day = num(ts, 8, 2);
    c.hh = num(ts, 11, 2);
    c.mm = num(ts, 14, 2);
    c.ss = num(ts, 17, 2);
    const std::size_t f = fraction_len(ts, 19, true);
    if (f) c.micros = fraction_micros(ts.substr(19, f));
    if (format == TimeFormat::iso_local) return local_instant(c);
    if (!c.valid()) return std::nullopt;
    const auto zone = ts.substr(19 + f);
    if (zone_len(zone, 0) != zone.size() || (zone.size() > 1 && num(zone, 1, 2) > 23)) return std::nullopt;
    return at(utc_seconds(c) - zone_offset(zone), c.micros);
}

std::optional<core::Time> tai64n_instant(std::string_view ts) {
    std::uint64_t secs = 0, nanos = 0;
    for (std::size_t i = 1; i < 25; ++i) {
        const char c = ts[i];
        const unsigned v = is_digit(c) ? static_cast<unsigned>(c - '0')
                                       : static_cast<unsigned>((c | 0x20) - 'a' + 10);
        if (i <= 16) secs = secs << 4 | v;
        else nanos = nanos << 4 | v;
    }
    // TAI64 label = 2^62 + TAI seconds; TAI - UTC = 37 s since 2017 (daemontools ignores leap
    // seconds and uses 10; the clamp absorbs the difference). A label before 1970 or after 9999
    // is no time (and would overflow in microseconds).
    constexpr std::uint64_t base = std::uint64_t{1} << 62, max_unix = 253402300799;
    if (secs < base + 10 || secs - base - 10 > max_unix || nanos >= 1'000'000'000) return std::nullopt;
    return at(static_cast<std::int64_t>(secs - base) - 10, static_cast<std::int64_t>(nanos / 1000));
}

std::optional<core::Time> epoch_instant(std::string_view ts) {
    std::int64_t s = 0;
    for (std::size_t i = 0; i < 10; ++i) s = s * 10 + (ts[i] - '0');
    return at(s, ts.size() > 10 ? fraction_micros(ts.substr(10)) : 0);
}

std::optional<core::Time> clf_instant(std::string_view ts) {
    Civil c;
    c.day = num(ts, 0, 2);
    c.mon = month_index(ts.substr(3, 3));
    c.year = num(ts, 7, 4);
    c.hh = num(ts, 12, 2);
    c.mm = num(ts, 15, 2);
    c.ss = num(ts, 18, 2);
    if (!c.valid() || num(ts, 22, 2) > 23) return std::nullopt;
    return at(utc_seconds(c) - zone_offset(ts.substr(21, 5)), 0);
}

}  // namespace

TimeToken find_leading_time(std::string_view s) {
    TimeFormat f = TimeFormat::none;
    const std::size_t n = time_len(s, f, false);
    if (n == 0 || (n < s.size() && s[n] != ' ')) return {};
    return {f, s.substr(0, n)};
}

TimeToken classify_time(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    TimeFormat f = TimeFormat::none;
    const std::size_t n = time_len(s, f, true);
    if (n == 0 || n != s.size()) return {};
    return {f, s};
}

std::optional<core::Time> time_instant(TimeToken t, core::Time now) {
    const auto ts = t.text;
    switch (t.format) {
        case TimeFormat::none: return std::nullopt;
        case TimeFormat::rfc3164: {
            const Civil c = month_day_clock(ts, 0, 7);
            if (c.mon < 0 || c.day < 1) return std::nullopt;
            return rfc3164_instant(c, now);
        }
        case TimeFormat::rfc3164_year: {
            Civil c = month_day_clock(ts, 0, 12);
            c.year = num(ts, 7, 4);
            return local_instant(c);
        }
        case TimeFormat::asctime: {
            Civil c = month_day_clock(ts, 4, 11);
            c.year = num(ts, 20, 4);
            return local_instant(c);
        }
        case TimeFormat::rfc3339:
        case TimeFormat::iso_local:
        case TimeFormat::svlogd: return iso_instant(ts, t.format);
        case TimeFormat::tai64n: return tai64n_instant(ts);
        case TimeFormat::epoch: return epoch_instant(ts);
        case TimeFormat::clf: return clf_instant(ts);
    }
    return std::nullopt;
}

LineTime resolve_line_time(TimeToken t, core::Time now) {
    LineTime r{now, core::TimeOrigin::reading, t.format, TimeNote::no_time};
    if (t.format == TimeFormat::none) return r;
    const auto when = time_instant(t, now);
    if (!when) {
        r.note = TimeNote::bad_time;
    } else if (*when > now + k_max_ahead) {
        r.note = TimeNote::ahead;
    } else {
        r.origin = core::TimeOrigin::line;
        r.note = *when > now ? TimeNote::clamped : TimeNote::from_line;
        r.time = std::min(*when, now);
    }
    return r;
}

std::string_view time_format_name(TimeFormat f) {
    switch (f) {
        case TimeFormat::none: return "none";
        case TimeFormat::rfc3164: return "rfc3164";
        case TimeFormat::rfc3164_year: return "rfc3164-year";
        case TimeFormat::rfc3339: return "rfc3339";
        case TimeFormat::iso_local: return "iso-local";
        case TimeFormat::svlogd: return "svlogd";
        case TimeFormat::tai64n: return "tai64n";
        case TimeFormat::epoch: return "epoch";
        case TimeFormat::clf: return "clf";
        case TimeFormat::asctime: return "asctime";
    }
    return "?";
}

std::string describe(const LineTime& t) {
    const std::string form(time_format_name(t.format));
    const std::string where = t.captured ? "captured " : "";
    switch (t.note) {
        case TimeNote::from_line: return (t.captured ? "line (captured): " : "line: ") + form;
        case TimeNote::clamped:
            return (t.captured ? "line (captured): " : "line: ") + form + ", ahead of the clock: the reading time";
        case TimeNote::no_time: return "reading time: no time in line";
        case TimeNote::bad_time:
            return t.format == TimeFormat::none ? "reading time: the " + where + "time has no known form"
                                                : "reading time: invalid " + where + form + " time";
        case TimeNote::ahead: return "reading time: " + where + form + " time more than 2 minutes ahead of the clock";
    }
    return "?";
}

}  // namespace rp::matching
