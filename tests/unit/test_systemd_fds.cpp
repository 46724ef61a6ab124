// util::parse_listen_fds and ListenFds::find: the sd_listen_fds(3) protocol as rows (ours, another
// process's, malformed values, names), and finding a passed descriptor by name or by a predicate.
#include "util/systemd_fds.hpp"

#include <fcntl.h>
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

}  // namespace
