// SyslogSource over real loopback sockets: TCP with both RFC 6587 framings on one listener, UDP,
// a unix datagram socket, allow_from (refused peers counted untrusted), the connection limit, a
// garbage octet count, store failures (events kept and offered again), endpoint errors, and a
// flood through the real Matcher with every login granted exactly once. The event loop is driven
// until a condition holds or a deadline passes (no fixed sleeps).
#include "sources/syslog_source.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "matching/matcher.hpp"
#include "util/unique_fd.hpp"

namespace {

using namespace std::chrono_literals;
using rp::core::LoginEvent;
using rp::sources::SyslogOptions;
using rp::sources::SyslogSource;
using rp::util::UniqueFd;

class FakeSink final : public rp::sources::LoginSink {
public:
    rp::core::Status deliver(std::span<const LoginEvent> batch, const rp::core::Checkpoint& cp) override {
        ++attempts;
        EXPECT_TRUE(cp.key.empty());
        if (fail) return rp::core::make_error("store is down");
        events.insert(events.end(), batch.begin(), batch.end());
        return rp::core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string&) const override { return std::nullopt; }
    std::vector<std::string> users() const {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.user);
        return out;
    }
    std::vector<LoginEvent> events;
    int attempts = 0;
    bool fail = false;
};

// A line containing "LOGIN <ip> <user>" (after any syslog header) is a login.
void parse_logins(std::string_view block, rp::core::Time now, std::vector<LoginEvent>& out) {
    while (!block.empty()) {
        const auto nl = block.find('\n');
        EXPECT_NE(nl, std::string_view::npos) << "the parser must only get complete lines";
        if (nl == std::string_view::npos) return;
        std::string_view line = block.substr(0, nl);
        block.remove_prefix(nl + 1);
        const auto at = line.find("LOGIN ");
        if (at == std::string_view::npos) continue;
        line.remove_prefix(at + 6);
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos) continue;
        auto ip = rp::core::Address::parse(line.substr(0, sp));
        if (!ip) continue;
        out.push_back(LoginEvent{*ip, std::string(line.substr(sp + 1)), "test", "", now});
    }
}

const rp::core::Time t0 = rp::core::from_unix_seconds(1'800'000'000);

bool run_until(rp::util::EventLoop& loop, const std::function<bool()>& done, std::chrono::seconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        loop.run_once(10ms);
    }
    return true;
}

int port_of(const std::string& endpoint) { return std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str()); }

UniqueFd connect_from(int type, int port, const char* from = nullptr, const char* to = "127.0.0.1") {
    UniqueFd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (from != nullptr) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        inet_pton(AF_INET, from, &src.sin_addr);
        EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src), 0) << std::strerror(errno);
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, to, &dst.sin_addr);
    EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0) << std::strerror(errno);
    return fd;
}

void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t w = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        ASSERT_GT(w, 0) << std::strerror(errno);
        data.remove_prefix(static_cast<std::size_t>(w));
    }
}

// True once the peer closed the connection (read returns 0 or an error), without blocking.
bool peer_closed(int fd) {
    char c;
    const ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

struct Fixture {
    FakeSink sink;
    rp::core::ManualClock clock{t0};
    rp::util::EventLoop loop;
    std::unique_ptr<SyslogSource> src;

    void open(const std::vector<std::string>& listen, std::vector<rp::core::Cidr> allow = {}, SyslogOptions opts = {}) {
        auto s = SyslogSource::open("syslog:test", listen, std::move(allow), parse_logins, sink, clock, opts);
        ASSERT_TRUE(s) << s.error().message;
        src = std::move(*s);
        ASSERT_TRUE(src->start(loop));
    }
    ~Fixture() {
        if (src) src->stop(loop);
    }
};

TEST(SyslogSource, TcpOctetCountedAndLfFramingOnOneListener) {
    Fixture f;
    f.open({"tcp:127.0.0.1:0"});
    const int port = port_of(f.src->local_endpoints().at(0));
    UniqueFd a = connect_from(SOCK_STREAM, port);
    UniqueFd b = connect_from(SOCK_STREAM, port);
    const std::string m1 = "<38>1 2026-11-22T00:31:13Z mx1 dovecot 1 - - LOGIN 127.0.0.2 alice";
    send_all(a.get(), std::to_string(m1.size()) + " " + m1);
    send_all(b.get(), "<38>Nov 22 00:31:13 mx1 dovecot: LOGIN 198.51.100.7 bob\n<38>Nov 22 00:31:14 mx1 x: noise\n");
    const std::string m3 = "<38>Nov 22 00:31:15 mx1 dovecot: LOGIN 2001:db8::1 carol\nsecond line";
    send_all(a.get(), std::to_string(m3.size()) + " " + m3);
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 3; }));
    std::set<std::string> got;
    for (const auto& e : f.sink.events) {
        got.insert(e.user);
        EXPECT_EQ(e.source, "syslog:test");
        EXPECT_EQ(e.time, t0);
    }
    EXPECT_EQ(got, (std::set<std::string>{"alice", "bob", "carol second line"}));
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->counters().lines == 4; }));
    EXPECT_EQ(f.src->counters().matches, 3u);
    EXPECT_EQ(f.src->connections(), 2u);
    a.reset();
    b.reset();
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->connections() == 0; }));
}

