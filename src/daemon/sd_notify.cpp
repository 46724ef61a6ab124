#include "daemon/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "util/unique_fd.hpp"

namespace rp::daemon {

void sd_notify(const char* state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len >= sizeof sun.sun_path) return;
    std::memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';  // abstract namespace
    util::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
}

}  // namespace rp::daemon

namespace rp::daemon {
namespace {

std::optional<long long> parse_positive(std::string_view s) {
    long long v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
    return v;
}

std::optional<std::string_view> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string_view(v);
}

}  // namespace

std::optional<std::chrono::microseconds> watchdog_interval(std::optional<std::string_view> usec,
                                                            std::optional<std::string_view> pid, pid_t self) {
    if (!usec) return std::nullopt;
    if (pid) {
        const auto p = parse_positive(*pid);
        if (!p || *p != self) return std::nullopt;
    }
    const auto us = parse_positive(*usec);
    if (!us) return std::nullopt;
    return std::chrono::microseconds(*us);
}

std::optional<std::chrono::microseconds> watchdog_from_environment() {
    auto interval = watchdog_interval(env("WATCHDOG_USEC"), env("WATCHDOG_PID"), ::getpid());
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    return interval;
}

SdWatchdog::SdWatchdog(util::EventLoop& loop, std::chrono::microseconds interval)
    : loop_(loop),
      period_(std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(interval / 2))) {
    ping();
}

SdWatchdog::~SdWatchdog() {
    if (timer_) loop_.cancel(timer_);
}

void SdWatchdog::ping() {
    sd_notify("WATCHDOG=1");
    timer_ = loop_.call_after(period_, [this] { ping(); });
}

}  // namespace rp::daemon
