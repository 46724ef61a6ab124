// OpenSMTPD table-socketmap protocol (opensmtpd-extras table_socketmap.c: "NAME KEY\n" ->
// "OK value\n" / "NOTFOUND \n"): the answer function and OpensmtpdFrontend over a real unix
// socket.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "frontends/line_codec.hpp"
#include "frontends/opensmtpd_frontend.hpp"
#include "stream_test_client.hpp"

namespace rp::frontends {
namespace {

using namespace std::chrono_literals;
using streamtest::FakeOracle;
using streamtest::StreamClient;

TEST(OpensmtpdAnswer, Table) {
    FakeOracle oracle;
    oracle.permitted.insert(*core::Address::parse("192.0.2.1"));
    oracle.permitted.insert(*core::Address::parse("2001:db8::1"));
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"relaypermit 192.0.2.1", "OK 192.0.2.1\n"},
        {"relaypermit [2001:db8::1]", "OK 2001:db8::1\n"},
        {"relaypermit 2001:db8::1", "OK 2001:db8::1\n"},
        {"relaypermit ::ffff:192.0.2.1", "OK 192.0.2.1\n"},
        {"relaypermit 192.0.2.2", "NOTFOUND \n"},
        {"relaypermit local", "NOTFOUND \n"},
        {"relaypermit mail.example.com", "NOTFOUND \n"},
        {"relaypermit alice@example.org", "NOTFOUND \n"},
        {"relaypermit 192.0.2", "NOTFOUND \n"},
        {"relaypermit", "NOTFOUND \n"},
        {"", "NOTFOUND \n"},
        {"relaypermit 192.0.2.1 x", "NOTFOUND \n"},
    };
    for (const auto& [line, want] : cases) {
        std::string out;
        bool permitted = true;
        opensmtpd_answer(line, oracle, out, permitted);
        EXPECT_EQ(out, want) << line;
        EXPECT_EQ(permitted, want.starts_with("OK ")) << line;
    }
}

class OpensmtpdFrontendTest : public streamtest::StreamFrontendTest {
protected:
    OpensmtpdFrontendTest() {
        dir_ = std::filesystem::temp_directory_path() / ("rp-os-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    ~OpensmtpdFrontendTest() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(OpensmtpdFrontendTest, LinePerRequestOnOneConnection) {
    const std::string ep = "unix:" + (dir_ / "table.sock").string();
    OpensmtpdFrontend f(loop_, oracle_);
    ASSERT_TRUE(f.listen({ep}).has_value());
    StreamClient c(ep);
    c.send("relaypermit 192.0.2.1\n");
    ASSERT_TRUE(receive(c, "OK 192.0.2.1\n"));
    c.received.clear();
    c.send("relaypermit local\nrelaypermit [2001:db8::1]\nrelaypermit 198.51.100.3\n");
    ASSERT_TRUE(receive(c, "NOTFOUND \nOK 2001:db8::1\nNOTFOUND \n"));
    // Grant and expiry show at once on the same connection.
    oracle_.permitted.insert(*core::Address::parse("198.51.100.3"));
    c.received.clear();
    c.send("relaypermit 198.51.100.3\n");
    ASSERT_TRUE(receive(c, "OK 198.51.100.3\n"));
    oracle_.permitted.erase(*core::Address::parse("198.51.100.3"));
    c.received.clear();
    c.send("relaypermit 198.51.100.3\n");
    ASSERT_TRUE(receive(c, "NOTFOUND \n"));
    // Split reads.
    c.received.clear();
    c.send("relaypermit 19");
    ASSERT_FALSE(pump_until([&] { c.poll(); return !c.received.empty(); }, 30ms));
    c.send("2.0.2.1\n");
    ASSERT_TRUE(receive(c, "OK 192.0.2.1\n"));
    const auto n = f.counters();
    EXPECT_EQ(n.requests, 7u);
    EXPECT_EQ(n.permitted, 4u);
    EXPECT_EQ(n.active, 1u);
}

TEST_F(OpensmtpdFrontendTest, OverlongLineClosesAndTcpIsRefused) {
    const std::string ep = "unix:" + (dir_ / "t.sock").string();
    OpensmtpdFrontend f(loop_, oracle_);
    auto tcp = f.listen({"127.0.0.1:0"});
    ASSERT_FALSE(tcp.has_value());
    EXPECT_NE(tcp.error().message.find("unix"), std::string::npos) << tcp.error().message;
    ASSERT_TRUE(f.listen({ep}).has_value());
    StreamClient c(ep);
    c.send("relaypermit 192.0.2.1\nrelaypermit " + std::string(5000, 'a') + "\n");
    ASSERT_TRUE(wait_eof(c));
    EXPECT_EQ(c.received, "OK 192.0.2.1\n");
    EXPECT_EQ(f.counters().malformed, 1u);
    f.close();
    EXPECT_FALSE(std::filesystem::exists(dir_ / "t.sock"));
}

}  // namespace
}  // namespace rp::frontends
