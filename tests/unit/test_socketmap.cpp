// The socketmap protocol: the netstring parser, the Postfix and Sendmail answers (table-driven),
// and SocketmapFrontend over real loopback TCP and unix sockets with a fake oracle.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "frontends/netstring_codec.hpp"
#include "frontends/socketmap_frontend.hpp"
#include "stream_test_client.hpp"

namespace rp::frontends {
namespace {

using namespace std::chrono_literals;
using streamtest::FakeOracle;
using streamtest::StreamClient;
using Kind = NetstringParser::Step::Kind;

std::string ns(std::string_view payload) {
    std::string out;
    append_netstring(payload, out);
    return out;
}

// Feeds `data` in `chunk`-byte pieces; returns the payloads and "!error" markers in order.
std::vector<std::string> parse_all(std::string_view data, std::size_t chunk, std::size_t max = 10000) {
    NetstringParser p(max);
    std::vector<std::string> out;
    while (!data.empty()) {
        std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        while (!in.empty()) {
            const auto s = p.feed(in);
            EXPECT_LE(s.consumed, in.size());
            in.remove_prefix(s.consumed);
            if (s.kind == Kind::payload) out.emplace_back(p.payload());
            else if (s.kind == Kind::error) {
                out.push_back("!" + std::string(describe(p.error())));
                return out;
            } else break;
        }
    }
    return out;
}

TEST(Netstring, EncodesAndParsesAnySplit) {
    EXPECT_EQ(ns("OK OK"), "5:OK OK,");
    EXPECT_EQ(ns(""), "0:,");
    EXPECT_EQ(ns("NOTFOUND "), "9:NOTFOUND ,");
    const std::string stream = ns("relaypermit 192.0.2.1") + ns("") + ns("access connect:192.0.2.1") + ns(std::string(1234, 'x'));
    const std::vector<std::string> want = {"relaypermit 192.0.2.1", "", "access connect:192.0.2.1", std::string(1234, 'x')};
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 100u, 100000u}) EXPECT_EQ(parse_all(stream, chunk), want) << chunk;
}

TEST(Netstring, MalformedIsStickyError) {
    struct Case {
        std::string input;
        NetstringError error;
    };
    const std::vector<Case> cases = {
        {"abc", NetstringError::bad_length},
        {":a,", NetstringError::bad_length},
        {"01:a,", NetstringError::bad_length},
        {"-1:a,", NetstringError::bad_length},
        {" 1:a,", NetstringError::bad_length},
        {"3:abcd", NetstringError::missing_comma},
        {"3:abc\n", NetstringError::missing_comma},
        {"10001:", NetstringError::too_long},
        {"99999999999999999999:", NetstringError::too_long},
        {"1:a,x", NetstringError::bad_length},
    };
    for (const auto& c : cases) {
        NetstringParser p;
        std::string_view in = c.input;
        NetstringParser::Step s;
        do {
            s = p.feed(in);
            in.remove_prefix(s.consumed);
        } while (s.kind == Kind::payload && !in.empty());
        EXPECT_EQ(s.kind, Kind::error) << c.input;
        EXPECT_EQ(p.error(), c.error) << c.input;
        EXPECT_EQ(p.feed("1:a,").kind, Kind::error) << "sticky: " << c.input;
        p.reset();
        EXPECT_EQ(p.feed("1:a,").kind, Kind::payload);
    }
    EXPECT_EQ(parse_all("10000:", 3).size(), 0u);  // exactly the limit is fine (needs more)
    EXPECT_EQ(parse_all("5:abc", 1, 4), std::vector<std::string>{"!netstring longer than the limit"});
}

