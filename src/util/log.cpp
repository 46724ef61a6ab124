#include "util/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace rp::util {
namespace {
Level g_min = Level::info;
bool journal() {
    static const bool j = std::getenv("JOURNAL_STREAM") != nullptr;
    return j;
}
const char* level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::notice: return "notice";
        case Level::warning: return "warning";
        case Level::error: return "error";
    }
    return "?";
}

void append_hex(std::string& out, unsigned char c) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out += "\\x";
    out += k_hex[c >> 4];
    out += k_hex[c & 0xf];
}

// Length of the well-formed UTF-8 sequence at s[i] (2..4), or 0 when it is not one (overlong
// forms, surrogates and values above U+10FFFF included, per RFC 3629).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
    const unsigned char c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
        if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
        if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// A valid sequence that terminals or log viewers may still treat as a line break or a control:
// C1 controls (U+0080..U+009F, NEL among them) and U+2028/U+2029; or that reorders or hides what
// follows it on the line: the bidirectional marks, embeddings, overrides and isolates (U+061C,
// U+200E/F, U+202A..U+202E, U+2066..U+2069) and the invisible format characters (U+200B..U+200D,
// U+2060..U+2064, U+FEFF).
bool risky_sequence(std::string_view seq) {
    const auto u = [&](std::size_t k) { return static_cast<unsigned char>(seq[k]); };
    if (seq.size() == 2) return (u(0) == 0xC2 && u(1) < 0xA0) || (u(0) == 0xD8 && u(1) == 0x9C);
    if (seq.size() != 3) return false;
    if (u(0) == 0xEF) return u(1) == 0xBB && u(2) == 0xBF;
    if (u(0) != 0xE2) return false;
    if (u(1) == 0x80) return (u(2) >= 0x8B && u(2) <= 0x8F) || (u(2) >= 0xA8 && u(2) <= 0xAE);
    return u(1) == 0x81 && ((u(2) >= 0xA0 && u(2) <= 0xA4) || (u(2) >= 0xA6 && u(2) <= 0xA9));
}

// value: also escape the backslash, and '"' (the caller quotes).
void escape_into(std::string& out, std::string_view s, bool value, bool quoted) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence(s, i);
            if (n == 0 || risky_sequence(s.substr(i, n))) {
                const std::size_t bad = n == 0 ? 1 : n;
                for (std::size_t k = 0; k < bad; ++k) append_hex(out, static_cast<unsigned char>(s[i + k]));
                i += bad;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
            case '\\':
                if (value) out += "\\\\";
                else out += '\\';
                break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '"':
                if (quoted) out += "\\\"";
                else out += '"';
                break;
            default:
                if (c < 0x20 || c == 0x7f) append_hex(out, c);
                else out += static_cast<char>(c);
        }
        ++i;
    }
}

}  // namespace

std::string escape_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    escape_into(out, s, false, false);
    return out;
}

void append_column(std::string& out, std::string_view s) {
    // Most names are printable ASCII without a backslash: appended as they are, in one piece.
    const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b >= 0x20 && b < 0x7f && c != '\\';
    });
    if (plain) out += s;
    else escape_into(out, s, true, false);
}

std::string escape_value(std::string_view s) {
    const bool quote = s.empty() || s.find_first_of(" \"=") != std::string_view::npos;
    std::string out;
    out.reserve(s.size() + 2);
    if (quote) out += '"';
    escape_into(out, s, true, quote);
    if (quote) out += '"';
    return out;
}

void set_log_level(Level minimum) { g_min = minimum; }
bool log_enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(g_min); }

void log_line(Level level, std::string_view message) {
    std::string line;
    line.reserve(std::min(message.size(), k_max_message) + 48);
    if (journal()) {
        line += '<';
        line += std::to_string(static_cast<int>(level));
        line += '>';
    } else {
        line += "relaypermit: ";
        line += level_name(level);
        line += ": ";
    }
    std::size_t keep = std::min(message.size(), k_max_message);
    if (keep < message.size())
        while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;  // whole characters
    escape_into(line, message.substr(0, keep), false, false);
    if (keep < message.size()) line += "...[" + std::to_string(message.size() - keep) + " bytes cut]";
    line += '\n';
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

bool RateLimitedLog::admit() {
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ >= window_) {
        if (suppressed_ > 0)
            rp::util::log(Level::warning, "{} similar messages suppressed in the last {}s", suppressed_, window_.count());
        start_ = now;
        count_ = 0;
        suppressed_ = 0;
    }
    if (count_ < burst_) {
        ++count_;
        return true;
    }
    ++suppressed_;
    return false;
}

}  // namespace rp::util
