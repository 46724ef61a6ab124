#include "imports/import_parsers.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <ctime>

#include "util/log.hpp"

namespace rp::imports {
namespace {

constexpr std::size_t k_max_field = 256;  // longer keys/values are no address and no time
constexpr std::int64_t k_max_epoch = std::int64_t{1} << 40;  // ~36,000 years: far from overflow

constexpr std::array<std::string_view, 6> k_formats = {"pop-before-smtp", "drac", "relay-ctrl", "sql",
                                                       "sendmail-access", "static"};

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::string_view strip_nul(std::string_view s) {
    if (!s.empty() && s.back() == '\0') s.remove_suffix(1);
    return s;
}

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool istarts(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequal(s.substr(0, prefix.size()), prefix);
}

// Whole decimal seconds, no sign, at most k_max_epoch.
std::optional<std::int64_t> parse_epoch(std::string_view s) {
    std::int64_t v = 0;
    if (s.empty() || s.size() > 15) return std::nullopt;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0 || v > k_max_epoch) return std::nullopt;
    return v;
}

// Splits "KEY<white>VALUE" (makemap's rule); nullopt when there is no value.
std::optional<std::pair<std::string_view, std::string_view>> key_value(std::string_view line) {
    std::size_t k = 0;
    while (k < line.size() && !std::isspace(static_cast<unsigned char>(line[k]))) ++k;
    const std::string_view value = trim(line.substr(k));
    if (k == 0 || value.empty()) return std::nullopt;
    return std::make_pair(line.substr(0, k), value);
}

// Calls fn(line, lineno) for each line, without its '\n' (and '\r').
template <typename Fn>
void each_line(std::string_view text, Fn fn) {
    std::size_t lineno = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        fn(line, lineno);
    }
}

// A sendmail access key naming one address: "a.b.c.d", "connect:a.b.c.d", "IPv6:x", "connect:IPv6:x".
std::optional<core::Address> access_key_address(std::string_view key) {
    if (istarts(key, "connect:")) key.remove_prefix(8);
    if (istarts(key, "ipv6:")) {
        key.remove_prefix(5);
        auto a = core::Address::parse(key);
        if (a && !a->is_v4()) return a;
        return std::nullopt;
    }
    auto a = core::Address::parse(key);
    if (a && a->is_v4()) return a;
    return std::nullopt;
}

}  // namespace

void ImportBatch::bad(std::string what) {
    ++malformed;
    if (examples.size() < k_max_examples) examples.push_back(util::escape_value(what.substr(0, 120)));
}

std::span<const std::string_view> import_formats() { return k_formats; }

bool known_import_format(std::string_view format) {
    for (auto f : k_formats)
        if (f == format) return true;
    return false;
}

std::optional<core::Address> parse_import_address(std::string_view text) {
    text = strip_nul(text);
    if (text.size() > k_max_field) return std::nullopt;
    auto a = core::Address::parse(text);
    if (a) return a;
    const auto slash = text.rfind('/');
    if (slash == std::string_view::npos) return std::nullopt;
    a = core::Address::parse(text.substr(0, slash));
    if (!a) return std::nullopt;
    const auto len = text.substr(slash + 1);
    if ((a->is_v4() && len == "32") || (!a->is_v4() && len == "128")) return a;
    return std::nullopt;
}

ImportBatch parse_pop_before_smtp(std::span<const Record> records) {
    ImportBatch out;
    for (const auto& [k, v] : records) {
        auto a = parse_import_address(k);
        if (!a) {
            out.bad("key " + k);
            continue;
        }
        (void)v;  // "ok" in every version; pop-before-smtp itself never reads it back
        out.entries.push_back(ImportEntry{*a, "", EntryTime::none, {}});
    }
    return out;
}

ImportBatch parse_drac(std::span<const Record> records) {
    ImportBatch out;
    for (const auto& [k, v] : records) {
        auto a = parse_import_address(k);
        auto t = parse_epoch(trim(strip_nul(v)));
        if (!a || !t) {
            out.bad(!a ? "key " + k : "value " + v + " of " + k);
            continue;
        }
        out.entries.push_back(ImportEntry{*a, "", EntryTime::expires, core::from_unix_seconds(*t)});
    }
    return out;
}

std::optional<ImportEntry> parse_relay_ctrl_entry(std::string_view name, core::Time mtime) {
    if (name.size() > k_max_field) return std::nullopt;
    auto a = core::Address::parse(name);
    if (!a) return std::nullopt;
    return ImportEntry{*a, "", EntryTime::login, mtime};
}

