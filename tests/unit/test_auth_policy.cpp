// The dovecot-auth-policy source: the pure HTTP parser and report rules (table-driven), then the
// server over real loopback TCP and unix sockets with a recording sink. The loop runs in the
// test thread (run_once) and clients are non-blocking: waits are conditions with deadlines.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sources/auth_policy_codec.hpp"
#include "sources/auth_policy_source.hpp"
#include "util/endpoint.hpp"

namespace rp::sources {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

const std::string k_report_body =
    R"({"device_id":"","login":"alice","protocol":"pop3","pwhash":"0009","remote":"127.0.0.41",)"
    R"("session_id":"abc","success":true,"policy_reject":false,"tls":false})";

std::string post(const std::string& target, const std::string& body, const std::string& extra_headers = "") {
    return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra_headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// ---- codec ----------------------------------------------------------------------------------

TEST(AuthPolicyCodec, ParsesPipelinedKeepAliveRequests) {
    HttpRequestParser p;
    const std::string two = post("/?command=report", k_report_body) + post("/?command=allow", "{}");
    // Byte by byte: the parser must cope with any split.
    std::vector<HttpRequest> got;
    for (char c : two) {
        p.feed(std::string_view(&c, 1));
        HttpRequest r;
        while (p.next(&r) == HttpRequestParser::State::request) got.push_back(r);
    }
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].method, "POST");
    EXPECT_EQ(got[0].target, "/?command=report");
    EXPECT_EQ(got[0].body, k_report_body);
    EXPECT_TRUE(got[0].keep_alive);
    EXPECT_EQ(got[0].header("content-type").value_or(""), "application/json");
    EXPECT_EQ(got[1].body, "{}");
    EXPECT_EQ(p.buffered(), 0u);
}