TEST(SocketmapAnswer, PostfixAndSendmailKeys) {
    FakeOracle oracle;
    oracle.permitted.insert(*core::Address::parse("192.0.2.1"));
    oracle.permitted.insert(*core::Address::parse("2001:db8::1"));
    oracle.permitted.insert(*core::Address::parse("::1"));
    oracle.permitted.insert(*core::Address::parse("127.0.0.1"));
    struct Case {
        std::string request;
        std::string answer;
    };
    const std::vector<Case> cases = {
        // Postfix access maps (any name but "access").
        {"relaypermit 192.0.2.1", "OK OK"},
        {"x 192.0.2.1", "OK OK"},
        {"relaypermit [192.0.2.1]", "OK OK"},
        {"relaypermit ::ffff:192.0.2.1", "OK OK"},
        {"relaypermit 2001:db8::1", "OK OK"},
        {"relaypermit 2001:DB8:0:0:0:0:0:1", "OK OK"},
        {"relaypermit [2001:db8::1]", "OK OK"},
        {"relaypermit 192.0.2.2", "NOTFOUND "},
        {"relaypermit 2001:db8::2", "NOTFOUND "},
        {"relaypermit mail.example.com", "NOTFOUND "},
        {"relaypermit unknown", "NOTFOUND "},
        {"relaypermit 192.0.2", "NOTFOUND "},
        {"relaypermit 192.000.2.1", "NOTFOUND "},
        {"relaypermit ipv6:2001:db8::1", "NOTFOUND "},
        {"relaypermit 192.0.2.1 ", "NOTFOUND "},
        {"relaypermit  192.0.2.1", "NOTFOUND "},
        {"relaypermit connect:192.0.2.1", "NOTFOUND "},
        {"relaypermit ", "NOTFOUND "},
        {"relaypermit", "NOTFOUND "},
        {"", "NOTFOUND "},
        {"relaypermit " + std::string(200, '1'), "NOTFOUND "},
        // Sendmail's access map: only connect: + a permitted address relays.
        {"access connect:192.0.2.1", "OK RELAY"},
        {"access connect:[192.0.2.1]", "OK RELAY"},
        {"access Connect:192.0.2.1", "OK RELAY"},
        {"ACCESS connect:192.0.2.1", "OK RELAY"},
        {"access connect:127.0.0.1", "OK RELAY"},
        {"access connect:ipv6:0:0:0:0:0:0:0:1", "OK RELAY"},
        {"access connect:ipv6:2001:db8:0:0:0:0:0:1", "OK RELAY"},
        {"access connect:IPv6:2001:DB8:0:0:0:0:0:1", "OK RELAY"},
        {"access connect:ipv6:2001:db8::1", "OK RELAY"},
        {"access connect:[ipv6:2001:db8:0:0:0:0:0:1]", "OK RELAY"},
        {"access connect:192.0.2.2", "NOTFOUND "},
        {"access connect:ipv6:2001:db8:0:0:0:0:0:2", "NOTFOUND "},
        {"access 192.0.2.1", "NOTFOUND "},
        {"access ipv6:0:0:0:0:0:0:0:1", "NOTFOUND "},
        {"access connect:127.0.0", "NOTFOUND "},
        {"access connect:127.0", "NOTFOUND "},
        {"access connect:127", "NOTFOUND "},
        {"access 127.0.0", "NOTFOUND "},
        {"access connect:ipv6:0:0:0:0:0:0:0", "NOTFOUND "},
        {"access connect:ipv6:2001:db8:0:0:0:0", "NOTFOUND "},
        {"access connect:ipv6:2001", "NOTFOUND "},
        {"access connect:ipv6:192.0.2.1", "NOTFOUND "},
        {"access connect:2001:db8::1", "NOTFOUND "},
        {"access connect:::1", "NOTFOUND "},
        {"access srv_features:192.0.2.1", "NOTFOUND "},
        {"access srv_features:", "NOTFOUND "},
        {"access tls_clt:192.0.2.1", "NOTFOUND "},
        {"access from:alice@example.org", "NOTFOUND "},
        {"access from:192.0.2.1", "NOTFOUND "},
        {"access to:bob@example.net", "NOTFOUND "},
        {"access to:example.net", "NOTFOUND "},
        {"access connect:localhost", "NOTFOUND "},
        {"access connect:mail.example.com", "NOTFOUND "},
        {"access connect:example.com", "NOTFOUND "},
        {"access connect:[mail.example.com]", "NOTFOUND "},
        {"access connect:", "NOTFOUND "},
        {"access connect:[]", "NOTFOUND "},
        {"access connect:[192.0.2.1", "NOTFOUND "},
        {"access example.com", "NOTFOUND "},
        {"access connect:192.0.2.1 ", "NOTFOUND "},
    };
    for (const auto& c : cases) {
        bool permitted = true;
        const auto answer = socketmap_answer(c.request, oracle, permitted);
        EXPECT_EQ(answer, c.answer) << c.request;
        EXPECT_EQ(permitted, c.answer.starts_with("OK ")) << c.request;
        EXPECT_NE(answer, "OK");  // never a bare OK
    }
}

