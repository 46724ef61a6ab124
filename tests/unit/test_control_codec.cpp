// ControlCodec: a table of hostile control requests, each with the error it must get (issue 12
// item 5: `{"cmd":null}` threw out of the loop; ttl_ms >= 9.2e15 overflowed; a negative ttl was
// accepted), and the well-formed requests with the values they carry.
#include <gtest/gtest.h>

#include "daemon/control_codec.hpp"

using namespace rp;
using daemon::ControlCmd;

namespace {

struct Bad {
    const char* line;
    const char* error;  // a substring of the error text
};

const Bad k_bad[] = {
    {R"({"cmd":null})", "field 'cmd' must be a string"},
    {R"({"cmd":5})", "field 'cmd' must be a string"},
    {R"({"cmd":["check"]})", "field 'cmd' must be a string"},
    {R"({"ip":"192.0.2.1"})", "missing field 'cmd'"},
    {R"({"cmd":"reboot"})", "unknown command 'reboot'"},
    {R"({"cmd":"CHECK","ip":"192.0.2.1"})", "unknown command"},
    {R"({"cmd":"check"})", "'check' needs the field 'ip'"},
    {R"({"cmd":"check","ip":null})", "field 'ip' must be a string"},
    {R"({"cmd":"allow","ip":5})", "field 'ip' must be a string"},
    {R"({"cmd":"allow","ip":"example.org"})", "not an IP address: 'example.org'"},
    {R"({"cmd":"allow","ip":"192.0.2.1/24"})", "not an IP address"},
    {R"({"cmd":"allow","ip":"192.0.2.1","user":7})", "field 'user' must be a string"},
    {R"({"cmd":"allow","ip":"192.0.2.1","user":"a\nrevoke ip=192.0.2.2"})", "control characters"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":1e300})", "whole number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":1800000.5})", "whole number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":1.8e6})", "whole number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":-1})", "must be positive"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":0})", "must be positive"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":-9223372036854775808})", "must be positive"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":9200000000000000})", "too large"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":9223372036854775807})", "too large"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":18446744073709551615})", "too large"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":99999999999999999999999})", "whole number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":"1800000"})", "must be a number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":null})", "must be a number"},
    {R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":true})", "must be a number"},
    {R"({"cmd":"list","ip":"192.0.2.1"})", "'list' takes no field 'ip'"},
    {R"({"cmd":"check","ip":"192.0.2.1","ttl_ms":5})", "'check' takes no field 'ttl_ms'"},
    {R"({"cmd":"status","debug":true})", "'status' takes no field 'debug'"},
    {R"({"cmd":"revoke"})", "exactly one of"},
    {R"({"cmd":"revoke","ip":"192.0.2.1","user":"alice"})", "exactly one of"},
    {R"({"cmd":"revoke","user":""})", "must not be empty"},
    {R"({"cmd":"revoke","user":null})", "field 'user' must be a string"},
    {R"([{"cmd":"list"}])", "not a JSON object"},
    {R"("list")", "not a JSON object"},
    {R"(null)", "not a JSON object"},
    {R"({"cmd":"list")", "not JSON"},
    {"", "not JSON"},
    {"\xff\xfe", "not JSON"},
    {R"({"cmd":"list"} {"cmd":"list"})", "not JSON"},
};

}  // namespace

TEST(ControlCodec, HostileRequestsGetAnErrorNeverAnException) {
    for (const auto& b : k_bad) {
        SCOPED_TRACE(b.line);
        const auto r = daemon::parse_control_request(b.line);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find(b.error), std::string::npos) << r.error().message;
        const auto reply = daemon::control_error_reply(r.error().message);
        const auto j = nlohmann::json::parse(reply);
        EXPECT_EQ(j["ok"], false);
        EXPECT_EQ(reply.find('\n'), reply.size() - 1);
    }
}

TEST(ControlCodec, UserTooLong) {
    const std::string line = R"({"cmd":"allow","ip":"192.0.2.1","user":")" + std::string(257, 'a') + "\"}";
    const auto r = daemon::parse_control_request(line);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("longer than 256"), std::string::npos);
    EXPECT_TRUE(daemon::parse_control_request(R"({"cmd":"allow","ip":"192.0.2.1","user":")" + std::string(256, 'a') +
                                              "\"}"));
}

TEST(ControlCodec, WellFormedRequests) {
    auto r = daemon::parse_control_request(R"({"cmd":"allow","ip":"::ffff:192.0.2.1","user":"alice","ttl_ms":1800000})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->cmd, ControlCmd::allow);
    EXPECT_EQ(r->ip->to_string(), "192.0.2.1");
    EXPECT_EQ(*r->user, "alice");
    EXPECT_EQ(*r->ttl, std::chrono::minutes(30));

    r = daemon::parse_control_request(R"({"cmd":"allow","ip":"2001:db8::1"})");
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->user);
    EXPECT_FALSE(r->ttl);

    r = daemon::parse_control_request(R"({"cmd":"allow","ip":"192.0.2.1","ttl_ms":1099511627776})");
    ASSERT_TRUE(r) << r.error().message;  // the largest accepted: 2^40 ms
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*r->ttl).count(), daemon::k_control_max_ttl_ms);

    r = daemon::parse_control_request(R"({"cmd":"revoke","user":"bob"})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cmd, ControlCmd::revoke);
    EXPECT_FALSE(r->ip);

    for (const char* line : {R"({"cmd":"list"})", R"({"cmd":"status"})", R"({"cmd":"check","ip":"192.0.2.1"})",
                             R"(  {"cmd" : "list"}  )", "{\"cmd\":\"list\"}\r"}) {
        SCOPED_TRACE(line);
        EXPECT_TRUE(daemon::parse_control_request(line));
    }
}

TEST(ControlCodec, TableNamesEveryCommandOnce) {
    for (const auto& c : daemon::control_commands()) {
        SCOPED_TRACE(std::string(c.name));
        EXPECT_EQ(daemon::find_control_command(c.name), &c);
        EXPECT_FALSE(c.summary.empty());
    }
    EXPECT_EQ(daemon::find_control_command("nope"), nullptr);
}

TEST(ControlCodec, RepliesReplaceInvalidUtf8) {
    const auto line = daemon::encode_control_reply({{"ok", true}, {"user", std::string("a\xff" "b")}});
    EXPECT_EQ(line.back(), '\n');
    EXPECT_NO_THROW(EXPECT_TRUE(nlohmann::json::parse(line).is_object()));
}
