// sd_notify and the watchdog against a fake NOTIFY_SOCKET: a unix datagram socket of the test,
// read (with a generous deadline), never slept on. watchdog_interval's environment rules as rows.
#include "daemon/sd_notify.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "util/unique_fd.hpp"

namespace {

using namespace std::chrono_literals;
using Opt = std::optional<std::string_view>;

// A bound unix datagram socket standing in for systemd; NOTIFY_SOCKET points at it while alive.
class FakeManager {
public:
    FakeManager() {
        dir_ = std::filesystem::temp_directory_path() / ("rp_notify_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "notify").string();
        std::filesystem::remove(path_);
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strncpy(sun.sun_path, path_.c_str(), sizeof sun.sun_path - 1);
        EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
        timeval tv{30, 0};  // a deadline for a lost datagram, not a wait
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    }
    ~FakeManager() {
        ::unsetenv("NOTIFY_SOCKET");
        std::filesystem::remove_all(dir_);
    }
    std::string receive() {
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    int fd() const { return fd_.get(); }

private:
    std::filesystem::path dir_;
    std::string path_;
    rp::util::UniqueFd fd_;
};

TEST(SdNotifyTest, SendsOneDatagramPerState) {
    FakeManager m;
    rp::daemon::sd_notify("READY=1");
    rp::daemon::sd_notify(std::string("STATUS=serving: 3 permits, 1 source(s), 1 frontend(s)"));
    EXPECT_EQ(m.receive(), "READY=1");
    EXPECT_EQ(m.receive(), "STATUS=serving: 3 permits, 1 source(s), 1 frontend(s)");
}

TEST(SdNotifyTest, WatchdogIntervalFollowsTheEnvironmentRules) {
    struct Row {
        const char* what;
        Opt usec, pid;
        std::optional<long long> want_us;
    };
    const Row rows[] = {
        {"unset", std::nullopt, std::nullopt, std::nullopt},
        {"ours", "30000000", "77", 30000000},
        {"no pid: ours", "2000000", std::nullopt, 2000000},
        {"another process's", "30000000", "78", std::nullopt},
        {"zero", "0", "77", std::nullopt},
        {"not a number", "30s", "77", std::nullopt},
        {"negative", "-5", "77", std::nullopt},
        {"bad pid", "1000", "x", std::nullopt},
    };
    for (const auto& r : rows) {
        const auto got = rp::daemon::watchdog_interval(r.usec, r.pid, 77);
        ASSERT_EQ(got.has_value(), r.want_us.has_value()) << r.what;
        if (got) {
            EXPECT_EQ(got->count(), *r.want_us) << r.what;
        }
    }
}

TEST(SdNotifyTest, WatchdogPingsFromTheLoopAndStopsWithIt) {
    FakeManager m;
    rp::util::EventLoop loop;
    int pings = 0;
    loop.add(m.fd(), EPOLLIN, [&](std::uint32_t) {
        if (m.receive() == "WATCHDOG=1" && ++pings == 3) loop.stop();
    });
    const auto deadline = loop.call_after(30s, [&] { loop.stop(); });
    {
        rp::daemon::SdWatchdog dog(loop, 20ms);  // pings at once, then every 10 ms of loop time
        loop.run();
    }
    loop.cancel(deadline);
    EXPECT_EQ(pings, 3);
    // Destroyed: no timer left behind that would ping for a dead watchdog.
    loop.remove(m.fd());
}

TEST(SdNotifyTest, WatchdogFromEnvironmentUnsetsTheVariables) {
    ::setenv("WATCHDOG_USEC", "4000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    const auto got = rp::daemon::watchdog_from_environment();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->count(), 4000000);
    EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
    EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
}

}  // namespace