// The admin's own access entries ([socketmap] static) are answered beside the permits, and an
// entry for the very key a permit would answer wins (as in the sendmail-access export).
TEST(SocketmapAnswer, SendmailStaticEntriesBesideThePermits) {
    FakeOracle oracle;
    oracle.permitted.insert(*core::Address::parse("192.0.2.1"));
    oracle.permitted.insert(*core::Address::parse("192.0.2.9"));
    const std::vector<std::pair<std::string, std::string>> records = {
        {"to:example.net", "REJECT"},
        {"from:spammer@example.com", "550 5.7.1 go away"},
        {"connect:10.1.2", "RELAY"},
        {"connect:192.0.2.9", "REJECT"},
        {std::string(max_static_key + 1, 'x'), "OK"},
    };
    const StaticAnswers statics = make_static_answers(records);
    EXPECT_EQ(statics.size(), 4u);  // the over-long key is left out
    struct Case {
        std::string request;
        std::string answer;
        bool permitted;
    };
    const std::vector<Case> cases = {
        {"access to:example.net", "OK REJECT", false},
        {"access To:Example.NET", "OK REJECT", false},
        {"access from:spammer@example.com", "OK 550 5.7.1 go away", false},
        {"access connect:10.1.2", "OK RELAY", false},    // the admin's network entry (Sendmail shortens)
        {"access connect:10.1.2.3", "NOTFOUND ", false},  // no permit, no exact entry
        {"access connect:192.0.2.1", "OK RELAY", true},   // a permit
        {"access connect:192.0.2.9", "OK REJECT", false}, // the admin's entry wins over a permit
        {"access to:example.org", "NOTFOUND ", false},
        {"access " + std::string(max_static_key + 1, 'x'), "NOTFOUND ", false},
        {"relaypermit to:example.net", "NOTFOUND ", false},  // Postfix maps never see the statics
    };
    for (const auto& c : cases) {
        bool permitted = !c.permitted;
        EXPECT_EQ(socketmap_answer(c.request, oracle, permitted, &statics), c.answer) << c.request;
        EXPECT_EQ(permitted, c.permitted) << c.request;
    }
    // Without statics nothing changes.
    bool permitted = false;
    EXPECT_EQ(socketmap_answer("access to:example.net", oracle, permitted, nullptr), "NOTFOUND ");
}

class SocketmapFrontendTest : public streamtest::StreamFrontendTest {};

TEST_F(SocketmapFrontendTest, ManyRequestsPerConnectionPipelinedAndSplit) {
    SocketmapFrontend f(loop_, oracle_);
    ASSERT_TRUE(f.listen({"127.0.0.1:0"}).has_value());
    ASSERT_EQ(f.local_endpoints().size(), 1u);
    StreamClient c(f.local_endpoints().front());
    c.send(ns("relaypermit 192.0.2.1"));
    ASSERT_TRUE(receive(c, "5:OK OK,"));
    c.received.clear();
    c.send(ns("relaypermit mail.example.com") + ns("access connect:192.0.2.1") + ns("access connect:192.0.2"));
    ASSERT_TRUE(receive(c, "9:NOTFOUND ,8:OK RELAY,9:NOTFOUND ,"));
    c.received.clear();
    const std::string r = ns("access connect:ipv6:0:0:0:0:0:0:0:1");
    c.send(r.substr(0, 2));
    ASSERT_FALSE(pump_until([&] { c.poll(); return !c.received.empty(); }, 30ms));
    c.send(r.substr(2));
    ASSERT_TRUE(receive(c, "8:OK RELAY,"));

    // The answer follows the oracle at once (a grant, then an expiry) on the same connection.
    c.received.clear();
    c.send(ns("relaypermit 198.51.100.7"));
    ASSERT_TRUE(receive(c, "9:NOTFOUND ,"));
    oracle_.permitted.insert(*core::Address::parse("198.51.100.7"));
    c.received.clear();
    c.send(ns("relaypermit 198.51.100.7"));
    ASSERT_TRUE(receive(c, "5:OK OK,"));
    oracle_.permitted.erase(*core::Address::parse("198.51.100.7"));
    c.received.clear();
    c.send(ns("relaypermit 198.51.100.7"));
    ASSERT_TRUE(receive(c, "9:NOTFOUND ,"));

    const auto n = f.counters();
    EXPECT_EQ(n.connections, 1u);
    EXPECT_EQ(n.requests, 8u);
    EXPECT_EQ(n.permitted, 4u);
    EXPECT_EQ(n.malformed, 0u);
    EXPECT_EQ(n.active, 1u);
}