TEST(SyslogSource, UnterminatedLastLfMessageCountsAtClose) {
    Fixture f;
    f.open({"127.0.0.1:0"});
    UniqueFd a = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    send_all(a.get(), "<38>x: LOGIN 127.0.0.9 last");
    a.reset();
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 1; }));
    EXPECT_EQ(f.sink.events[0].user, "last");
}

TEST(SyslogSource, UdpAndUnixDatagrams) {
    Fixture f;
    const auto dir = std::filesystem::temp_directory_path() / ("rp_syslog_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "log.sock").string();
    f.open({"udp:127.0.0.1:0", "unix:" + path});
    EXPECT_EQ(f.src->local_endpoints().at(1), "unix:" + path);
    UniqueFd u = connect_from(SOCK_DGRAM, port_of(f.src->local_endpoints().at(0)));
    send_all(u.get(), "<38>Nov 22 00:31:13 mx1 dovecot: LOGIN 127.0.0.2 udpuser\n");
    UniqueFd x(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    ASSERT_EQ(connect(x.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0) << std::strerror(errno);
    send_all(x.get(), "<38>Nov 22 00:31:13 dovecot: LOGIN 127.0.0.3 unixuser");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 2; }));
    const auto users = f.sink.users();
    EXPECT_EQ(std::set<std::string>(users.begin(), users.end()), (std::set<std::string>{"udpuser", "unixuser"}));
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->counters().lines == 2; }));
    f.src->stop(f.loop);
    f.src.reset();
    EXPECT_FALSE(std::filesystem::exists(path));
    std::filesystem::remove_all(dir);
}

// The parser with the candidate filter the daemon gives it (the matcher's prefilter): only lines
// holding "LOGIN " can be logins.
rp::sources::LineParser filtered_parser() {
    return rp::sources::LineParser(parse_logins, [](std::string_view lines,
                                                    const std::function<void(std::size_t, std::size_t)>& keep) {
        for (std::size_t pos = 0; pos < lines.size();) {
            const auto end = std::min(lines.find('\n', pos), lines.size());
            if (lines.substr(pos, end - pos).find("LOGIN ") != std::string_view::npos) keep(pos, end);
            pos = end + 1;
        }
    });
}

