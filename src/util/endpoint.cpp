#include "util/endpoint.hpp"

#include "util/fs_safe.hpp"
#include "util/log.hpp"
#include "util/systemd_fds.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rp::util {
namespace {

using core::make_error;

std::string errno_text() { return std::strerror(errno); }

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

core::Result<SockAddr> to_sockaddr(const Endpoint& ep) {
    SockAddr out;
    if (ep.kind == Endpoint::Kind::unix_stream) {
        auto* sun = reinterpret_cast<sockaddr_un*>(&out.ss);
        if (ep.path.size() >= sizeof sun->sun_path) return make_error("unix socket path too long: " + ep.path);
        sun->sun_family = AF_UNIX;
        std::memcpy(sun->sun_path, ep.path.c_str(), ep.path.size() + 1);
        out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size() + 1);
        return out;
    }
    const std::string host = ep.host == "*" || ep.host.empty() ? "0.0.0.0" : ep.host;
    if (host.find(':') != std::string::npos) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(static_cast<std::uint16_t>(ep.port));
        if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) != 1) return make_error("bad IPv6 address: " + host);
        out.len = sizeof *s6;
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&out.ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(static_cast<std::uint16_t>(ep.port));
        if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1)
            return make_error("bad IPv4 address '" + host + "' (host names are not resolved)");
        out.len = sizeof *s4;
    }
    return out;
}

}  // namespace

std::string Endpoint::to_string() const {
    switch (kind) {
        case Kind::unix_stream: return "unix:" + path;
        case Kind::udp: return "udp:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
        case Kind::tcp: break;
    }
    return "tcp:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

core::Result<Endpoint> parse_endpoint(std::string_view text) {
    const std::string original(text);
    Endpoint ep;
    if (text.starts_with("unix:")) {
        ep.kind = Endpoint::Kind::unix_stream;
        ep.path = std::string(text.substr(5));
        if (ep.path.empty() || ep.path.front() != '/') return make_error("unix endpoint needs an absolute path: '" + original + "'");
        return ep;
    }
    if (text.starts_with("tcp:")) text.remove_prefix(4);
    else if (text.starts_with("inet:")) text.remove_prefix(5);
    else if (text.starts_with("udp:")) { ep.kind = Endpoint::Kind::udp; text.remove_prefix(4); }
    std::string_view host, port;
    if (text.starts_with("[")) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return make_error("bad endpoint '" + original + "' (use [v6addr]:PORT)");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return make_error("bad endpoint '" + original + "' (use HOST:PORT or unix:/path)");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return make_error("bad endpoint '" + original + "' (write IPv6 as [addr]:PORT)");
    }
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535 || port.empty())
        return make_error("bad port in endpoint '" + original + "'");
    ep.host = std::string(host);
    ep.port = p;
    if (ep.host.empty()) return make_error("missing host in endpoint '" + original + "' (use 127.0.0.1, [::1] or *)");
    if (auto sa = to_sockaddr(ep); !sa) return make_error(sa.error().message + " in endpoint '" + original + "'");
    return ep;
}

namespace {

// listen_endpoint's work; `file` receives the unix socket's identity.
core::Result<UniqueFd> listen_impl(const Endpoint& ep, const ListenOptions& opts, UnixSocketFile* file) {
    auto sa = to_sockaddr(ep);
    if (!sa) return sa.error();
    const int sock_type = ep.kind == Endpoint::Kind::udp ? SOCK_DGRAM : SOCK_STREAM;
    // Socket activation: a socket the service manager passed, bound to this very address, is
    // taken instead of binding (its unix socket file is the manager's: `file` stays empty, so
    // closing never removes it).
    if (auto passed = ListenFds::process().take_socket(&sa->ss, sa->len, sock_type)) {
        log(Level::info, "{}: using the socket passed by the service manager", ep.to_string());
        return std::move(*passed);
    }
    UniqueFd fd(socket(sa->ss.ss_family, sock_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return make_error("socket: " + errno_text());
    if (ep.kind == Endpoint::Kind::unix_stream) {
        // Created with its final mode through the directory's descriptor (fs_safe.hpp): no chmod
        // by path afterwards that a symlink swapped in could redirect.
        auto bound = bind_unix(fd.get(), ep.path, opts.unix_mode, SOCK_STREAM);
        if (!bound) return bound.error();
        if (file != nullptr) *file = std::move(*bound);
    } else {
        int one = 1;
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (sa->ss.ss_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa->ss), sa->len) != 0)
            return make_error("bind " + ep.to_string() + ": " + errno_text());
    }
    if (ep.kind != Endpoint::Kind::udp && listen(fd.get(), opts.backlog) != 0)
        return make_error("listen " + ep.to_string() + ": " + errno_text());
    return fd;
}

}  // namespace

core::Result<UniqueFd> listen_endpoint(const Endpoint& ep, const ListenOptions& opts) {
    return listen_impl(ep, opts, nullptr);
}

core::Result<UniqueFd> connect_endpoint(const Endpoint& ep, int timeout_ms) {
    auto sa = to_sockaddr(ep);
    if (!sa) return sa.error();
    const int type = (ep.kind == Endpoint::Kind::udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    UniqueFd fd(socket(sa->ss.ss_family, type, 0));
    if (!fd) return make_error("socket: " + errno_text());
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa->ss), sa->len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return make_error("connect " + ep.to_string() + ": " + errno_text());
        pollfd p{fd.get(), POLLOUT, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return make_error("connect " + ep.to_string() + ": timed out");
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return make_error("connect " + ep.to_string() + ": " + std::strerror(err));
    }
    fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

std::string peer_name(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_UNIX) return "unix";
    return buf;
}

core::Result<BoundListener> bind_listener(const Endpoint& ep, const ListenOptions& opts) {
    UnixSocketFile file;
    auto fd = listen_impl(ep, opts, &file);
    if (!fd) return fd.error();
    BoundListener l;
    l.endpoint = ep;
    if (ep.kind == Endpoint::Kind::unix_stream) {
        l.dev = file.dev;
        l.ino = file.ino;
    } else {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            if (ss.ss_family == AF_INET) l.endpoint.port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
            else if (ss.ss_family == AF_INET6) l.endpoint.port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
        }
    }
    l.fd = std::move(*fd);
    return l;
}

void BoundListener::remove_socket_file() const {
    if (endpoint.kind != Endpoint::Kind::unix_stream || ino == 0) return;
    util::remove_socket_file(endpoint.path, dev, ino);
}

}  // namespace rp::util