TEST_F(SocketmapFrontendTest, MalformedNetstringClosesOnlyThatConnection) {
    SocketmapFrontend f(loop_, oracle_);
    ASSERT_TRUE(f.listen({"127.0.0.1:0"}).has_value());
    const std::string ep = f.local_endpoints().front();
    StreamClient good(ep);
    StreamClient bad(ep);
    bad.send(ns("relaypermit 192.0.2.1") + "relaypermit 192.0.2.1\n");
    ASSERT_TRUE(wait_eof(bad));
    EXPECT_EQ(bad.received, "5:OK OK,");  // the request before the junk was answered
    good.send(ns("x 192.0.2.1"));
    ASSERT_TRUE(receive(good, "5:OK OK,"));
    EXPECT_EQ(f.counters().malformed, 1u);
    // An oversized length is refused before its payload arrives.
    StreamClient big(ep);
    big.send("100000:");
    ASSERT_TRUE(wait_eof(big));
    EXPECT_EQ(big.received, "");
    EXPECT_EQ(f.counters().malformed, 2u);
}

TEST_F(SocketmapFrontendTest, UnixSocketIdleTimeoutAndClose) {
    const auto dir = std::filesystem::temp_directory_path() / ("rp-sm-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "socketmap").string();
    SocketmapLimits limits;
    limits.idle_timeout = 100ms;
    SocketmapFrontend f(loop_, oracle_, limits);
    ASSERT_TRUE(f.listen({"unix:" + path}).has_value());
    EXPECT_EQ(f.local_endpoints(), std::vector<std::string>{"unix:" + path});
    StreamClient c("unix:" + path);
    c.send(ns("relaypermit 2001:db8::1"));
    ASSERT_TRUE(receive(c, "5:OK OK,"));
    ASSERT_TRUE(wait_eof(c));  // idle: closed by the sweep
    EXPECT_EQ(f.counters().active, 0u);
    f.close();
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(f.listen({"udp:127.0.0.1:0"}).has_value());
    EXPECT_FALSE(f.listen({"127.0.0.1:0", "nonsense"}).has_value());
    EXPECT_TRUE(f.local_endpoints().empty());
    std::filesystem::remove_all(dir);
}

TEST_F(SocketmapFrontendTest, MaxClientsClosesTheLongestIdle) {
    SocketmapLimits limits;
    limits.max_clients = 1;
    SocketmapFrontend f(loop_, oracle_, limits);
    ASSERT_TRUE(f.listen({"[::1]:0"}).has_value());
    const std::string ep = f.local_endpoints().front();
    StreamClient a(ep);
    a.send(ns("x ::1"));
    ASSERT_TRUE(receive(a, "5:OK OK,"));
    StreamClient b(ep);
    b.send(ns("x ::1"));
    ASSERT_TRUE(receive(b, "5:OK OK,"));  // the newcomer is served
    ASSERT_TRUE(wait_eof(a));             // the idle one made room
    EXPECT_EQ(f.counters().refused, 1u);
}

}  // namespace
}  // namespace rp::frontends
