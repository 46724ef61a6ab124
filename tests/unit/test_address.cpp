#include <gtest/gtest.h>

#include "core/address.hpp"

using rp::core::Address;
using rp::core::Cidr;

struct AddrCase {
    const char* in;
    const char* canonical;  // nullptr = must be rejected
};

TEST(Address, ParseAndCanonicalise) {
    const AddrCase cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"::ffff:203.0.113.7", "203.0.113.7"},
        {"::FFFF:203.0.113.7", "203.0.113.7"},
        {"[2001:db8::1]", "2001:db8::1"},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},  // RFC 5952: first of equal runs
        {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // a single zero group is not compressed
        {"::1", "::1"},
        {"::", "::"},
        {"::102:304", "::102:304"},  // not printed with a dotted tail
        {"fe80::1", "fe80::1"},
        {"192.168.123", nullptr},
        {"xx.xx.xx.xx", nullptr},
        {"256.1.1.1", nullptr},
        {"01.2.3.4", nullptr},
        {"1.2.3.4.5", nullptr},
        {"", nullptr},
        {"fe80::1%eth0", nullptr},
        {"2001:db8::1::2", nullptr},
        {"mail.example.com", nullptr},
        {"1.2.3.4 ", nullptr},
        {"[1.2.3.4", nullptr},
        // dotted quads as glibc's inet_pton(AF_INET) reads them (Address::parse reads them by hand)
        {"0.1.2.3", "0.1.2.3"},
        {"1.2.3.0", "1.2.3.0"},
        {"1.2.3.04", nullptr},
        {"1.2.3.00", nullptr},
        {"1.2.3.2550", nullptr},
        {"1.2.3.256", nullptr},
        {"1.2.3.4.", nullptr},
        {".1.2.3", nullptr},
        {"1..2.3", nullptr},
        {"1.2.3.", nullptr},
        {"1.2.3.-1", nullptr},
        {"+1.2.3.4", nullptr},
        {"1.2.3.4\xb9", nullptr},
        {"99999999999999999999.1.1.1", nullptr},
    };
    for (const auto& c : cases) {
        auto a = Address::parse(c.in);
        if (!c.canonical) {
            EXPECT_FALSE(a) << c.in;
        } else {
            ASSERT_TRUE(a) << c.in;
            EXPECT_EQ(a->to_string(), c.canonical) << c.in;
        }
    }
}

TEST(Address, FullForm) {
    EXPECT_EQ(Address::parse("::1")->to_full_string(), "0:0:0:0:0:0:0:1");
    EXPECT_EQ(Address::parse("2001:db8::1")->to_full_string(), "2001:db8:0:0:0:0:0:1");
    EXPECT_EQ(Address::parse("192.0.2.1")->to_full_string(), "192.0.2.1");
}

struct CidrCase {
    const char* net;
    const char* addr;
    bool contains;
};

TEST(Cidr, Contains) {
    const CidrCase cases[] = {
        {"10.1.0.0/16", "10.1.255.3", true},   {"10.1.0.0/16", "10.2.0.1", false},
        {"0.0.0.0/0", "203.0.113.9", true},    {"0.0.0.0/0", "2001:db8::1", false},
        {"127.0.0.0/8", "127.0.0.2", true},    {"::1/128", "::1", true},
        {"::1/128", "::2", false},             {"2001:db8::/32", "2001:db8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false}, {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},     {"::ffff:10.0.0.0/104", "10.9.9.9", true},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},
    };
    for (const auto& c : cases) {
        auto n = Cidr::parse(c.net);
        ASSERT_TRUE(n) << c.net;
        auto a = Address::parse(c.addr);
        ASSERT_TRUE(a) << c.addr;
        EXPECT_EQ(n->contains(*a), c.contains) << c.net << " " << c.addr;
    }
}

TEST(Cidr, RejectsBadInput) {
    for (const char* bad : {"10.1.2.3/16", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "/8", "2001:db8::/129",
                            "10.0.0.0/8x", "host/8"})
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
    auto e = Cidr::parse("10.1.2.3/16");
    EXPECT_NE(e.error().message.find("10.1.0.0/16"), std::string::npos);
}

TEST(Cidr, Masking) {
    auto a = *Address::parse("2001:db8:1:2:3:4:5:6");
    EXPECT_EQ(Cidr(a, 64).to_string(), "2001:db8:1:2::/64");
    EXPECT_EQ(Cidr(a, 128).to_string(), "2001:db8:1:2:3:4:5:6");
    EXPECT_EQ(Cidr(*Address::parse("192.0.2.77"), 24).to_string(), "192.0.2.0/24");
}
