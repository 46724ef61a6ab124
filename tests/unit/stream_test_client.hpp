// Shared by the policy, socketmap, readsocket and OpenSMTPD frontend tests: a non-blocking client over
// a real socket, a fake oracle, and a fixture that pumps the EventLoop in the test thread until
// a condition holds (with a deadline; nothing sleeps for a fixed time).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "frontends/permit_oracle.hpp"
#include "util/endpoint.hpp"
#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace rp::frontends::streamtest {

using namespace std::chrono_literals;

class FakeOracle final : public PermitOracle {
public:
    std::set<core::Address> permitted;
    mutable int calls = 0;
    Verdict check(const core::Address& a) const override {
        ++calls;
        Verdict v;
        if (permitted.count(a) != 0) v.kind = Verdict::Kind::permit;
        return v;
    }
};

class StreamClient {
public:
    explicit StreamClient(const std::string& endpoint) {
        auto ep = util::parse_endpoint(endpoint);
        EXPECT_TRUE(ep.has_value()) << endpoint;
        if (!ep) return;
        auto fd = util::connect_endpoint(*ep, 2000);
        EXPECT_TRUE(fd.has_value()) << (fd ? "" : fd.error().message);
        if (!fd) return;
        fd_ = std::move(*fd);
        ::fcntl(fd_.get(), F_SETFL, ::fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
    }
    void send(std::string_view data = {}) {
        pending_.append(data);
        while (!pending_.empty()) {
            const ssize_t n = ::send(fd_.get(), pending_.data(), pending_.size(), MSG_NOSIGNAL);
            if (n <= 0) break;
            pending_.erase(0, static_cast<std::size_t>(n));
        }
    }
    void shutdown_write() { ::shutdown(fd_.get(), SHUT_WR); }
    bool all_sent() const { return pending_.empty(); }
    void close() { fd_.reset(); }
    void poll() {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
            if (n > 0) {
                received.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) eof = true;
            return;
        }
    }
    bool connected() const { return fd_.valid(); }

    std::string received;
    bool eof = false;

private:
    util::UniqueFd fd_;
    std::string pending_;
};

class StreamFrontendTest : public ::testing::Test {
protected:
    using Steady = std::chrono::steady_clock;

    StreamFrontendTest() {
        oracle_.permitted.insert(*core::Address::parse("192.0.2.1"));
        oracle_.permitted.insert(*core::Address::parse("2001:db8::1"));
        oracle_.permitted.insert(*core::Address::parse("::1"));
    }
    bool pump_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5000ms) {
        const auto deadline = Steady::now() + timeout;
        while (Steady::now() < deadline) {
            if (cond()) return true;
            loop_.run_once(5ms);
        }
        return cond();
    }
    // Waits until `expected.size()` bytes (or EOF) arrived; true when exactly `expected` did.
    bool receive(StreamClient& c, const std::string& expected) {
        return pump_until([&] {
            c.send();
            c.poll();
            return c.received.size() >= expected.size() || c.eof;
        }) && c.received == expected;
    }
    bool wait_eof(StreamClient& c) {
        return pump_until([&] {
            c.send();
            c.poll();
            return c.eof;
        });
    }

    util::EventLoop loop_;
    FakeOracle oracle_;
};

}  // namespace rp::frontends::streamtest
