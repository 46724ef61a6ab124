// Regression tests for what the fuzz targets found (docs/fuzzing.md lists each finding with its
// corpus input under fuzz/corpus/<target>/). Each test failed before its fix.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/address.hpp"
#include "core/time.hpp"
#include "imports/import_parsers.hpp"
#include "util/endpoint.hpp"
#include "util/log.hpp"

using namespace std::string_view_literals;

// address_fuzz: inet_pton read the text as a C string, so bytes after a NUL were ignored and
// "192.0.2.1\0junk" (a control request's "ip", a Postfix attribute) was the address 192.0.2.1.
TEST(FuzzFindings, AddressWithNulIsRefused) {
    for (auto text : {"192.0.2.1\0junk"sv, "192.0.2.1\0"sv, "2001:db8::1\0:2"sv, "[::1\0]"sv}) {
        EXPECT_FALSE(rp::core::Address::parse(text)) << rp::util::escape_value(text);
        EXPECT_FALSE(rp::core::Cidr::parse(text)) << rp::util::escape_value(text);
    }
    EXPECT_FALSE(rp::core::Cidr::parse("192.0.2.0\0/24"sv));
    EXPECT_TRUE(rp::core::Address::parse("192.0.2.1"sv));
}

// endpoint_fuzz: the socket layer cut host and path at a NUL ("unix:/run/a\0b" bound /run/a).
TEST(FuzzFindings, EndpointWithNulIsRefused) {
    for (auto text : {"unix:/run/a\0b"sv, "127.0.0.1\0x:25"sv, "tcp:[::1\0]:25"sv, "udp:127.0.0.1:5\0"sv})
        EXPECT_FALSE(rp::util::parse_endpoint(text)) << rp::util::escape_value(text);
    auto ok = rp::util::parse_endpoint("unix:/run/relaypermit/policy.sock");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->path, "/run/relaypermit/policy.sock");
}

// duration_fuzz: every part was bounded, the sum was not: enough parts overflowed it (UB).
TEST(FuzzFindings, DurationSumIsBounded) {
    std::string many;
    for (int i = 0; i < 9000; ++i) many += "1099511627775ms";
    EXPECT_FALSE(rp::core::parse_duration(many));
    EXPECT_FALSE(rp::core::parse_duration("1099511627775ms2ms"));  // one past 2^40 ms
    auto max = rp::core::parse_duration("1099511627775ms1ms"sv.substr(0, 15));
    ASSERT_TRUE(max);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*max).count(), 1099511627775);
}

// config_fuzz: a duration given as an integer (seconds) was not bounded like the string form:
// `ttl = 22222222222222222` overflowed the conversion to microseconds (undefined behaviour).
TEST(FuzzFindings, IntegerDurationIsBounded) {
    EXPECT_FALSE(rp::config::parse_config("ttl = 22222222222222222\n", "t.toml"));
    EXPECT_TRUE(rp::config::parse_config("ttl = 1800\n", "t.toml"));
}

// import_sql_fuzz: sscanf's %2d took signs and spaces and timegm carried out-of-range fields, so
// "1970-01-01 -1:00:00" was a time before 1970 and "2026-02-31" was March 3rd.
TEST(FuzzFindings, SqlTimeFieldsAreStrict) {
    using rp::imports::parse_sql_time;
    for (auto bad : {"1970-01-01 -1:00:00"sv, "1970-01-01 00:00:-1"sv, "2026-02-31 10:00:00"sv, "2026-+1-05 10:00:00"sv,
                     "2026-12- 5 10:00:00"sv, "2026-04-31T00:00:00Z"sv, "2025-02-29 00:00:00"sv})
        EXPECT_FALSE(parse_sql_time(bad)) << bad;
    EXPECT_EQ(parse_sql_time("2024-02-29 00:00:00"), rp::core::from_unix_seconds(1709164800));
    EXPECT_EQ(parse_sql_time("2026-12-31 23:59:60"), rp::core::from_unix_seconds(1798761600));  // leap second
    EXPECT_EQ(parse_sql_time("2026-12-05 10:00:00"), rp::core::from_unix_seconds(1796464800));
}
