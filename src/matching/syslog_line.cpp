#include "matching/syslog_line.hpp"

#include <array>
#include <cstdint>
#include <ctime>

namespace rp::matching {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view next_token(std::string_view& s) {
    const auto sp = s.find(' ');
    auto tok = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    return tok;
}

void skip_spaces(std::string_view& s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
}

// "Nov 22 " / "Nov  2 ": the month and day both RFC 3164 forms begin with (7 characters).
bool is_month_day(std::string_view s) {
    return s.size() >= 7 && is_alpha(s[0]) && is_alpha(s[1]) && is_alpha(s[2]) && s[3] == ' ' &&
           (s[4] == ' ' || is_digit(s[4])) && is_digit(s[5]) && s[6] == ' ';
}

// "00:31:13" at pos.
bool is_clock(std::string_view s, std::size_t pos) {
    return s.size() >= pos + 8 && is_digit(s[pos]) && is_digit(s[pos + 1]) && s[pos + 2] == ':' &&
           is_digit(s[pos + 3]) && is_digit(s[pos + 4]) && s[pos + 5] == ':' && is_digit(s[pos + 6]) &&
           is_digit(s[pos + 7]);
}

// "Nov 22 00:31:13" / "Nov  2 00:31:13": 15 characters.
bool is_rfc3164_time(std::string_view s) { return is_month_day(s) && is_clock(s, 7); }

// "Nov 22 2026 00:31:13": 20 characters, the year given (Apple's mail server).
bool is_rfc3164_year_time(std::string_view s) {
    return is_month_day(s) && s.size() >= 20 && is_digit(s[7]) && is_digit(s[8]) && is_digit(s[9]) &&
           is_digit(s[10]) && s[11] == ' ' && is_clock(s, 12);
}

// "2026-11-22T00:34:23..." up to the next space.
bool is_rfc3339_time(std::string_view s) {
    return s.size() >= 19 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) && s[4] == '-' &&
           is_digit(s[5]) && is_digit(s[6]) && s[7] == '-' && is_digit(s[8]) && is_digit(s[9]) &&
           (s[10] == 'T' || s[10] == ' ') && is_digit(s[11]) && is_digit(s[12]) && s[13] == ':';
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

std::optional<SyslogLine> parse_rfc5424(std::string_view s, std::string_view pri_stripped_from) {
    (void)pri_stripped_from;
    SyslogLine out;
    auto ts = next_token(s);
    if (ts != "-") {
        out.time_format = TimeFormat::rfc3339;
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
    if (s.size() > 26 && s[0] == '@') {  // TAI64N label: '@' + 24 hex digits
        out.time_format = TimeFormat::tai64n;
        out.timestamp = s.substr(0, 25);
        s.remove_prefix(25);
        skip_spaces(s);
    } else if (is_rfc3164_time(s)) {
        out.time_format = TimeFormat::rfc3164;
        out.timestamp = s.substr(0, 15);
        s.remove_prefix(15);
        skip_spaces(s);
    } else if (is_rfc3164_year_time(s)) {
        // Apple's server log: no host; a tag is optional, the message may follow the time.
        out.time_format = TimeFormat::rfc3164_year;
        out.timestamp = s.substr(0, 20);
        s.remove_prefix(20);
        skip_spaces(s);
        if (!take_tag(s, out)) out.message = s;
        return out;
    } else if (is_rfc3339_time(s)) {
        out.time_format = TimeFormat::rfc3339;
        out.timestamp = next_token(s);
    }
    // Optional "facility.severity" (rsyslog/syslog-ng templates that print it).
    {
        auto probe = s;
        if (is_facility_severity(next_token(probe))) s = probe;
    }
    // Either "tag[pid]: msg" (a server's own log file) or "host tag[pid]: msg".
    if (take_tag(s, out)) return out;
    auto probe = s;
    auto host = next_token(probe);
    if (!host.empty() && take_tag(probe, out)) {
        out.host = host;
        return out;
    }
    if (out.time_format == TimeFormat::none) return std::nullopt;
    // A header without a recognisable tag: keep the rest as the message.
    out.host = host;
    out.message = probe;
    return out;
}

namespace {

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

int num(std::string_view s, std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len && i < s.size(); ++i) {
        if (!is_digit(s[i])) return -1;
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

// Local time -> unix seconds; mktime per distinct hour (it is slow and rereads the zone).
std::optional<std::int64_t> local_to_unix(int year, int mon, int day, int hour, int min, int sec) {
    thread_local std::int64_t cached_key = -1, cached_base = 0;
    const std::int64_t key = ((static_cast<std::int64_t>(year) * 12 + mon) * 31 + day) * 24 + hour;
    if (key != cached_key) {
        std::tm tm{};
        tm.tm_year = year - 1900;
        tm.tm_mon = mon;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_isdst = -1;
        const std::time_t t = std::mktime(&tm);
        if (t == static_cast<std::time_t>(-1)) return std::nullopt;
        cached_key = key;
        cached_base = t;
    }
    return cached_base + min * 60 + sec;
}

// The month, day and clock time of both RFC 3164 forms ("Nov 22 " then the clock at clock_pos).
struct Civil {
    int mon, day, hh, mm, ss;
};
std::optional<Civil> parse_civil(std::string_view ts, std::size_t clock_pos) {
    const Civil c{month_index(ts.substr(0, 3)), ts[4] == ' ' ? num(ts, 5, 1) : num(ts, 4, 2),
                  num(ts, clock_pos, 2), num(ts, clock_pos + 3, 2), num(ts, clock_pos + 6, 2)};
    if (c.mon < 0 || c.day < 1 || c.day > 31 || c.hh > 23 || c.mm > 59 || c.ss > 60) return std::nullopt;
    return c;
}

std::optional<core::Time> parse_time(const SyslogLine& l, core::Time now) {
    const auto ts = l.timestamp;
    switch (l.time_format) {
        case TimeFormat::none: return std::nullopt;
        case TimeFormat::rfc3164_year: {
            const auto c = parse_civil(ts, 12);
            const int year = num(ts, 7, 4);
            if (!c || year < 1970) return std::nullopt;
            auto t = local_to_unix(year, c->mon, c->day, c->hh, c->mm, c->ss);
            if (!t) return std::nullopt;
            return core::from_unix_seconds(*t);
        }
        case TimeFormat::rfc3164: {
            const auto c = parse_civil(ts, 7);
            if (!c) return std::nullopt;
            const std::time_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
            thread_local std::time_t cached_now = -1;
            thread_local int cached_year = 0;
            if (now_s != cached_now) {
                std::tm now_tm{};
                localtime_r(&now_s, &now_tm);
                cached_now = now_s;
                cached_year = now_tm.tm_year + 1900;
            }
            // The latest year that does not put the line more than a day ahead of now.
            for (int year = cached_year; year >= cached_year - 1; --year) {
                auto t = local_to_unix(year, c->mon, c->day, c->hh, c->mm, c->ss);
                if (!t) return std::nullopt;
                if (*t <= now_s + 86400) return core::from_unix_seconds(*t);
            }
            return std::nullopt;
        }
        case TimeFormat::rfc3339: {
            const int y = num(ts, 0, 4), mo = num(ts, 5, 2), d = num(ts, 8, 2), hh = num(ts, 11, 2),
                      mi = num(ts, 14, 2), se = num(ts, 17, 2);
            if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh < 0 || hh > 23 || mi < 0 || mi > 59 ||
                se < 0 || se > 60 || ts.size() < 19 || ts[16] != ':')
                return std::nullopt;
            std::size_t i = 19;
            std::int64_t micros = 0;
            if (i < ts.size() && ts[i] == '.') {
                ++i;
                int digits = 0;
                while (i < ts.size() && is_digit(ts[i])) {
                    if (digits < 6) { micros = micros * 10 + (ts[i] - '0'); ++digits; }
                    ++i;
                }
                for (; digits < 6; ++digits) micros *= 10;
            }
            std::int64_t offset = 0;
            if (i < ts.size() && (ts[i] == '+' || ts[i] == '-')) {
                const int oh = num(ts, i + 1, 2), om = num(ts, i + 4, 2);
                if (oh < 0 || om < 0 || i + 6 > ts.size() || ts[i + 3] != ':') return std::nullopt;
                offset = (oh * 3600 + om * 60) * (ts[i] == '+' ? 1 : -1);
            } else if (i < ts.size() && ts[i] != 'Z') {
                return std::nullopt;
            }
            const std::int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                                      hh * 3600 + mi * 60 + se - offset;
            return core::from_unix_micros(secs * 1'000'000 + micros);
        }
        case TimeFormat::tai64n: {
            std::uint64_t secs = 0, nanos = 0;
            for (std::size_t i = 1; i < 25; ++i) {
                const char c = ts[i];
                const int v = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
                if (v < 0) return std::nullopt;
                if (i <= 16) secs = secs << 4 | static_cast<unsigned>(v);
                else nanos = nanos << 4 | static_cast<unsigned>(v);
            }
            // TAI64 label = 2^62 + TAI seconds; TAI - UTC = 37 s since 2017 (daemontools
            // ignores leap seconds and uses 10; the future clamp absorbs the difference).
            // A label before 1970 or after 9999 is no time (and would overflow in microseconds).
            constexpr std::uint64_t base = std::uint64_t{1} << 62, max_unix = 253402300799;
            if (secs < base + 10 || secs - base - 10 > max_unix) return std::nullopt;
            const std::int64_t unix_s = static_cast<std::int64_t>(secs - base) - 10;
            return core::from_unix_micros(unix_s * 1'000'000 + static_cast<std::int64_t>(nanos / 1000));
        }
    }
    return std::nullopt;
}

}  // namespace

core::Time resolve_time(const SyslogLine& line, core::Time now) {
    auto t = parse_time(line, now);
    if (!t || *t > now) return now;
    return *t;
}

}  // namespace rp::matching
