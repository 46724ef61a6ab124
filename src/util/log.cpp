#include "util/log.hpp"

#include <unistd.h>

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
}  // namespace

void set_log_level(Level minimum) { g_min = minimum; }
bool log_enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(g_min); }

void log_line(Level level, std::string_view message) {
    std::string line;
    line.reserve(message.size() + 32);
    if (journal()) {
        line += '<';
        line += std::to_string(static_cast<int>(level));
        line += '>';
    } else {
        line += "relaypermit: ";
        line += level_name(level);
        line += ": ";
    }
    line += message;
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
