#include <gtest/gtest.h>

#include "config/config.hpp"

using rp::config::parse_config;

TEST(Config, DefaultsForEmptyFile) {
    auto c = parse_config("  \n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->ttl, std::chrono::minutes(30));
    EXPECT_EQ(c->ipv6_prefix, 128);
    ASSERT_EQ(c->sources.size(), 1u);
    EXPECT_EQ(c->sources[0].path, "/var/log/mail.log");
    EXPECT_EQ(c->policy.listen, std::vector<std::string>{"127.0.0.1:10031"});
    EXPECT_EQ(c->ignore.size(), 2u);
    EXPECT_TRUE(c->allow.empty());
}

TEST(Config, FullExample) {
    auto c = parse_config(R"(
state_dir = "/var/lib/relaypermit"
ttl = "15m"
control_socket = "/run/relaypermit/control.sock"
allow = ["10.1.0.0/16"]
ignore = []
ipv6_prefix = 64
[[source]]
type = "file"
path = "/var/log/mail.log"
[[pattern]]
name = "mypop"
regex = 'x (?<ip>\S+)'
[policy]
listen = ["127.0.0.1:10031", "unix:/var/spool/postfix/private/relaypermit"]
idle_timeout = "60s"
)", "ex.toml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->ttl, std::chrono::minutes(15));
    EXPECT_EQ(c->ipv6_prefix, 64);
    EXPECT_TRUE(c->ignore.empty());
    EXPECT_EQ(c->allow.size(), 1u);
    EXPECT_EQ(c->sources.size(), 1u);
    EXPECT_EQ(c->sources[0].name, "file:/var/log/mail.log");
    EXPECT_EQ(c->patterns.size(), 1u);
    EXPECT_EQ(c->policy.listen.size(), 2u);
}

TEST(Config, NonEmptyFileWithoutSourcesHasNone) {
    auto c = parse_config("ttl = \"5m\"\n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->sources.empty());
}

TEST(Config, ErrorsNameFileLineKeyAndValue) {
    struct Bad {
        const char* text;
        const char* expect;
    };
    const Bad cases[] = {
        {"\nttl = \"30x\"\n", "x.toml:2: ttl = \"30x\": bad duration"},
        {"allow = [\"10.1.2.3/16\"]", "x.toml:1: allow"},
        {"ipv6_prefix = 200", "ipv6_prefix = 200: must be between"},
        {"nonsense = 1", "x.toml:1: nonsense = 1: unknown key"},
        {"[[source]]\ntype = \"carrier-pigeon\"\n", "unknown source type"},
        {"[[source]]\ntype = \"file\"\npath = \"relative.log\"\n", "absolute path"},
        {"[policy]\nlisten = \"udp:127.0.0.1:1\"", "stream endpoint"},
        {"ttl = ", "x.toml:1:"},
        {"[[pattern]]\nname = \"p\"\nregex = \"no group\"\n", "(?<ip>...)"},
        {"state_dir = 5", "expected a string"},
        {"log_level = \"loud\"", "log_level"},
    };
    for (const auto& b : cases) {
        auto c = parse_config(b.text, "x.toml");
        ASSERT_FALSE(c) << b.text;
        EXPECT_NE(c.error().message.find(b.expect), std::string::npos) << c.error().message;
    }
}

TEST(Config, TwoLineUserPatternsNeedPid) {
    auto ok = parse_config("[[pattern]]\nname = \"m\"\nregex = 'x(?<pid>\\d+) (?<ip>\\S+)'\nrole = \"session\"\n"
                           "[[pattern]]\nname = \"m\"\nregex = 'x(?<pid>\\d+) ok'\nrole = \"session-login\"\n",
                           "x.toml");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->patterns.size(), 2u);
    EXPECT_EQ(ok->patterns[1].role, "session-login");
    auto bad = parse_config("[[pattern]]\nname = \"m\"\nregex = '(?<ip>\\S+)'\nrole = \"session\"\n", "x.toml");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("(?<pid>...)"), std::string::npos);
    EXPECT_FALSE(parse_config("[[pattern]]\nname = \"m\"\nregex = '(?<ip>\\S+)'\nrole = \"maybe\"\n", "x.toml"));
}

TEST(Config, MaxTtlBoundsTtl) {
    auto c = parse_config("ttl = \"1h\"\n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->max_ttl, std::chrono::hours(24));  // the documented default
    c = parse_config("ttl = \"2d\"\nmax_ttl = \"3d\"\n", "x.toml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->max_ttl, std::chrono::hours(72));
    c = parse_config("ttl = \"25h\"\n", "x.toml");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("is longer than max_ttl"), std::string::npos) << c.error().message;
    c = parse_config("max_ttl = \"0s\"\n", "x.toml");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("max_ttl = \"0s\": must be positive"), std::string::npos) << c.error().message;
}

TEST(Config, MaxLifetimeLiesBetweenTtlAndMaxTtl) {
    auto c = parse_config("ttl = \"30m\"\n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->max_lifetime, rp::core::Duration::zero());  // unset: ttl after the login
    c = parse_config("ttl = \"30m\"\nmax_lifetime = \"12h\"\n", "x.toml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->max_lifetime, std::chrono::hours(12));
    c = parse_config("ttl = \"30m\"\nmax_lifetime = \"10m\"\n", "x.toml");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("must lie between ttl"), std::string::npos) << c.error().message;
    c = parse_config("max_lifetime = \"2d\"\n", "x.toml");
    ASSERT_FALSE(c);
    c = parse_config("max_lifetime = \"0s\"\n", "x.toml");  // written out, the default: unset
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->max_lifetime, rp::core::Duration::zero());
}
