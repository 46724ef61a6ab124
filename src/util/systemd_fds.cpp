#include "util/systemd_fds.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

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
    auto it = std::find_if(fds_.begin(), fds_.end(), [&](const ListenFd& f) {
        return std::find(names.begin(), names.end(), f.name) != names.end();
    });
    if (it == fds_.end() && fits) it = std::find_if(fds_.begin(), fds_.end(), [&](const ListenFd& f) { return fits(f.fd); });
    if (it == fds_.end()) return std::nullopt;
    UniqueFd dup(::fcntl(it->fd, F_DUPFD_CLOEXEC, 0));
    if (!dup) return std::nullopt;
    return dup;
}

}  // namespace rp::util
