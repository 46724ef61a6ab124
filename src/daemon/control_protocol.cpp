#include "daemon/control_protocol.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/endpoint.hpp"

namespace rp::daemon {

core::Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                          int timeout_ms, ControlFailure* failure) {
    ControlFailure ignored = ControlFailure::none;
    ControlFailure& why = failure ? *failure : ignored;
    why = ControlFailure::other;
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto remaining = [&] {
        return static_cast<int>(std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    };
    util::Endpoint ep;
    ep.kind = util::Endpoint::Kind::unix_stream;
    ep.path = socket_path;
    auto fd = util::connect_endpoint(ep, timeout_ms);
    if (!fd) {
        const int e = errno;
        if (e == ENOENT || e == ECONNREFUSED) why = ControlFailure::not_running;
        if (e == EACCES || e == EPERM) why = ControlFailure::denied;
        if (e == ETIMEDOUT || e == EAGAIN) why = ControlFailure::no_answer;
        return core::make_error("cannot reach the daemon at " + socket_path + ": " +
                                (e == EACCES ? std::string("permission denied") : fd.error().message));
    }
    const std::string out = request.dump() + "\n";
    std::size_t sent = 0;
    while (sent < out.size()) {
        pollfd p{fd->get(), POLLOUT, 0};
        if (poll(&p, 1, remaining()) <= 0) {
            why = ControlFailure::no_answer;
            return core::make_error("daemon did not accept the request in time");
        }
        const auto n = ::send(fd->get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return core::make_error(std::string("send: ") + std::strerror(errno));
        if (n > 0) sent += static_cast<std::size_t>(n);
    }
    std::string in;
    char buf[16384];
    while (in.find('\n') == std::string::npos) {
        pollfd p{fd->get(), POLLIN, 0};
        if (poll(&p, 1, remaining()) <= 0) {
            why = ControlFailure::no_answer;
            return core::make_error("daemon did not answer in time");
        }
        const auto n = ::recv(fd->get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return core::make_error("daemon closed the connection (permission denied?)");
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return core::make_error(std::string("recv: ") + std::strerror(errno));
        }
        in.append(buf, static_cast<std::size_t>(n));
        if (in.size() > 64 * 1024 * 1024) return core::make_error("daemon reply too long");
    }
    auto reply = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) return core::make_error("daemon sent a malformed reply");
    why = ControlFailure::none;
    return reply;
}

}  // namespace rp::daemon