TEST(AuthPolicyCodec, ConnectionSemantics) {
    struct Case {
        std::string request;
        bool keep_alive;
    };
    for (const auto& c : std::vector<Case>{
             {"POST / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
             {"POST / HTTP/1.1\r\nConnection: Keep-Alive, TE\r\n\r\n", true},
             {"POST / HTTP/1.0\r\n\r\n", false},
             {"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
             {"GET / HTTP/1.1\n\n", true},  // bare LF
         }) {
        HttpRequestParser p;
        p.feed(c.request);
        HttpRequest r;
        ASSERT_EQ(p.next(&r), HttpRequestParser::State::request) << c.request;
        EXPECT_EQ(r.keep_alive, c.keep_alive) << c.request;
    }
}

TEST(AuthPolicyCodec, RejectsWhatItDoesNotUnderstand) {
    struct Case {
        std::string request;
        int status;
    };
    const std::string big(70 * 1024, 'x');
    for (const auto& c : std::vector<Case>{
             {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413},
             {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
             {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
             {"POST / HTTP/2.0\r\n\r\n", 400},
             {"POST /\r\n\r\n", 400},
             {"POST  / HTTP/1.1\r\n\r\n", 400},
             {"PO(ST / HTTP/1.1\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nX-Long: " + big + "\r\n\r\n", 400},
             {"POST / HTTP/1.1\r\nX-Long: " + big, 400},  // no end of headers yet, already too long
         }) {
        HttpRequestParser p;
        p.feed(c.request);
        HttpRequest r;
        EXPECT_EQ(p.next(&r), HttpRequestParser::State::error) << c.request.substr(0, 80);
        EXPECT_EQ(p.error_status(), c.status) << c.request.substr(0, 80);
        EXPECT_EQ(p.next(&r), HttpRequestParser::State::error);  // stays failed
        EXPECT_LT(p.buffered(), 1u);
    }
}

TEST(AuthPolicyCodec, DuplicateEqualContentLengthIsFine) {
    HttpRequestParser p;
    p.feed("POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab");
    HttpRequest r;
    ASSERT_EQ(p.next(&r), HttpRequestParser::State::request);
    EXPECT_EQ(r.body, "ab");
}

TEST(AuthPolicyCodec, ReportCommandDetection) {
    EXPECT_TRUE(is_report_command("/?command=report"));
    EXPECT_TRUE(is_report_command("/policy?x=1&command=report"));
    EXPECT_TRUE(is_report_command("/p?a=b&command=report&c=d"));
    EXPECT_FALSE(is_report_command("/?command=allow"));
    EXPECT_FALSE(is_report_command("/command=report"));
    EXPECT_FALSE(is_report_command("/?xcommand=report"));
    EXPECT_FALSE(is_report_command("/?command=reports"));
}

TEST(AuthPolicyCodec, ApiHeader) {
    EXPECT_FALSE(parse_api_header("").has_value());
    auto h = parse_api_header("X-Relay-Key:  s3cret ");
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->lower_name, "x-relay-key");
    EXPECT_EQ(h->value, "s3cret");
    auto bare = parse_api_header("s3cret");
    ASSERT_TRUE(bare.has_value());
    EXPECT_EQ(bare->lower_name, "x-api-key");
    HttpRequestParser p;
    p.feed("POST / HTTP/1.1\r\nx-relay-KEY: s3cret\r\n\r\nPOST / HTTP/1.1\r\nX-Relay-Key: s3cre\r\n\r\n");
    HttpRequest r1, r2;
    ASSERT_EQ(p.next(&r1), HttpRequestParser::State::request);
    ASSERT_EQ(p.next(&r2), HttpRequestParser::State::request);
    EXPECT_TRUE(has_api_header(r1, *h));
    EXPECT_FALSE(has_api_header(r2, *h));
}

TEST(AuthPolicyCodec, ReportRules) {
    using K = ReportDecision::Kind;
    struct Case {
        std::string body;
        K kind;
        std::string ip, user;
    };
    for (const auto& c : std::vector<Case>{
             {k_report_body, K::grant, "127.0.0.41", "alice"},
             {R"({"login":"bob","protocol":"imap","remote":"2001:db8::1","success":true})", K::grant, "2001:db8::1", "bob"},
             {R"({"login":"bob","protocol":"imap","remote":"::ffff:192.0.2.4","success":true})", K::grant, "192.0.2.4", "bob"},
             {R"({"protocol":"imap","remote":"192.0.2.4","success":true})", K::grant, "192.0.2.4", ""},
             {R"({"login":"a","protocol":"imap","remote":"192.0.2.4","success":false})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"imap","remote":"192.0.2.4"})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"imap","remote":"192.0.2.4","success":"true"})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"smtp","remote":"192.0.2.4","success":true})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"submission","remote":"192.0.2.4","success":true})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"sieve","remote":"192.0.2.4","success":true})", K::ignored, "", ""},
             {R"({"login":"a","protocol":"IMAP","remote":"192.0.2.4","success":true})", K::ignored, "", ""},
             {R"({"login":"a","remote":"192.0.2.4","success":true})", K::malformed, "", ""},
             {R"({"login":"a","protocol":"imap","success":true})", K::malformed, "", ""},
             {R"({"login":"a","protocol":"imap","remote":"","success":true})", K::malformed, "", ""},
             {R"({"login":"a","protocol":"imap","remote":"192.0.2.4x","success":true})", K::malformed, "", ""},
             {R"({"login":"a","protocol":"imap","remote":"192.0.2.0/24","success":true})", K::malformed, "", ""},
             {R"({"login":"a","protocol":"imap","remote":7,"success":true})", K::malformed, "", ""},
             {R"({"login":5,"protocol":"imap","remote":"192.0.2.4","success":true})", K::malformed, "", ""},
             {R"(["remote","192.0.2.4"])", K::malformed, "", ""},
             {"", K::malformed, "", ""},
             {"{", K::malformed, "", ""},
         }) {
        const auto d = interpret_report(c.body);
        EXPECT_EQ(d.kind, c.kind) << c.body;
        if (c.kind == K::grant) {
            ASSERT_TRUE(d.address.has_value()) << c.body;
            EXPECT_EQ(d.address->to_string(), c.ip);
            EXPECT_EQ(d.user, c.user);
        }
    }
}

TEST(AuthPolicyCodec, Responses) {
    const auto ok = http_ok_json_response(true);
    EXPECT_EQ(ok, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
                  R"({"status":0,"msg":""})");
    EXPECT_NE(http_ok_json_response(false).find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(http_error_response(401, true).rfind("HTTP/1.1 401 ", 0), 0u);
}

// ---- server ---------------------------------------------------------------------------------

class RecordingSink final : public LoginSink {
public:
    std::vector<core::LoginEvent> events;
    std::vector<std::string> checkpoint_keys;
    bool fail = false;
    core::Status deliver(std::span<const core::LoginEvent> ev, const core::Checkpoint& cp) override {
        if (fail) return core::make_error("disk full");
        events.insert(events.end(), ev.begin(), ev.end());
        checkpoint_keys.push_back(cp.key);
        return core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string&) const override { return std::nullopt; }
};

class Client {
public:
    explicit Client(const std::string& endpoint) {
        auto ep = util::parse_endpoint(endpoint);
        EXPECT_TRUE(ep.has_value());
        auto fd = util::connect_endpoint(*ep, 2000);
        EXPECT_TRUE(fd.has_value()) << (fd ? "" : fd.error().message);
        if (fd) fd_ = std::move(*fd);
    }
    void send(const std::string& s) {
        ASSERT_EQ(::send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
    }
    // Reads without blocking; returns false on EOF.
    bool pump() {
        char buf[4096];
        for (;;) {
            const auto n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                in.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0) {
                eof = true;
                return false;
            }
            return true;
        }
    }
    int count(const std::string& needle) const {
        int c = 0;
        for (auto p = in.find(needle); p != std::string::npos; p = in.find(needle, p + 1)) ++c;
        return c;
    }
    std::string in;
    bool eof = false;
    util::UniqueFd fd_;
};

class AuthPolicyServerTest : public ::testing::Test {
protected:
    util::EventLoop loop;
    RecordingSink sink;
    core::ManualClock clock{core::from_unix_seconds(1'800'000'000)};
    std::unique_ptr<AuthPolicySource> src;

    void start(AuthPolicyOptions o) {
        if (o.listen.empty()) o.listen = {"127.0.0.1:0"};
        src = std::make_unique<AuthPolicySource>("dovecot-auth-policy:test", std::move(o), sink, clock);
        auto st = src->start(loop);
        ASSERT_TRUE(st.has_value()) << st.error().message;
    }
    std::string endpoint() const { return src->local_endpoints().at(0); }
    void TearDown() override {
        if (src) src->stop(loop);
    }
    bool wait(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5s) {
        const auto deadline = Steady::now() + limit;
        while (!cond()) {
            if (Steady::now() > deadline) return false;
            loop.run_once(5ms);
        }
        return true;
    }
};

TEST_F(AuthPolicyServerTest, GrantsSuccessfulPopAndImapReportsOverOneConnection) {
    start({});
    Client c(endpoint());
    c.send(post("/?command=report", k_report_body));
    c.send(post("/?command=report", R"({"login":"bob","protocol":"imap","remote":"192.0.2.9","success":true})"));
    c.send(post("/?command=report", R"({"login":"eve","protocol":"smtp","remote":"192.0.2.10","success":true})"));
    c.send(post("/?command=report", R"({"login":"eve","protocol":"imap","remote":"192.0.2.11","success":false})"));
    c.send(post("/?command=allow", R"({"login":"eve","protocol":"imap","remote":"192.0.2.12"})"));
    c.send(post("/?command=report", R"({"login":"mal","protocol":"imap","success":true})"));
    ASSERT_TRUE(wait([&] { c.pump(); return c.count(R"({"status":0,"msg":""})") == 6; }));
    EXPECT_EQ(c.count("HTTP/1.1 200 OK\r\n"), 6);
    EXPECT_FALSE(c.eof);
    ASSERT_EQ(sink.events.size(), 2u);
    EXPECT_EQ(sink.events[0].ip.to_string(), "127.0.0.41");
    EXPECT_EQ(sink.events[0].user, "alice");
    EXPECT_EQ(sink.events[0].server, "dovecot-auth-policy");
    EXPECT_EQ(sink.events[0].source, "dovecot-auth-policy:test");
    EXPECT_EQ(sink.events[0].time, clock.now());
    EXPECT_EQ(sink.events[1].ip.to_string(), "192.0.2.9");
    for (const auto& k : sink.checkpoint_keys) EXPECT_EQ(k, "");
    const auto n = src->counters();
    EXPECT_EQ(n.lines, 6u);
    EXPECT_EQ(n.matches, 2u);
    EXPECT_EQ(n.malformed, 1u);
    EXPECT_EQ(src->open_connections(), 1u);
}

TEST_F(AuthPolicyServerTest, ApiHeaderRequired) {
    AuthPolicyOptions o;
    o.api_header = "X-API-Key: s3cret";
    start(o);
    Client c(endpoint());
    c.send(post("/?command=report", k_report_body));                              // no header
    c.send(post("/?command=report", k_report_body, "X-API-Key: wrong\r\n"));      // wrong value
    c.send(post("/?command=report", k_report_body, "x-api-key:  s3cret\r\n"));    // right
    ASSERT_TRUE(wait([&] { c.pump(); return c.count("HTTP/1.1 ") == 3; }));
    EXPECT_EQ(c.count("HTTP/1.1 401 "), 2);
    EXPECT_EQ(c.count("HTTP/1.1 200 OK"), 1);
    EXPECT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(src->counters().untrusted, 2u);
}

TEST_F(AuthPolicyServerTest, MalformedHttpGets400AndClose) {
    start({});
    Client c(endpoint());
    c.send("POST /?command=report HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    ASSERT_TRUE(wait([&] { c.pump(); return c.eof; }));
    EXPECT_EQ(c.in.rfind("HTTP/1.1 400 ", 0), 0u);
    Client big(endpoint());
    big.send("POST /?command=report HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
    ASSERT_TRUE(wait([&] { big.pump(); return big.eof; }));
    EXPECT_EQ(big.in.rfind("HTTP/1.1 413 ", 0), 0u);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_EQ(src->counters().malformed, 2u);
    ASSERT_TRUE(wait([&] { return src->open_connections() == 0; }));
}

TEST_F(AuthPolicyServerTest, ConnectionCloseIsHonoured) {
    start({});
    Client c(endpoint());
    c.send(post("/?command=report", k_report_body, "Connection: close\r\n"));
    ASSERT_TRUE(wait([&] { c.pump(); return c.eof; }));
    EXPECT_EQ(c.count("HTTP/1.1 200 OK"), 1);
    EXPECT_NE(c.in.find("Connection: close"), std::string::npos);
    EXPECT_EQ(sink.events.size(), 1u);
}

TEST_F(AuthPolicyServerTest, AllowFromRefusesOtherPeers) {
    AuthPolicyOptions o;
    o.allow_from = {*core::Cidr::parse("127.0.0.5/32")};
    start(o);
    Client c(endpoint());  // from 127.0.0.1: not allowed
    c.send(post("/?command=report", k_report_body));
    ASSERT_TRUE(wait([&] { c.pump(); return c.eof; }));
    EXPECT_EQ(c.in, "");
    EXPECT_TRUE(sink.events.empty());
    EXPECT_EQ(src->counters().untrusted, 1u);
}

TEST_F(AuthPolicyServerTest, UnixListenerAndFailedDeliveryIsCounted) {
    const auto path = std::filesystem::temp_directory_path() / ("rp_ap_" + std::to_string(::getpid()) + ".sock");
    AuthPolicyOptions o;
    o.listen = {"unix:" + path.string()};
    start(o);
    sink.fail = true;
    Client c("unix:" + path.string());
    c.send(post("/?command=report", k_report_body));
    ASSERT_TRUE(wait([&] { c.pump(); return c.count("HTTP/1.1 200 OK") == 1; }));
    EXPECT_EQ(src->counters().dropped, 1u);
    src->stop(loop);
    EXPECT_FALSE(std::filesystem::exists(path));
    src.reset();
}

TEST_F(AuthPolicyServerTest, IdleConnectionsAreClosed) {
    AuthPolicyOptions o;
    o.idle_timeout = 50ms;
    start(o);
    Client c(endpoint());
    ASSERT_TRUE(wait([&] { return src->open_connections() == 1; }));
    ASSERT_TRUE(wait([&] { c.pump(); return c.eof; }));
    EXPECT_EQ(src->open_connections(), 0u);
}

TEST_F(AuthPolicyServerTest, FactoryValidates) {
    config::SourceConfig cfg;
    cfg.type = rp::config::SourceType::dovecot_auth_policy;
    core::SystemClock sys;
    EXPECT_FALSE(open_auth_policy_source(cfg, {}, sink, sys).has_value());
    cfg.listen = {"127.0.0.1:0"};
    cfg.name = "ap";
    auto s = open_auth_policy_source(cfg, {}, sink, sys);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ((*s)->name(), "ap");
    cfg.listen = {"udp:127.0.0.1:0"};
    auto u = open_auth_policy_source(cfg, {}, sink, sys);
    ASSERT_TRUE(u.has_value());
    EXPECT_FALSE((*u)->start(loop).has_value());
}

}  // namespace
}  // namespace rp::sources