// Issue 12 item 16 on the unix datagram receiver (a /dev/log): a full-speed non-blocking sender
// that turns the loop only when the socket is full. Every login in the flood of noise arrives
// once, the noise is counted as filtered, nothing is dropped; nothing here is timed.
TEST(SyslogSource, UnixDatagramFloodOfNoiseEveryLoginOnce) {
    FakeSink sink;
    rp::core::ManualClock clock{t0};
    rp::util::EventLoop loop;
    const auto dir = std::filesystem::temp_directory_path() / ("rp_syslog_flood_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "log.sock").string();
    auto s = SyslogSource::open("syslog:test", {"unix:" + path}, {}, filtered_parser(), sink, clock);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_TRUE((*s)->start(loop));
    UniqueFd x(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, path.c_str());
    ASSERT_EQ(connect(x.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0) << std::strerror(errno);
    constexpr std::size_t total = 100'000, every = 50;
    for (std::size_t i = 0; i < total; ++i) {
        const std::string msg = i % every == 0 ? "<38>Nov 22 00:31:13 dovecot: LOGIN 127.0.0.3 u" + std::to_string(i)
                                               : "<22>Nov 22 00:31:13 postfix/smtpd[1]: connect from x n=" + std::to_string(i);
        for (int turns = 0; ::send(x.get(), msg.data(), msg.size(), 0) < 0; ++turns) {
            ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
            ASSERT_LT(turns, 3) << "the receiver left its queue full";
            loop.run_once(0ms);
        }
    }
    ASSERT_TRUE(run_until(loop, [&] { return (*s)->counters().lines == total; }, 60s));
    ASSERT_EQ(sink.events.size(), total / every);
    std::set<std::string> users;
    for (const auto& e : sink.events) users.insert(e.user);
    EXPECT_EQ(users.size(), total / every);
    EXPECT_EQ((*s)->counters().filtered, total - total / every);
    EXPECT_EQ((*s)->counters().dropped, 0u);
    (*s)->stop(loop);
    s->reset();
    std::filesystem::remove_all(dir);
}

// Datagrams the kernel drops because the receive buffer is full are counted (SO_RXQ_OVFL, which
// arrives with the next datagram queued): every datagram sent is either read or counted dropped. Loopback UDP queues synchronously, so the
// buffer is full when the sender is done, whatever the host's speed.
TEST(SyslogSource, UdpKernelDropsAreCounted) {
    Fixture f;
    SyslogOptions o;
    o.datagram_rcvbuf = 4096;  // the kernel's minimum or close to it
    f.open({"udp:127.0.0.1:0"}, {}, o);
    UniqueFd u = connect_from(SOCK_DGRAM, port_of(f.src->local_endpoints().at(0)));
    constexpr std::size_t total = 2000;
    for (std::size_t i = 0; i < total; ++i) send_all(u.get(), "<38>x: LOGIN 127.0.0.2 u" + std::to_string(i));
    // The kernel reports its drop count with the next datagram it queues: read what is queued,
    // then send one more.
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->counters().lines > 0; }));
    for (int i = 0; i < 3; ++i) f.loop.run_once(0ms);
    send_all(u.get(), "<38>x: LOGIN 127.0.0.2 last");
    ASSERT_TRUE(run_until(f.loop, [&] {
        const auto c = f.src->counters();
        return c.lines + c.dropped == total + 1;
    }));
    EXPECT_GT(f.src->counters().dropped, 0u);
    EXPECT_EQ(f.sink.events.size(), f.src->counters().lines);
}

TEST(SyslogSource, OversizeDatagramIsDroppedAndCounted) {
    Fixture f;
    SyslogOptions o;
    o.framing.max_frame_bytes = 100;
    f.open({"udp:127.0.0.1:0"}, {}, o);
    UniqueFd u = connect_from(SOCK_DGRAM, port_of(f.src->local_endpoints().at(0)));
    send_all(u.get(), "<38>x: LOGIN 127.0.0.2 " + std::string(200, 'a'));
    send_all(u.get(), "<38>x: LOGIN 127.0.0.2 small");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 1; }));
    EXPECT_EQ(f.sink.events[0].user, "small");
    EXPECT_EQ(f.src->counters().dropped, 1u);
}

TEST(SyslogSource, PeersOutsideAllowFromAreRefusedAndCounted) {
    Fixture f;
    f.open({"tcp:127.0.0.1:0", "udp:127.0.0.1:0"}, {*rp::core::Cidr::parse("127.0.0.2/32")});
    const int tport = port_of(f.src->local_endpoints().at(0));
    const int uport = port_of(f.src->local_endpoints().at(1));
    UniqueFd bad = connect_from(SOCK_STREAM, tport, "127.0.0.1");
    send_all(bad.get(), "<38>x: LOGIN 127.0.0.5 forged\n");
    UniqueFd badu = connect_from(SOCK_DGRAM, uport, "127.0.0.1");
    send_all(badu.get(), "<38>x: LOGIN 127.0.0.5 forgedudp\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->counters().untrusted == 2 && peer_closed(bad.get()); }));
    UniqueFd good = connect_from(SOCK_STREAM, tport, "127.0.0.2");
    send_all(good.get(), "<38>x: LOGIN 127.0.0.5 real\n");
    UniqueFd goodu = connect_from(SOCK_DGRAM, uport, "127.0.0.2");
    send_all(goodu.get(), "<38>x: LOGIN 127.0.0.5 realudp\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 2; }));
    const auto users = f.sink.users();
    EXPECT_EQ(std::set<std::string>(users.begin(), users.end()), (std::set<std::string>{"real", "realudp"}));
    EXPECT_EQ(f.src->counters().lines, 2u);
}

TEST(SyslogSource, DefaultAllowFromIsLoopback) {
    Fixture f;
    f.open({"tcp:127.0.0.1:0"});
    UniqueFd c = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)), "127.0.0.3");
    send_all(c.get(), "<38>x: LOGIN 127.0.0.5 loop\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 1; }));
    EXPECT_EQ(f.src->counters().untrusted, 0u);
}

