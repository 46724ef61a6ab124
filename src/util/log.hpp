// Diagnostics for the daemon and the CLI: one line per event on stderr.
//
// Under systemd (JOURNAL_STREAM set) each line carries a "<N>" syslog priority prefix that
// journald turns into PRIORITY; elsewhere it is "relaypermit: level: message". Messages about
// untrusted input go through RateLimitedLog so a flood of bad lines cannot flood the log.
// Thread-safety: each call writes one line with a single write(2).
//
// Security: log lines are audit records (grant, revoke, expire), and much of what they show comes
// from outside: user names and addresses from log lines, peers' requests, control clients. Two
// layers keep one event one line, so no text can forge a second record or a journald priority:
//   1. log_line() (so every message, whatever formatted it) passes the whole message through
//      escape_text(): newline, CR, tab, NUL, ESC and every other control byte, C1 controls
//      (U+0080..U+009F), U+2028/U+2029, the bidirectional controls and invisible format
//      characters (a user name cannot reorder or hide the rest of its line on a terminal) and
//      invalid UTF-8 become \n, \r, \t or \xHH; and it cuts
//      a message at k_max_message bytes, below journald's LineMax (48 KiB by default), which
//      would otherwise split the line and read a "<N>" at the start of the rest as a priority.
//      A line starts with our own "<N>" or "relaypermit: level: " and holds no line break, so a
//      "<3>" inside a user name is text.
//   2. A field value (user=..., peer-supplied text, names) is formatted through esc(): escaped
//      as above plus backslash (\\) and, when the value is empty or holds a space, '"' or '=',
//      quoted ("...", with \" inside), so `user=bob ip=192.0.2.9` cannot pose as a second field
//      and an escape in the output is always ours. escape_text leaves backslashes alone, so esc()'s
//      output passes layer 1 unchanged (nothing is escaped twice).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rp::util {

enum class Level { debug = 7, info = 6, notice = 5, warning = 4, error = 3 };

// Longest message log_line() writes; the rest is replaced by "...[N bytes cut]".
inline constexpr std::size_t k_max_message = 8192;

void set_log_level(Level minimum);
bool log_enabled(Level level);
// Writes one line: the level prefix, escape_text(message) cut at k_max_message, a newline.
void log_line(Level level, std::string_view message);

// Free text (an error message that may quote a request): line breaks, control bytes, C1 controls,
// U+2028/9, the bidirectional controls and invisible format characters (U+061C, U+200B..U+200F,
// U+202A..U+202E, U+2060..U+2064, U+2066..U+2069, U+FEFF) and invalid UTF-8 escaped; printable
// text, spaces and backslashes unchanged.
std::string escape_text(std::string_view s);
// Appends one column of tab-separated output (`relaypermit scan`): escape_text() plus backslash
// escaped, never quoted. Holds no tab or line break, and distinct inputs give distinct outputs.
void append_column(std::string& out, std::string_view s);
// A field value: escape_text() plus backslash escaped; quoted when empty or holding a space, '"'
// or '='. Distinct inputs give distinct outputs.
std::string escape_value(std::string_view s);

// Marks an untrusted field value for log() and fmt: formats as escape_value(text).
struct Esc {
    std::string_view text;
};
inline Esc esc(std::string_view s) { return Esc{s}; }

template <typename... Args>
void log(Level level, fmt::format_string<Args...> f, Args&&... args) {
    if (!log_enabled(level)) return;
    log_line(level, fmt::format(f, std::forward<Args>(args)...));
}

// Lets through at most `burst` messages per `window`, then one summary of how many were held back.
class RateLimitedLog {
public:
    RateLimitedLog(int burst = 10, std::chrono::seconds window = std::chrono::seconds(60))
        : burst_(burst), window_(window) {}
    template <typename... Args>
    void log(Level level, fmt::format_string<Args...> f, Args&&... args) {
        if (admit()) rp::util::log(level, f, std::forward<Args>(args)...);
    }

private:
    bool admit();
    int burst_;
    std::chrono::seconds window_;
    std::chrono::steady_clock::time_point start_{};
    int count_ = 0;
    std::uint64_t suppressed_ = 0;
};

}  // namespace rp::util

template <>
struct fmt::formatter<rp::util::Esc> : fmt::formatter<std::string_view> {
    template <typename Ctx>
    auto format(const rp::util::Esc& e, Ctx& ctx) const {
        return fmt::formatter<std::string_view>::format(rp::util::escape_value(e.text), ctx);
    }
};
