// Time vocabulary: wall-clock instants in microseconds, durations, and an injectable Clock.
//
// Permits expire at absolute wall-clock times (they must mean the same after a restart and on
// another host), so everything is std::chrono::system_clock based. Tests inject ManualClock and
// never sleep. parse_duration reads the config syntax: "90s", "30m", "2h", "1d", "1h30m", or a
// bare number of seconds.
// Thread-safety: SystemClock is stateless; ManualClock is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace rp::core {

using Duration = std::chrono::microseconds;
using Time = std::chrono::time_point<std::chrono::system_clock, Duration>;

inline std::int64_t to_unix_micros(Time t) { return t.time_since_epoch().count(); }
inline Time from_unix_micros(std::int64_t us) { return Time(Duration(us)); }
inline Time from_unix_seconds(std::int64_t s) { return Time(std::chrono::seconds(s)); }

Result<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);  // "30m", "1h30m", "90s", "250ms"
// RFC 3339 in UTC with seconds ("2026-11-22T00:34:23Z").
std::string format_time(Time t);

class Clock {
public:
    virtual ~Clock() = default;
    virtual Time now() const = 0;
};

class SystemClock final : public Clock {
public:
    Time now() const override {
        return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(Time start) : now_(start) {}
    Time now() const override { return now_; }
    void advance(Duration d) { now_ += d; }
    void set(Time t) { now_ = t; }

private:
    Time now_;
};

}  // namespace rp::core
