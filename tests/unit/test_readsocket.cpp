// Exim ${readsocket}: the answer function (table-driven) and ReadsocketFrontend over real
// loopback TCP and unix sockets: exactly "yes"/"no" with no newline, then the server closes.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "frontends/line_codec.hpp"
#include "frontends/readsocket_frontend.hpp"
#include "stream_test_client.hpp"

namespace rp::frontends {
namespace {

using namespace std::chrono_literals;
using streamtest::FakeOracle;
using streamtest::StreamClient;

TEST(ReadsocketAnswer, Table) {
    FakeOracle oracle;
    oracle.permitted.insert(*core::Address::parse("192.0.2.1"));
    oracle.permitted.insert(*core::Address::parse("2001:db8::1"));
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"192.0.2.1", "yes"},
        {"192.0.2.1\n", "yes"},
        {"192.0.2.1\r\n", "yes"},
        {"  192.0.2.1 \t", "yes"},
        {"[192.0.2.1]", "yes"},
        {"::ffff:192.0.2.1", "yes"},
        {"2001:db8::1", "yes"},
        {"2001:DB8:0:0:0:0:0:1", "yes"},
        {"[2001:db8::1]", "yes"},
        {"192.0.2.2", "no"},
        {"192.0.2", "no"},
        {"", "no"},
        {"   ", "no"},
        {"mail.example.com", "no"},
        {"192.0.2.1 192.0.2.1", "no"},
        {"ipv6:2001:db8::1", "no"},
        {"GET / HTTP/1.0", "no"},
        {std::string(300, '9'), "no"},
    };
    for (const auto& [line, want] : cases) {
        bool permitted = true;
        EXPECT_EQ(readsocket_answer(line, oracle, permitted), want) << line;
        EXPECT_EQ(permitted, want == "yes") << line;
    }
}

TEST(RequestLineReader, LinesLimitsAndEof) {
    RequestLineReader r(8);
    auto s = r.feed("abc\r\nde");
    EXPECT_EQ(s.kind, RequestLineReader::Step::Kind::line);
    EXPECT_EQ(s.consumed, 5u);
    EXPECT_EQ(r.line(), "abc");
    s = r.feed("de");
    EXPECT_EQ(s.kind, RequestLineReader::Step::Kind::need_more);
    EXPECT_TRUE(r.finish());
    EXPECT_EQ(r.line(), "de");
    r.reset();
    EXPECT_EQ(r.feed("123456789\n").kind, RequestLineReader::Step::Kind::error);
    EXPECT_EQ(r.feed("1\n").kind, RequestLineReader::Step::Kind::error);  // sticky
    r.reset();
    EXPECT_EQ(r.feed(std::string_view("a\0b\n", 4)).kind, RequestLineReader::Step::Kind::error);
    r.reset();
    EXPECT_EQ(r.feed("12345678\n").kind, RequestLineReader::Step::Kind::line);  // exactly the limit
    EXPECT_FALSE(r.finish());
}

class ReadsocketFrontendTest : public streamtest::StreamFrontendTest {};

TEST_F(ReadsocketFrontendTest, OneAnswerWithoutNewlineThenClose) {
    ReadsocketFrontend f(loop_, oracle_);
    ASSERT_TRUE(f.listen({"127.0.0.1:0"}).has_value());
    const std::string ep = f.local_endpoints().front();
    struct Case {
        std::string request;
        bool half_close;
        std::string reply;
    };
    const std::vector<Case> cases = {
        {"192.0.2.1\n", false, "yes"},            // Exim shutdown=no with "\n" in the request
        {"192.0.2.1\n", true, "yes"},             // Exim default shutdown=yes
        {"192.0.2.1", true, "yes"},               // no newline, half-close
        {"2001:db8::1\r\n", false, "yes"},
        {"192.0.2.7\n", false, "no"},
        {"junk\n", false, "no"},
        {"\n", false, "no"},
        {std::string(1000, 'x'), false, "no"},    // overlong: "no" at once
        {"192.0.2.1\n192.0.2.7\n", false, "yes"},  // only the first line counts
    };
    for (const auto& c : cases) {
        StreamClient client(ep);
        client.send(c.request);
        if (c.half_close) client.shutdown_write();
        ASSERT_TRUE(wait_eof(client)) << c.request;
        EXPECT_EQ(client.received, c.reply) << c.request;
    }
    // Nothing sent, then EOF: closed without a reply.
    StreamClient empty(ep);
    empty.shutdown_write();
    ASSERT_TRUE(wait_eof(empty));
    EXPECT_EQ(empty.received, "");
    const auto n = f.counters();
    EXPECT_EQ(n.connections, cases.size() + 1);
    EXPECT_EQ(n.requests, cases.size());
    EXPECT_EQ(n.permitted, 5u);
    EXPECT_EQ(n.malformed, 1u);
    EXPECT_EQ(n.active, 0u);
}

TEST_F(ReadsocketFrontendTest, ExpiryChangesTheAnswerAndUnixSocketWorks) {
    const auto dir = std::filesystem::temp_directory_path() / ("rp-rs-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string ep = "unix:" + (dir / "readsocket").string();
    ReadsocketFrontend f(loop_, oracle_);
    ASSERT_TRUE(f.listen({ep}).has_value());
    auto ask = [&](const std::string& addr) {
        StreamClient c(ep);
        c.send(addr + "\n");
        EXPECT_TRUE(wait_eof(c));
        return c.received;
    };
    EXPECT_EQ(ask("203.0.113.9"), "no");
    oracle_.permitted.insert(*core::Address::parse("203.0.113.9"));
    EXPECT_EQ(ask("203.0.113.9"), "yes");
    oracle_.permitted.erase(*core::Address::parse("203.0.113.9"));
    EXPECT_EQ(ask("203.0.113.9"), "no");
    f.close();
    std::filesystem::remove_all(dir);
}

TEST_F(ReadsocketFrontendTest, SilentClientIsClosedAfterTheTimeout) {
    ReadsocketLimits limits;
    limits.request_timeout = 100ms;
    ReadsocketFrontend f(loop_, oracle_, limits);
    ASSERT_TRUE(f.listen({"127.0.0.1:0"}).has_value());
    StreamClient c(f.local_endpoints().front());
    c.send("192.0.2.1");  // no newline, no half-close
    ASSERT_TRUE(wait_eof(c));
    EXPECT_EQ(c.received, "");
}

}  // namespace
}  // namespace rp::frontends