ImportBatch parse_sendmail_access(std::string_view text) {
    ImportBatch out;
    each_line(text, [&](std::string_view line, std::size_t lineno) {
        if (trim(line).empty() || line.front() == '#') return;
        auto kv = key_value(line);
        if (!kv) {
            out.bad("line " + std::to_string(lineno) + ": " + std::string(line));
            return;
        }
        if (!iequal(kv->second, "RELAY")) {
            ++out.skipped;  // REJECT, OK, DISCARD, ERROR:...: the admin's own rules
            return;
        }
        auto a = access_key_address(kv->first);
        if (!a) {
            ++out.skipped;  // a domain, a network prefix ("connect:192.0.2"), a From: entry
            return;
        }
        out.entries.push_back(ImportEntry{*a, "", EntryTime::none, {}});
    });
    return out;
}

std::optional<core::Time> parse_sql_time(std::string_view text) {
    text = trim(text);
    if (text.empty() || text.size() > 40) return std::nullopt;
    const auto dot = text.find('.');
    if (auto whole = parse_epoch(text.substr(0, dot))) {  // epoch seconds, maybe with a fraction
        if (dot != std::string_view::npos) {
            const auto frac = text.substr(dot + 1);
            if (frac.empty() || frac.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
        }
        return core::from_unix_seconds(*whole);
    }
    // "YYYY-MM-DD HH:MM:SS" (or 'T'), optional fraction, optional zone "Z", "+00", "+00:00".
    std::tm tm{};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    char sep = 0;
    if (text.size() < 19 || std::sscanf(std::string(text.substr(0, 19)).c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo,
                                        &d, &sep, &h, &mi, &s) != 7)
        return std::nullopt;
    if ((sep != ' ' && sep != 'T') || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return std::nullopt;
    std::string_view rest = text.substr(19);
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
    }
    if (!(rest.empty() || rest == "Z" || rest == "+00" || rest == "+00:00" || rest == "+0000")) return std::nullopt;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return core::from_unix_seconds(static_cast<std::int64_t>(::timegm(&tm)));
}

ImportBatch parse_sql_rows(std::span<const std::vector<std::optional<std::string>>> rows) {
    ImportBatch out;
    for (const auto& row : rows) {
        if (row.size() < 2 || !row[0] || !row[1]) {
            out.bad(row.empty() || !row[0] ? "a row without an address" : "a row without a time: " + *row[0]);
            continue;
        }
        auto a = parse_import_address(*row[0]);
        auto t = parse_sql_time(*row[1]);
        if (!a || !t) {
            out.bad(!a ? "address " + *row[0] : "time " + *row[1] + " of " + *row[0]);
            continue;
        }
        std::string user = row.size() > 2 && row[2] ? *row[2] : "";
        if (user.size() > 256) user.clear();
        for (char c : user)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                user.clear();  // the control protocol refuses control characters in a user name
                break;
            }
        out.entries.push_back(ImportEntry{*a, std::move(user), EntryTime::login, *t});
    }
    return out;
}

StaticAllow parse_static_allowed(std::string_view text) {
    StaticAllow out;
    each_line(text, [&](std::string_view raw, std::size_t lineno) {
        std::string_view line = raw.substr(0, raw.find('#'));
        line = trim(line);
        if (line.empty()) return;
        if (line.size() <= k_max_field) {
            if (auto c = core::Cidr::parse(line)) {
                out.networks.push_back(*c);
                return;
            }
            // An IPv4 prefix on octet boundaries: "192.0.2." or "192.0.2" (tcp_wrappers style).
            std::string_view p = line;
            if (p.back() == '.') p.remove_suffix(1);
            const auto dots = static_cast<int>(std::count(p.begin(), p.end(), '.'));
            if (dots >= 0 && dots <= 2 && p.find_first_not_of("0123456789.") == std::string_view::npos) {
                std::string full(p);
                for (int i = dots; i < 3; ++i) full += ".0";
                if (auto a = core::Address::parse(full); a && a->is_v4()) {
                    out.networks.emplace_back(*a, 8 * (dots + 1));
                    return;
                }
            }
        }
        ++out.malformed;
        if (out.examples.size() < k_max_examples)
            out.examples.push_back("line " + std::to_string(lineno) + ": " + util::escape_value(raw.substr(0, 120)));
    });
    return out;
}

}  // namespace rp::imports
