#include "util/systemd_fds.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "util/log.hpp"

namespace rp::util {
namespace {

constexpr long k_max_fds = 4096;

std::optional<long> parse_number(std::string_view s) {
    long v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}

std::vector<std::string> split_names(std::string_view s) {
    std::vector<std::string> out;
    for (std::size_t pos = 0;;) {
        const auto colon = s.find(':', pos);
        out.emplace_back(s.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos));
        if (colon == std::string_view::npos) return out;
        pos = colon + 1;
    }
}

// Is `fd` a socket of `type`, bound to exactly `want` (and listening, for a stream socket)?
bool socket_matches(int fd, const sockaddr_storage& want, unsigned want_len, int type) {
    int t = 0, listening = 0;
    socklen_t len = sizeof t;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len) != 0 || t != type) return false;
    len = sizeof listening;
    if (type == SOCK_STREAM && (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening))
        return false;
    sockaddr_storage have{};
    socklen_t have_len = sizeof have;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&have), &have_len) != 0 || have.ss_family != want.ss_family) return false;
    switch (want.ss_family) {
        case AF_INET: {
            const auto& a = reinterpret_cast<const sockaddr_in&>(have);
            const auto& b = reinterpret_cast<const sockaddr_in&>(want);
            return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
        }
        case AF_INET6: {
            const auto& a = reinterpret_cast<const sockaddr_in6&>(have);
            const auto& b = reinterpret_cast<const sockaddr_in6&>(want);
            return a.sin6_port == b.sin6_port && std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0;
        }
        case AF_UNIX: {  // the same path (sun_path up to its NUL)
            const auto& a = reinterpret_cast<const sockaddr_un&>(have);
            const auto& b = reinterpret_cast<const sockaddr_un&>(want);
            (void)want_len;
            return ::strncmp(a.sun_path, b.sun_path, sizeof a.sun_path) == 0 && a.sun_path[0] != '\0';
        }
        default: return false;
    }
}

std::optional<std::string_view> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string_view(v);
}

}  // namespace

core::Result<std::vector<ListenFd>> parse_listen_fds(std::optional<std::string_view> listen_pid,
                                                     std::optional<std::string_view> listen_fds,
                                                     std::optional<std::string_view> listen_fdnames, pid_t self) {
    std::vector<ListenFd> out;
    if (!listen_pid || !listen_fds) return out;
    const auto pid = parse_number(*listen_pid);
    if (!pid) return core::make_error("LISTEN_PID is not a number: \"" + std::string(*listen_pid) + "\"");
    if (*pid != self) return out;  // meant for another process (we inherited the environment)
    const auto n = parse_number(*listen_fds);
    if (!n || *n > k_max_fds) return core::make_error("LISTEN_FDS is not a count: \"" + std::string(*listen_fds) + "\"");
    std::vector<std::string> names;
    if (listen_fdnames) {
        names = split_names(*listen_fdnames);
        if (static_cast<long>(names.size()) != *n)
            return core::make_error("LISTEN_FDNAMES names " + std::to_string(names.size()) + " descriptors, LISTEN_FDS says " +
                                    std::to_string(*n));
    }
    for (long i = 0; i < *n; ++i)
        out.push_back({k_listen_fds_start + static_cast<int>(i), names.empty() ? "unknown" : names[static_cast<std::size_t>(i)]});
    return out;
}

const ListenFds& ListenFds::process() {
    static const ListenFds fds = [] {
        auto parsed = parse_listen_fds(env("LISTEN_PID"), env("LISTEN_FDS"), env("LISTEN_FDNAMES"), ::getpid());
        ::unsetenv("LISTEN_PID");
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_FDNAMES");
        if (!parsed) {
            log(Level::warning, "ignoring descriptors passed by the service manager: {}", parsed.error().message);
            return ListenFds({});
        }
        for (const auto& f : *parsed) ::fcntl(f.fd, F_SETFD, FD_CLOEXEC);
        return ListenFds(std::move(*parsed));
    }();
    return fds;
}

std::optional<UniqueFd> ListenFds::find(const std::vector<std::string>& names, const std::function<bool(int)>& fits) const {
    auto open = [this](std::size_t i) { return !closed_[i]; };
    std::size_t i = 0;
    for (; i < fds_.size(); ++i)
        if (open(i) && std::find(names.begin(), names.end(), fds_[i].name) != names.end()) break;
    if (i == fds_.size() && fits)
        for (i = 0; i < fds_.size(); ++i)
            if (open(i) && fits(fds_[i].fd)) break;
    if (i == fds_.size()) return std::nullopt;
    UniqueFd dup(::fcntl(fds_[i].fd, F_DUPFD_CLOEXEC, 0));
    if (!dup) return std::nullopt;
    claimed_[i] = true;
    return dup;
}

std::optional<UniqueFd> ListenFds::take_socket(const void* addr, unsigned addr_len, int type) const {
    if (fds_.empty() || addr_len > sizeof(sockaddr_storage)) return std::nullopt;
    sockaddr_storage want{};
    std::memcpy(&want, addr, addr_len);
    if (want.ss_family == AF_INET && reinterpret_cast<const sockaddr_in&>(want).sin_port == 0) return std::nullopt;
    if (want.ss_family == AF_INET6 && reinterpret_cast<const sockaddr_in6&>(want).sin6_port == 0) return std::nullopt;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
        if (closed_[i] || !socket_matches(fds_[i].fd, want, addr_len, type)) continue;
        UniqueFd dup(::fcntl(fds_[i].fd, F_DUPFD_CLOEXEC, 0));
        if (!dup) return std::nullopt;
        ::fcntl(dup.get(), F_SETFL, ::fcntl(dup.get(), F_GETFL) | O_NONBLOCK);
        claimed_[i] = true;
        return dup;
    }
    return std::nullopt;
}

std::size_t ListenFds::close_unclaimed() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
        if (claimed_[i] || closed_[i]) continue;
        log(Level::warning, "closing descriptor {} ({}) passed by the service manager: no configured endpoint or FIFO "
            "has its address", fds_[i].fd, escape_value(fds_[i].name));
        ::close(fds_[i].fd);
        closed_[i] = true;
        ++n;
    }
    return n;
}

}  // namespace rp::util
