// util::parse_listen_fds and ListenFds::find: the sd_listen_fds(3) protocol as rows (ours, another
// process's, malformed values, names), and finding a passed descriptor by name or by a predicate.
#include "util/systemd_fds.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

namespace {

using rp::util::ListenFd;
using rp::util::ListenFds;
using rp::util::parse_listen_fds;
using Opt = std::optional<std::string_view>;

struct Row {
    const char* what;
    Opt pid, fds, names;
    bool ok;
    std::vector<ListenFd> want;
};

TEST(SystemdFdsTest, ParsesTheEnvironmentProtocol) {
    const pid_t self = 4242;
    const std::vector<Row> rows = {
        {"nothing passed", std::nullopt, std::nullopt, std::nullopt, true, {}},
        {"count without pid", std::nullopt, "1", std::nullopt, true, {}},
        {"another process's", "4243", "1", std::nullopt, true, {}},
        {"one, unnamed", "4242", "1", std::nullopt, true, {{3, "unknown"}}},
        {"two, named", "4242", "2", "mailfifo:/run/relaypermit/mail.fifo", true,
         {{3, "mailfifo"}, {4, "/run/relaypermit/mail.fifo"}}},
        {"zero", "4242", "0", std::nullopt, true, {}},
        {"an empty name", "4242", "2", ":x", true, {{3, ""}, {4, "x"}}},
        {"pid not a number", "42a", "1", std::nullopt, false, {}},
        {"negative pid", "-1", "1", std::nullopt, false, {}},
        {"count not a number", "4242", "one", std::nullopt, false, {}},
        {"count too large", "4242", "100000", std::nullopt, false, {}},
        {"empty count", "4242", "", std::nullopt, false, {}},
        {"names do not match the count", "4242", "2", "a", false, {}},
        {"too many names", "4242", "1", "a:b", false, {}},
    };
    for (const auto& r : rows) {
        auto got = parse_listen_fds(r.pid, r.fds, r.names, self);
        ASSERT_EQ(got.has_value(), r.ok) << r.what;
        if (r.ok) {
            EXPECT_EQ(*got, r.want) << r.what;
        }
    }
}

// The two ends of one pipe share an inode; their access modes tell them apart.
int access_mode(int fd) { return ::fcntl(fd, F_GETFL) & O_ACCMODE; }

TEST(SystemdFdsTest, FindByNameThenByPredicateAndHandsOutADup) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const ListenFds passed({{p[0], "first"}, {p[1], "second"}});
    auto by_name = passed.find({"nomatch", "second"});
    ASSERT_TRUE(by_name);
    EXPECT_NE(by_name->get(), p[1]) << "a dup, the original stays with the list";
    EXPECT_EQ(access_mode(by_name->get()), O_WRONLY);
    EXPECT_NE(::fcntl(by_name->get(), F_GETFD) & FD_CLOEXEC, 0);

    EXPECT_FALSE(passed.find({"nomatch"}));
    auto by_pred = passed.find({"nomatch"}, [&](int fd) { return fd == p[0]; });
    ASSERT_TRUE(by_pred);
    EXPECT_EQ(access_mode(by_pred->get()), O_RDONLY);
    auto both = passed.find({"second"}, [&](int fd) { return fd == p[0]; });
    ASSERT_TRUE(both);
    EXPECT_EQ(access_mode(both->get()), O_WRONLY) << "a name match wins over the predicate";
    ::close(p[0]);
    ::close(p[1]);
}

TEST(SystemdFdsTest, ProcessWithoutVariablesHasNone) {
    // The test binary is not socket-activated (and LISTEN_PID would not be ours).
    EXPECT_TRUE(ListenFds::process().all().empty());
}

// A listening TCP socket on 127.0.0.1 with a port the kernel chose, and that address.
struct Listener {
    int fd = -1;
    sockaddr_in addr{};
};
Listener tcp_listener() {
    Listener l;
    l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    l.addr.sin_family = AF_INET;
    l.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(l.fd, reinterpret_cast<sockaddr*>(&l.addr), sizeof l.addr), 0);
    EXPECT_EQ(::listen(l.fd, 8), 0);
    socklen_t len = sizeof l.addr;
    ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&l.addr), &len);
    return l;
}

TEST(SystemdFdsTest, TakeSocketMatchesTheBoundAddressAndTypeOnly) {
    const auto a = tcp_listener();
    const auto b = tcp_listener();
    const ListenFds passed({{a.fd, "policy"}, {b.fd, "other"}});
    auto want = b.addr;
    auto got = passed.take_socket(&want, sizeof want, SOCK_STREAM);
    ASSERT_TRUE(got);
    EXPECT_NE(got->get(), b.fd) << "a dup";
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    ::getsockname(got->get(), reinterpret_cast<sockaddr*>(&bound), &len);
    EXPECT_EQ(bound.sin_port, b.addr.sin_port);
    EXPECT_NE(::fcntl(got->get(), F_GETFL) & O_NONBLOCK, 0);

    EXPECT_FALSE(passed.take_socket(&want, sizeof want, SOCK_DGRAM)) << "a stream socket is no datagram endpoint";
    auto other_port = a.addr;
    other_port.sin_port = htons(static_cast<std::uint16_t>(ntohs(a.addr.sin_port) ^ 1));
    EXPECT_FALSE(passed.take_socket(&other_port, sizeof other_port, SOCK_STREAM));
    auto any_port = a.addr;
    any_port.sin_port = 0;
    EXPECT_FALSE(passed.take_socket(&any_port, sizeof any_port, SOCK_STREAM)) << "port 0 asks for a new socket";

    // `a` was never taken: close_unclaimed closes it (and only it), and it is gone afterwards.
    EXPECT_EQ(passed.close_unclaimed(), 1U);
    EXPECT_EQ(::fcntl(a.fd, F_GETFD), -1) << "closed";
    EXPECT_NE(::fcntl(b.fd, F_GETFD), -1) << "taken: stays open, as a socket unit keeps it";
    auto want_a = a.addr;
    EXPECT_FALSE(passed.take_socket(&want_a, sizeof want_a, SOCK_STREAM));
    EXPECT_EQ(passed.close_unclaimed(), 0U);
    ::close(b.fd);
}

TEST(SystemdFdsTest, FindClaimsWhatItHandsOut) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const ListenFds passed({{p[0], "mailfifo"}, {p[1], "stray"}});
    ASSERT_TRUE(passed.find({"mailfifo"}));
    EXPECT_EQ(passed.close_unclaimed(), 1U);
    EXPECT_EQ(::fcntl(p[1], F_GETFD), -1);
    EXPECT_FALSE(passed.find({"stray"})) << "a closed descriptor is never handed out";
    ::close(p[0]);
}

}  // namespace