TEST(SyslogSource, ConnectionLimitClosesTheLongestIdle) {
    Fixture f;
    SyslogOptions o;
    o.max_connections = 2;
    f.open({"tcp:127.0.0.1:0"}, {}, o);
    const int port = port_of(f.src->local_endpoints().at(0));
    UniqueFd a = connect_from(SOCK_STREAM, port);
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->connections() == 1; }));
    UniqueFd b = connect_from(SOCK_STREAM, port);
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->connections() == 2; }));
    send_all(a.get(), "<38>x: LOGIN 127.0.0.5 first\n");  // a delivered a message: b is the longest idle
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 1; }));
    UniqueFd c = connect_from(SOCK_STREAM, port);
    send_all(c.get(), "<38>x: LOGIN 127.0.0.5 newcomer\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 2 && peer_closed(b.get()); }));
    EXPECT_EQ(f.sink.events[1].user, "newcomer");
    EXPECT_FALSE(peer_closed(a.get()));
    EXPECT_EQ(f.src->connection_stats().evicted_full, 1u);
    EXPECT_EQ(f.src->counters().dropped, 0u);  // nothing was lost
}

TEST(SyslogSource, IdleConnectionsDoNotLockOutANewSender) {
    // Regression (issue 12 item 7): 300 idle connections filled the 256 slots and every new
    // sender (rsyslog reconnecting) was refused, with no idle limit to ever free them.
    Fixture f;
    f.open({"tcp:127.0.0.1:0"});
    const int port = port_of(f.src->local_endpoints().at(0));
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 300; ++i) idle.push_back(connect_from(SOCK_STREAM, port));
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->connection_stats().accepted == 300; }));
    EXPECT_EQ(f.src->connections(), 256u);
    UniqueFd sender = connect_from(SOCK_STREAM, port);
    send_all(sender.get(), "<38>x: LOGIN 127.0.0.5 rsyslog\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 1; }));
    EXPECT_EQ(f.sink.events[0].user, "rsyslog");
    EXPECT_EQ(f.src->connection_stats().evicted_full, 45u);
    EXPECT_TRUE(peer_closed(idle.front().get()));  // the longest idle made room
}

TEST(SyslogSource, ATrickleOfBytesDoesNotKeepAConnection) {
    // A message must complete within idle_timeout of the previous one: bytes of a message that
    // never ends do not renew the connection.
    Fixture f;
    SyslogOptions o;
    o.idle_timeout = 200ms;
    f.open({"tcp:127.0.0.1:0"}, {}, o);
    UniqueFd t = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    send_all(t.get(), "<38>x: LOGIN 127.0.0.5 whole\n<38>x: never ends ");
    auto next_byte = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until(f.loop, [&] {
        if (std::chrono::steady_clock::now() >= next_byte) {  // one byte per 20 ms, paced by the clock
            (void)::send(t.get(), "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            next_byte = std::chrono::steady_clock::now() + 20ms;
        }
        return peer_closed(t.get());
    }));
    EXPECT_EQ(f.sink.events.size(), 1u);
    EXPECT_EQ(f.src->connection_stats().closed_idle, 1u);
}

