#include "daemon/control_protocol.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/endpoint.hpp"

namespace rp::daemon {
namespace {

constexpr std::size_t k_max_reply = 64 * 1024 * 1024;  // what is not streamed element by element

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
}

// Connects and sends the request line, all within timeout_ms.
core::Result<util::UniqueFd> connect_and_send(const std::string& socket_path, const nlohmann::json& request,
                                              int timeout_ms, ControlFailure& why) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
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
        if (poll(&p, 1, remaining_ms(deadline)) <= 0) {
            why = ControlFailure::no_answer;
            return core::make_error("daemon did not accept the request in time");
        }
        const auto n = ::send(fd->get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return core::make_error(std::string("send: ") + std::strerror(errno));
        if (n > 0) sent += static_cast<std::size_t>(n);
    }
    return std::move(*fd);
}

// Reads until `consume` says the reply is complete. With `per_read`, the deadline restarts at
// each read (a long reply that keeps coming); otherwise it bounds the whole exchange.
core::Status read_reply(int fd, int timeout_ms, bool per_read, ControlFailure& why,
                        const std::function<core::Status(std::string_view, bool& done)>& consume) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    for (bool done = false; !done;) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, remaining_ms(deadline)) <= 0) {
            why = ControlFailure::no_answer;
            return core::make_error("daemon did not answer in time");
        }
        const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return core::make_error("daemon closed the connection (permission denied?)");
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return core::make_error(std::string("recv: ") + std::strerror(errno));
        }
        if (per_read) deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        if (auto st = consume(std::string_view(buf, static_cast<std::size_t>(n)), done); !st) return st;
    }
    return core::ok();
}

core::Result<nlohmann::json> parse_reply(std::string_view line) {
    auto reply = nlohmann::json::parse(line, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) return core::make_error("daemon sent a malformed reply");
    return reply;
}

}  // namespace

core::Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                          int timeout_ms, ControlFailure* failure) {
    ControlFailure ignored = ControlFailure::none;
    ControlFailure& why = failure ? *failure : ignored;
    why = ControlFailure::other;
    const auto start = Clock::now();
    auto fd = connect_and_send(socket_path, request, timeout_ms, why);
    if (!fd) return fd.error();
    const int left = std::max(1, timeout_ms - static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  Clock::now() - start).count()));
    std::string in;
    auto st = read_reply(fd->get(), left, false, why, [&](std::string_view bytes, bool& done) -> core::Status {
        in.append(bytes);
        done = in.find('\n') != std::string::npos;
        if (!done && in.size() > k_max_reply) return core::make_error("daemon reply too long");
        return core::ok();
    });
    if (!st) return st.error();
    auto reply = parse_reply(std::string_view(in).substr(0, in.find('\n')));
    if (reply) why = ControlFailure::none;
    return reply;
}

core::Result<nlohmann::json> control_stream(const std::string& socket_path, const nlohmann::json& request,
                                            int timeout_ms, const ElementSink& on_element, ControlFailure* failure) {
    ControlFailure ignored = ControlFailure::none;
    ControlFailure& why = failure ? *failure : ignored;
    why = ControlFailure::other;
    auto fd = connect_and_send(socket_path, request, timeout_ms, why);
    if (!fd) return fd.error();
    ReplySplitter splitter;
    auto st = read_reply(fd->get(), timeout_ms, true, why, [&](std::string_view bytes, bool& done) -> core::Status {
        if (!splitter.feed(bytes, on_element)) return core::make_error("daemon sent a malformed reply: " + splitter.error());
        done = splitter.complete();
        return core::ok();
    });
    if (!st) return st.error();
    auto reply = parse_reply(splitter.rest());
    if (reply) why = ControlFailure::none;
    return reply;
}

bool ReplySplitter::fail(std::string why) {
    error_ = std::move(why);
    return false;
}

bool ReplySplitter::feed(std::string_view bytes, const ElementSink& on_element) {
    if (!error_.empty()) return false;
    for (const char ch : bytes) {
        if (complete_) return true;
        std::string& sink = capturing_ ? element_ : rest_;
        if (in_string_) {
            sink += ch;
            if (escape_) escape_ = false;
            else if (ch == '\\') escape_ = true;
            else if (ch == '"') in_string_ = false;
        } else if (ch == '"') {
            sink += ch;
            in_string_ = true;
        } else if (ch == '{' || ch == '[') {
            if (!capturing_ && ch == '{' && stack_.size() == 2 && stack_[1] == '[') {
                capturing_ = true;  // an element of an array member: handed over, not kept
                element_.clear();
            }
            (capturing_ ? element_ : rest_) += ch;
            stack_.push_back(ch);
        } else if (ch == '}' || ch == ']') {
            if (stack_.empty() || stack_.back() != (ch == '}' ? '{' : '[')) return fail("unbalanced brackets");
            stack_.pop_back();
            sink += ch;
            if (capturing_ && stack_.size() == 2) {
                capturing_ = false;
                auto e = nlohmann::json::parse(element_, nullptr, false);
                if (e.is_discarded()) return fail("an element is not JSON");
                on_element(e);
                after_element_ = true;
                continue;
            }
        } else if (ch == '\n' && stack_.empty()) {
            complete_ = true;
        } else if (!(ch == ',' && !capturing_ && after_element_ && stack_.size() == 2)) {
            sink += ch;  // a comma right after a handed-over element is dropped with it
        }
        after_element_ = false;
        if (element_.size() > k_control_max_element) return fail("an element is too long");
        if (rest_.size() > k_max_reply) return fail("reply too long");
    }
    return true;
}

}  // namespace rp::daemon
