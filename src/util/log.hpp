// Diagnostics for the daemon and the CLI: one line per message on stderr.
//
// Under systemd (JOURNAL_STREAM set) each line carries a "<N>" syslog priority prefix that
// journald turns into PRIORITY; elsewhere it is "relaypermit: level: message". Messages about
// untrusted input go through RateLimitedLog so a flood of bad lines cannot flood the log.
// Thread-safety: each call writes one line with a single write(2).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace rp::util {

enum class Level { debug = 7, info = 6, notice = 5, warning = 4, error = 3 };

void set_log_level(Level minimum);
bool log_enabled(Level level);
void log_line(Level level, std::string_view message);

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