TEST(SyslogSource, GarbageOctetCountClosesTheConnection) {
    Fixture f;
    f.open({"tcp:127.0.0.1:0"});
    UniqueFd a = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    send_all(a.get(), "<38>x: LOGIN 127.0.0.5 before\n12x <38>x: LOGIN 127.0.0.5 after\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return peer_closed(a.get()) && f.src->connections() == 0; }));
    ASSERT_EQ(f.sink.events.size(), 1u);
    EXPECT_EQ(f.sink.events[0].user, "before");
    EXPECT_EQ(f.src->counters().malformed, 1u);
}

TEST(SyslogSource, FailedDeliveryIsOfferedAgainInOrder) {
    Fixture f;
    SyslogOptions o;
    o.retry_delay = 20ms;
    f.sink.fail = true;
    f.open({"tcp:127.0.0.1:0"}, {}, o);
    UniqueFd a = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    send_all(a.get(), "<38>x: LOGIN 127.0.0.5 one\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.attempts >= 2; }));  // failed, retried
    send_all(a.get(), "<38>x: LOGIN 127.0.0.5 two\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->pending_events() == 2; }));
    f.sink.fail = false;
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sink.events.size() == 2; }));
    EXPECT_EQ(f.sink.users(), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(f.src->pending_events(), 0u);
}

TEST(SyslogSource, EndpointErrors) {
    FakeSink sink;
    rp::core::ManualClock clock{t0};
    for (const char* bad : {"tls:127.0.0.1:0", "unix:relative", "127.0.0.1", "nohost:1", "udp:[::1:5"}) {
        auto s = SyslogSource::open("s", {bad}, {}, parse_logins, sink, clock);
        EXPECT_FALSE(s) << bad;
    }
    auto none = SyslogSource::open("s", {}, {}, parse_logins, sink, clock);
    EXPECT_FALSE(none);
    auto tls = SyslogSource::open("s", {"tls:127.0.0.1:0"}, {}, parse_logins, sink, clock);
    ASSERT_FALSE(tls);
    EXPECT_NE(tls.error().message.find("tls_cert"), std::string::npos) << tls.error().message;
}

TEST(SyslogSource, FactoryUsesConfig) {
    FakeSink sink;
    rp::core::ManualClock clock{t0};
    rp::config::SourceConfig cfg;
    cfg.type = rp::config::SourceType::syslog;
    cfg.name = "syslog:cfg";
    cfg.listen = {"tcp:127.0.0.1:0", "udp:[::1]:0"};
    auto s = rp::sources::open_syslog_source(cfg, parse_logins, sink, clock);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ((*s)->name(), "syslog:cfg");
}

// Test PEM files (EC P-256, valid for 100 years, made with openssl for these tests only).
const std::vector<std::pair<const char*, const char*>> k_test_pems = {
    {"server.pem", R"PEM(-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUFy5QWB3IZupH915hBTTePi3+t28wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyMjAyNDQ0MloYDzIxMjYxMDI5
MDI0NDQyWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQj2yIl78Nigpx6rofybMQAKnp/8xX/JIAJuMv6QjEJKeR0mZOmFtzb
83byrg9q27ZOoSCwfnA2d2aWgiKzNLC6o2QwYjAdBgNVHQ4EFgQUzkpd2T8tSaj1
teQoQXZO7DE6dJMwHwYDVR0jBBgwFoAUzkpd2T8tSaj1teQoQXZO7DE6dJMwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
ID3/5dU/mKjV5Irke9V99arOdFiJEP2RuWp9EAotdx5fAiEAob6Ur/aWP/2/h1Hd
XHqg+T+cdwc9+Dj6yhwMCX9oRbE=
-----END CERTIFICATE-----
)PEM"},
    {"server.key", R"PEM(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgplaiXASiCjJb1P/w
TsdGkteec2P2M6tGqEbaG+k1We2hRANCAAQj2yIl78Nigpx6rofybMQAKnp/8xX/
JIAJuMv6QjEJKeR0mZOmFtzb83byrg9q27ZOoSCwfnA2d2aWgiKzNLC6
-----END PRIVATE KEY-----
)PEM"},
    {"ca.pem", R"PEM(-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUUG3yd5/DefDq97PJNEW4mw1vOPcwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKcnAtdGVzdC1jYTAgFw0yNjExMjIwMjQ0NDJaGA8yMTI2MTAy
OTAyNDQ0MlowFTETMBEGA1UEAwwKcnAtdGVzdC1jYTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABH4BxRggcHKxuw04jE1OT86fbHnF/Eq/EhMqvcVYUJ2fcUKJXKUm
/7b8eA0kHk7HRQoeRLDhA/AobwyR0M0H0ASjUzBRMB0GA1UdDgQWBBSnX4IAvNqD
nrW2N/jG5DXu5xJNZjAfBgNVHSMEGDAWgBSnX4IAvNqDnrW2N/jG5DXu5xJNZjAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCPBZO9aZXYgSP8FAi7
QepjU1nMr4JcFDnXw+V5UK83NAIhAN2N+aNru7kVUBxd2LZIj8/YyaEa4OcKxtld
T8nEoZad
-----END CERTIFICATE-----
)PEM"},
    {"client.pem", R"PEM(-----BEGIN CERTIFICATE-----
MIIBJTCBywIUImE/xtWBb6O/KZ+pncCHoHHOMbowCgYIKoZIzj0EAwIwFTETMBEG
A1UEAwwKcnAtdGVzdC1jYTAgFw0yNjExMjIwMjQ0NDJaGA8yMTI2MTAyOTAyNDQ0
MlowEzERMA8GA1UEAwwIcG9wLWhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAT/ueNWeRY95pm+pkF6Nm/S990HDvMu9lon2Bhvb5DxRC8N+VCBbnio6AvF++su
NQ3bmEdkmuB+8V8wcHkzgrnMMAoGCCqGSM49BAMCA0kAMEYCIQCEyMRGR9rp1aCW
z17118IKZG54TNS1rXcd0vcLQfx9qQIhAP8x3K4nVFy9p/ZIJBkrQolF87KuiJCr
ZDWx0HRYEvFw
-----END CERTIFICATE-----
)PEM"},
    {"client.key", R"PEM(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/TEtEVwbTIRYAIld
Q57ztMRhDY2D77mJYwiNPps4s56hRANCAAT/ueNWeRY95pm+pkF6Nm/S990HDvMu
9lon2Bhvb5DxRC8N+VCBbnio6AvF++suNQ3bmEdkmuB+8V8wcHkzgrnM
-----END PRIVATE KEY-----
)PEM"},
    {"other.pem", R"PEM(-----BEGIN CERTIFICATE-----
MIIBfDCCASOgAwIBAgIUJaiPXiNKEcWBdKqoareJdZU6DsAwCgYIKoZIzj0EAwIw
EzERMA8GA1UEAwwIaW50cnVkZXIwIBcNMjYxMTIyMDI0NDQzWhgPMjEyNjEwMjkw
MjQ0NDNaMBMxETAPBgNVBAMMCGludHJ1ZGVyMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEaOItj0G/SF0Tu3LsMm6++G6Cyu1SwvEijgptw0d8UPbPL9P3BVG+1hTB
srOjFj6BD/lEym+hFgUAUurbeFZgXqNTMFEwHQYDVR0OBBYEFKxn0l3VUlRjEGHd
B1IUiChMC39PMB8GA1UdIwQYMBaAFKxn0l3VUlRjEGHdB1IUiChMC39PMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgZNI1Mr/ShiB9wh4M/AeTqj6d
qSIS1RHeHT6AeRlJUwACIAcysdSYMy13tayvqCTmHGxWZkuAnGEwuKnZcr/bLuDb
-----END CERTIFICATE-----
)PEM"},
    {"other.key", R"PEM(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgr+ww0aAt5r1Rb8E6
4srmj06DwjtFP8bu/TEus/wk02uhRANCAARo4i2PQb9IXRO7cuwybr74boLK7VLC
8SKOCm3DR3xQ9s8v0/cFUb7WFMGys6MWPoEP+UTKb6EWBQBS6tt4VmBe
-----END PRIVATE KEY-----
)PEM"},
};

// Writes the test PEM files into a fresh directory; removed by the destructor.
struct PemDir {
    std::filesystem::path dir;
    PemDir() {
        dir = std::filesystem::temp_directory_path() / ("rp_syslog_tls_" + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        for (const auto& [name, text] : k_test_pems) {
            FILE* f = std::fopen((dir / name).c_str(), "w");
            std::fputs(text, f);
            std::fclose(f);
        }
    }
    ~PemDir() { std::filesystem::remove_all(dir); }
    std::string operator()(const char* name) const { return (dir / name).string(); }
};

// A blocking GnuTLS client (run on its own thread while the test drives the loop): handshakes
// (presenting `cert`/`key` if given; the server certificate is not checked) and sends `data`.
// Returns whether the handshake and the send succeeded as far as the client could tell.
bool tls_send(int port, const std::string& data, const std::string& cert = "", const std::string& key = "") {
    UniqueFd fd = connect_from(SOCK_STREAM, port);
    gnutls_certificate_credentials_t cred = nullptr;
    gnutls_certificate_allocate_credentials(&cred);
    if (!cert.empty()) gnutls_certificate_set_x509_key_file(cred, cert.c_str(), key.c_str(), GNUTLS_X509_FMT_PEM);
    gnutls_session_t s = nullptr;
    gnutls_init(&s, GNUTLS_CLIENT);
    gnutls_set_default_priority(s);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_int(s, fd.get());
    gnutls_handshake_set_timeout(s, 10'000);
    int r = 0;
    do {
        r = gnutls_handshake(s);
    } while (r < 0 && gnutls_error_is_fatal(r) == 0);
    bool ok = r >= 0;
    std::string_view rest = data;
    while (ok && !rest.empty()) {
        const ssize_t w = gnutls_record_send(s, rest.data(), std::min<std::size_t>(rest.size(), 16'000));
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) continue;
        if (w < 0) ok = false;
        else rest.remove_prefix(static_cast<std::size_t>(w));
    }
    if (ok) gnutls_bye(s, GNUTLS_SHUT_WR);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    return ok;
}

TEST(SyslogSource, TlsListenerWithBothFramings) {
    PemDir pem;
    Fixture f;
    SyslogOptions o;
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("server.key");
    f.open({"tls:127.0.0.1:0"}, {}, o);
    ASSERT_TRUE(f.src->local_endpoints().at(0).starts_with("tls:127.0.0.1:"));
    const int port = port_of(f.src->local_endpoints().at(0));
    const std::string m1 = "<38>x: LOGIN 127.0.0.5 octet";
    bool sent = false;
    std::thread client([&] { sent = tls_send(port, std::to_string(m1.size()) + " " + m1 + "<38>x: LOGIN 127.0.0.5 lf\n"); });
    const bool got = run_until(f.loop, [&] { return f.sink.events.size() == 2 && f.src->connections() == 0; });
    client.join();
    ASSERT_TRUE(got);
    EXPECT_TRUE(sent);
    EXPECT_EQ(f.sink.users(), (std::vector<std::string>{"octet", "lf"}));
    EXPECT_EQ(f.src->counters().untrusted, 0u);
}

TEST(SyslogSource, TlsBulkIsReadCompletely) {
    PemDir pem;
    Fixture f;
    SyslogOptions o;
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("server.key");
    o.max_bytes_per_wakeup = 8 * 1024;  // forces data to wait inside GnuTLS between wake-ups
    f.open({"tls:127.0.0.1:0"}, {}, o);
    const int port = port_of(f.src->local_endpoints().at(0));
    std::string data;
    const std::size_t n = 20'000;
    for (std::size_t i = 0; i < n; ++i) data += "<38>x: LOGIN 127.0.0.5 u" + std::to_string(i) + "\n";
    std::thread client([&] { tls_send(port, data); });
    const bool got = run_until(f.loop, [&] { return f.sink.events.size() == n; });
    client.join();
    ASSERT_TRUE(got) << f.sink.events.size();
    EXPECT_EQ(f.sink.events.back().user, "u" + std::to_string(n - 1));
}

TEST(SyslogSource, TlsCaRequiresAClientCertificateItSigned) {
    PemDir pem;
    Fixture f;
    SyslogOptions o;
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("server.key");
    o.tls_ca = pem("ca.pem");
    f.open({"tls:127.0.0.1:0"}, {}, o);
    const int port = port_of(f.src->local_endpoints().at(0));
    {
        std::thread client([&] { tls_send(port, "<38>x: LOGIN 127.0.0.5 nocert\n"); });
        const bool got = run_until(f.loop, [&] { return f.src->counters().untrusted == 1 && f.src->connections() == 0; });
        client.join();
        ASSERT_TRUE(got);
    }
    {
        std::thread client([&] { tls_send(port, "<38>x: LOGIN 127.0.0.5 other\n", pem("other.pem"), pem("other.key")); });
        const bool got = run_until(f.loop, [&] { return f.src->counters().untrusted == 2 && f.src->connections() == 0; });
        client.join();
        ASSERT_TRUE(got);
    }
    {
        std::thread client([&] { tls_send(port, "<38>x: LOGIN 127.0.0.5 signed\n", pem("client.pem"), pem("client.key")); });
        const bool got = run_until(f.loop, [&] { return f.sink.events.size() == 1 && f.src->connections() == 0; });
        client.join();
        ASSERT_TRUE(got);
    }
    EXPECT_EQ(f.sink.users(), (std::vector<std::string>{"signed"}));
    EXPECT_EQ(f.src->counters().untrusted, 2u);
}

TEST(SyslogSource, PlainTextOnATlsListenerIsRefused) {
    PemDir pem;
    Fixture f;
    SyslogOptions o;
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("server.key");
    f.open({"tls:127.0.0.1:0"}, {}, o);
    UniqueFd a = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    send_all(a.get(), "<38>x: LOGIN 127.0.0.5 plain\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->counters().untrusted == 1 && f.src->connections() == 0; }));
    EXPECT_TRUE(f.sink.events.empty());
}

TEST(SyslogSource, TlsHandshakeTimeout) {
    PemDir pem;
    Fixture f;
    SyslogOptions o;
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("server.key");
    o.handshake_timeout = 50ms;
    f.open({"tls:127.0.0.1:0"}, {}, o);
    UniqueFd a = connect_from(SOCK_STREAM, port_of(f.src->local_endpoints().at(0)));
    ASSERT_TRUE(run_until(f.loop, [&] { return f.src->connections() == 1; }));
    ASSERT_TRUE(run_until(f.loop, [&] { return peer_closed(a.get()) && f.src->connections() == 0; }));
}

TEST(SyslogSource, TlsErrors) {
    PemDir pem;
    FakeSink sink;
    rp::core::ManualClock clock{t0};
    SyslogOptions o;
    EXPECT_FALSE(SyslogSource::open("s", {"tls:127.0.0.1:0"}, {}, parse_logins, sink, clock, o));  // no cert
    o.tls_cert = pem("server.pem");
    o.tls_key = pem("client.key");  // not the certificate's key
    EXPECT_FALSE(SyslogSource::open("s", {"tls:127.0.0.1:0"}, {}, parse_logins, sink, clock, o));
    o.tls_key = pem("server.key");
    o.tls_ca = pem("missing.pem");
    EXPECT_FALSE(SyslogSource::open("s", {"tls:127.0.0.1:0"}, {}, parse_logins, sink, clock, o));
    o.tls_ca = pem("ca.pem");
    EXPECT_FALSE(SyslogSource::open("s", {"tls:udp:127.0.0.1:0"}, {}, parse_logins, sink, clock, o));
    EXPECT_TRUE(SyslogSource::open("s", {"tls:127.0.0.1:0"}, {}, parse_logins, sink, clock, o));
}

// Sends `total` Dovecot-looking syslog lines (every `every`-th a login with a unique user) over one
// TCP connection, alternating octet counting and LF framing, through the real Matcher; every login
// must arrive exactly once. Returns lines/s.
double flood(std::size_t total, std::size_t every) {
    auto matcher = rp::matching::Matcher::build({"dovecot"}, {});
    EXPECT_TRUE(matcher) << matcher.error().message;
    if (!matcher) return 0;
    auto m = *matcher;
    auto state = std::make_shared<rp::matching::MatchState>(*m);
    rp::sources::LineParser parser = [m, state](std::string_view lines, rp::core::Time now,
                                                std::vector<LoginEvent>& out) {
        m->scan(lines, now, *state, [&](const rp::matching::LoginMatch& hit) {
            out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), "", hit.time});
        });
    };
    FakeSink sink;
    rp::core::SystemClock clock;
    rp::util::EventLoop loop;
    auto s = SyslogSource::open("syslog:flood", {"tcp:127.0.0.1:0"}, {}, parser, sink, clock);
    EXPECT_TRUE(s);
    if (!s) return 0;
    EXPECT_TRUE((*s)->start(loop));
    const int port = port_of((*s)->local_endpoints().at(0));
    const std::size_t logins = (total + every - 1) / every;
    std::thread sender([&] {
        UniqueFd fd = connect_from(SOCK_STREAM, port);
        std::string batch;
        for (std::size_t i = 0; i < total; ++i) {
            std::string msg;
            if (i % every == 0)
                msg = "<22>Nov 22 00:31:13 mx1 dovecot: pop3-login: Login: user=<u" + std::to_string(i) +
                      ">, method=PLAIN, rip=127.0." + std::to_string(i % 250) + "." + std::to_string(1 + i % 200) +
                      ", lip=127.0.0.1, mpid=" + std::to_string(i) + ", session=<abc>";
            else
                msg = "<22>Nov 22 00:31:13 mx1 postfix/smtpd[123]: connect from unknown[192.0.2.1] n=" + std::to_string(i);
            if (i % 2 == 0) batch += std::to_string(msg.size()) + " " + msg;
            else batch += msg + "\n";
            if (batch.size() > 256 * 1024) {
                send_all(fd.get(), batch);
                batch.clear();
            }
        }
        send_all(fd.get(), batch);
    });
    const auto start = std::chrono::steady_clock::now();
    const bool done = run_until(loop, [&] { return (*s)->counters().lines == total; }, 300s);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sender.join();
    EXPECT_TRUE(done) << (*s)->counters().lines << " of " << total << " lines";
    EXPECT_EQ(sink.events.size(), logins);
    std::set<std::string> users;
    for (const auto& e : sink.events) {
        users.insert(e.user);
        EXPECT_EQ(e.source, "syslog:flood");
    }
    EXPECT_EQ(users.size(), logins) << "a login was granted twice or not at all";
    EXPECT_EQ((*s)->counters().dropped, 0u);
    (*s)->stop(loop);
    return static_cast<double>(total) / secs;
}

TEST(SyslogSource, FloodEveryLoginExactlyOnce) {
    // 1M lines by default; RP_SYSLOG_FLOOD_LINES overrides (e.g. smaller under sanitizers).
    std::size_t total = 1'000'000;
    if (const char* env = std::getenv("RP_SYSLOG_FLOOD_LINES")) total = std::strtoull(env, nullptr, 10);
    const double rate = flood(total, 10);
    std::printf("syslog flood: %zu lines, %.0f lines/s\n", total, rate);
}

}  // namespace
