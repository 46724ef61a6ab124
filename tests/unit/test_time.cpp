#include <gtest/gtest.h>

#include "core/time.hpp"

using namespace std::chrono;
using rp::core::parse_duration;

TEST(Duration, Parse) {
    const std::pair<const char*, long long> ok[] = {
        {"90s", 90'000}, {"30m", 1'800'000}, {"2h", 7'200'000}, {"1d", 86'400'000},
        {"1h30m", 5'400'000}, {"250ms", 250}, {"45", 45'000}, {"0s", 0},
    };
    for (const auto& [text, ms] : ok) {
        auto d = parse_duration(text);
        ASSERT_TRUE(d) << text;
        EXPECT_EQ(duration_cast<milliseconds>(*d).count(), ms) << text;
    }
    for (const char* bad : {"", "30x", "m", "-5m", "5 m", "1.5h", "30m5", "99999999999999999999d"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Duration, Format) {
    EXPECT_EQ(rp::core::format_duration(minutes(30)), "30m");
    EXPECT_EQ(rp::core::format_duration(minutes(90)), "1h30m");
    EXPECT_EQ(rp::core::format_duration(milliseconds(250)), "250ms");
}

TEST(Time, FormatUtc) {
    EXPECT_EQ(rp::core::format_time(rp::core::from_unix_seconds(1795480463)), "2026-11-24T00:34:23Z");
}
