// Shared by the request/reply benchmarks of the MTA frontends (policy_bench, socketmap_bench):
// everything but the wire protocol. One program is
//   (a) a reference responder: one thread, raw epoll, reads, counts the complete requests in
//       what it read and writes the protocol's fixed reply for each, one write per read;
//   (b) the frontend under test on its own util::EventLoop thread with a fake oracle that permits
//       4 of the 16 client addresses (or an external endpoint given with --connect);
//   (c) a load generator: one epoll thread (so that with 2 cores server and client each get one)
//       keeps N persistent connections, each sending one request and waiting for the reply before
//       the next, for a fixed time per case after a 300 ms warm-up; it reports req/s, p50 and p99
//       latency and the share of OK replies;
// and run_bench() prints both servers' figures, the ratio to the reference and the medians over
// rounds as Markdown tables.
//
// A protocol is a struct with:
//   static std::string request(int i);              // request i of 16 (client_address(i)'s)
//   static constexpr std::string_view reference_reply;  // the reference's answer to any request
//   struct RequestCounter {                         // the reference's per-connection parser
//       std::size_t count(const char* data, std::size_t n);  // requests completed in these bytes
//   };
//   struct ReplyReader {                            // the load generator's per-connection parser
//       bool ok;                                    // the last complete reply said OK
//       bool consume(const char* data, std::size_t n);  // a reply completed in these bytes
//   };
// One request is outstanding per connection, so consume() sees at most one reply.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "frontends/permit_oracle.hpp"
#include "util/endpoint.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::bench {

using Steady = std::chrono::steady_clock;
using util::UniqueFd;

// ---------------------------------------------------------------------------------------------
// (a) The reference responder: the least a server of this protocol can do.

template <class Protocol>
class ReferenceServer {
public:
    ReferenceServer() {
        listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int one = 1;
        ::setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            ::listen(listen_.get(), 1024) != 0) {
            std::perror("reference: bind/listen");
            std::exit(2);
        }
        socklen_t len = sizeof sa;
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
        port_ = ntohs(sa.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~ReferenceServer() {
        stop_ = true;
        thread_.join();
    }
    int port() const { return port_; }

private:
    struct Conn {
        int fd;
        typename Protocol::RequestCounter requests;
    };
    void run() {
        UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listen_.get(), &ev);
        std::vector<char> buf(64 * 1024);
        std::string out;
        epoll_event events[256];
        while (!stop_) {
            const int n = ::epoll_wait(ep.get(), events, 256, 100);
            for (int i = 0; i < n; ++i) {
                if (events[i].data.ptr == nullptr) {
                    for (;;) {
                        const int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (fd < 0) break;
                        int one = 1;
                        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        auto* c = new Conn{fd, {}};
                        epoll_event cev{};
                        cev.events = EPOLLIN;
                        cev.data.ptr = c;
                        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &cev);
                    }
                    continue;
                }
                auto* c = static_cast<Conn*>(events[i].data.ptr);
                const ssize_t r = ::read(c->fd, buf.data(), buf.size());
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN) continue;
                    ::close(c->fd);  // also leaves the epoll set
                    delete c;
                    continue;
                }
                const std::size_t requests = c->requests.count(buf.data(), static_cast<std::size_t>(r));
                if (requests == 0) continue;
                out.clear();
                for (std::size_t k = 0; k < requests; ++k) out += Protocol::reference_reply;
                [[maybe_unused]] auto w = ::send(c->fd, out.data(), out.size(), MSG_NOSIGNAL);
            }
        }
    }
    UniqueFd listen_;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// (b) The frontend under test on its own loop thread.

class BenchOracle final : public frontends::PermitOracle {
public:
    std::set<core::Address> permits;
    frontends::Verdict check(const core::Address& a) const override {
        frontends::Verdict v;
        if (permits.count(a) != 0) v.kind = frontends::Verdict::Kind::permit;
        return v;
    }
};

inline std::string client_address(int i) { return "198.51.100." + std::to_string(10 + i % 16); }

// Frontend: PolicyFrontend, SocketmapFrontend (constructed from a loop and an oracle, with
// listen(), local_endpoints() and close()).
template <class Frontend>
class FrontendServer {
public:
    FrontendServer() {
        std::promise<std::string> ready;
        auto endpoint = ready.get_future();
        thread_ = std::thread([this, &ready] {
            util::EventLoop loop;
            BenchOracle oracle;
            for (int i = 0; i < 16; i += 4) oracle.permits.insert(*core::Address::parse(client_address(i)));
            Frontend frontend(loop, oracle);
            auto st = frontend.listen({"127.0.0.1:0"});
            if (!st) {
                std::fprintf(stderr, "frontend: %s\n", st.error().message.c_str());
                std::exit(2);
            }
            ready.set_value(frontend.local_endpoints().at(0));
            while (!stop_) loop.run_once(std::chrono::milliseconds(100));
            frontend.close();
        });
        endpoint_ = endpoint.get();
    }
    ~FrontendServer() {
        stop_ = true;
        thread_.join();
    }
    const std::string& endpoint() const { return endpoint_; }

private:
    std::string endpoint_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// (c) The load generator.

struct CaseResult {
    double rps = 0;
    double p50_us = 0;
    double p99_us = 0;
    std::uint64_t ok_replies = 0;
    std::uint64_t replies = 0;
};

template <class Protocol>
CaseResult load(const std::string& endpoint, int clients, double seconds) {
    auto ep = util::parse_endpoint(endpoint);
    if (!ep) {
        std::fprintf(stderr, "%s\n", ep.error().message.c_str());
        std::exit(2);
    }
    std::vector<std::string> requests;
    for (int i = 0; i < 16; ++i) requests.push_back(Protocol::request(i));

    struct Conn {
        UniqueFd fd;
        std::size_t next = 0;  // index into requests
        Steady::time_point sent;
        typename Protocol::ReplyReader reply{};
    };
    std::vector<Conn> conns(static_cast<std::size_t>(clients));
    UniqueFd epfd(::epoll_create1(EPOLL_CLOEXEC));
    for (int i = 0; i < clients; ++i) {
        auto fd = util::connect_endpoint(*ep, 2000);
        if (!fd) {
            std::fprintf(stderr, "%s\n", fd.error().message.c_str());
            std::exit(2);
        }
        auto& c = conns[static_cast<std::size_t>(i)];
        c.fd = std::move(*fd);
        ::fcntl(c.fd.get(), F_SETFL, ::fcntl(c.fd.get(), F_GETFL) | O_NONBLOCK);
        int one = 1;
        ::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c.next = static_cast<std::size_t>(i) % requests.size();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<std::uint64_t>(i);
        ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, c.fd.get(), &ev);
    }
    auto send_next = [&](Conn& c) {
        const auto& r = requests[c.next];
        c.next = (c.next + 1) % requests.size();
        c.sent = Steady::now();
        if (::send(c.fd.get(), r.data(), r.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(r.size())) {
            std::fprintf(stderr, "short write to the server\n");
            std::exit(2);
        }
    };
    std::vector<std::uint32_t> latencies_ns;
    latencies_ns.reserve(4'000'000);
    const auto start = Steady::now();
    const auto measure_from = start + std::chrono::milliseconds(300);  // warm-up
    const auto until = measure_from + std::chrono::duration_cast<Steady::duration>(std::chrono::duration<double>(seconds));
    for (auto& c : conns) send_next(c);
    char buf[4096];
    epoll_event events[256];
    CaseResult res;
    std::uint64_t measured = 0;
    bool done = false;
    while (!done) {
        const int n = ::epoll_wait(epfd.get(), events, 256, 1000);
        if (n == 0) {
            std::fprintf(stderr, "no reply for 1 s: server stalled\n");
            std::exit(2);
        }
        const auto now = Steady::now();
        if (now >= until) done = true;
        for (int i = 0; i < n; ++i) {
            auto& c = conns[events[i].data.u64];
            const ssize_t r = ::read(c.fd.get(), buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                std::fprintf(stderr, "server closed a connection\n");
                std::exit(2);
            }
            if (!c.reply.consume(buf, static_cast<std::size_t>(r))) continue;
            if (now >= measure_from && now < until) {
                ++measured;
                latencies_ns.push_back(static_cast<std::uint32_t>(
                    std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent).count(),
                                           UINT32_MAX)));
                ++res.replies;
                if (c.reply.ok) ++res.ok_replies;
            }
            if (!done) send_next(c);
        }
    }
    res.rps = static_cast<double>(measured) / seconds;
    if (!latencies_ns.empty()) {
        auto pct = [&](double p) {
            const auto k = static_cast<std::size_t>(p * static_cast<double>(latencies_ns.size() - 1));
            std::nth_element(latencies_ns.begin(), latencies_ns.begin() + static_cast<std::ptrdiff_t>(k), latencies_ns.end());
            return static_cast<double>(latencies_ns[k]) / 1000.0;
        };
        res.p50_us = pct(0.50);
        res.p99_us = pct(0.99);
    }
    return res;
}

inline std::vector<int> parse_list(const char* s) {
    std::vector<int> out;
    for (const char* p = s; *p != '\0';) {
        out.push_back(std::atoi(p));
        while (*p != '\0' && *p != ',') ++p;
        if (*p == ',') ++p;
    }
    return out;
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The whole program: the command line ([--duration SECONDS] [--clients 8,64] [--rounds N]
// [--connect HOST:PORT]), then for each round and client count the reference and the frontend
// (`frontend_name`, or the --connect endpoint), printed under the heading `program`.
template <class Protocol, class Frontend>
int run_bench(int argc, char** argv, const char* program, const char* frontend_name) {
    double seconds = 3;
    int rounds = 1;
    std::vector<int> client_counts = {8, 64};
    std::string external;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--duration" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--clients" && i + 1 < argc) client_counts = parse_list(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--connect" && i + 1 < argc) external = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--duration SECONDS] [--clients 8,64] [--rounds N] [--connect HOST:PORT]\n", argv[0]);
            return 2;
        }
    }
    util::set_log_level(util::Level::warning);
    ReferenceServer<Protocol> reference;
    std::unique_ptr<FrontendServer<Frontend>> frontend;
    std::string target = external;
    if (target.empty()) {
        frontend = std::make_unique<FrontendServer<Frontend>>();
        target = frontend->endpoint();
    }
    const std::string reference_ep = "127.0.0.1:" + std::to_string(reference.port());
    const std::string name = external.empty() ? frontend_name : "relaypermit " + external;

    std::printf("%s: %d x %.1f s per case, request %zu bytes, %u CPUs\n\n", program, rounds, seconds,
                Protocol::request(0).size(), std::thread::hardware_concurrency());
    std::printf("| round | server | clients | req/s | p50 µs | p99 µs | vs reference | OK replies |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    struct Summary {
        std::vector<double> ref_rps, rps, ratio, ref_p99, p99, p50, ref_p50;
    };
    std::vector<Summary> summary(client_counts.size());
    for (int round = 1; round <= rounds; ++round) {
        for (std::size_t ci = 0; ci < client_counts.size(); ++ci) {
            const int n = client_counts[ci];
            const auto ref = load<Protocol>(reference_ep, n, seconds);
            const auto fe = load<Protocol>(target, n, seconds);
            const double ratio = ref.rps > 0 ? fe.rps / ref.rps : 0;
            std::printf("| %d | reference epoll | %d | %.0f | %.0f | %.0f | 1.00 | %.0f%% |\n", round, n, ref.rps, ref.p50_us,
                        ref.p99_us, 0.0);
            std::printf("| %d | %s | %d | %.0f | %.0f | %.0f | %.2f | %.0f%% |\n", round, name.c_str(), n, fe.rps, fe.p50_us,
                        fe.p99_us, ratio,
                        fe.replies > 0 ? 100.0 * static_cast<double>(fe.ok_replies) / static_cast<double>(fe.replies) : 0.0);
            std::fflush(stdout);
            auto& s = summary[ci];
            s.ref_rps.push_back(ref.rps);
            s.rps.push_back(fe.rps);
            s.ratio.push_back(ratio);
            s.ref_p50.push_back(ref.p50_us);
            s.ref_p99.push_back(ref.p99_us);
            s.p50.push_back(fe.p50_us);
            s.p99.push_back(fe.p99_us);
        }
    }
    std::printf("\nMedian of %d round(s):\n\n", rounds);
    std::printf("| clients | reference req/s | reference p50/p99 µs | %s req/s | p50/p99 µs | ratio |\n", name.c_str());
    std::printf("|---|---|---|---|---|---|\n");
    for (std::size_t ci = 0; ci < client_counts.size(); ++ci) {
        const auto& s = summary[ci];
        std::printf("| %d | %.0f | %.0f / %.0f | %.0f | %.0f / %.0f | %.2f |\n", client_counts[ci], median(s.ref_rps),
                    median(s.ref_p50), median(s.ref_p99), median(s.rps), median(s.p50), median(s.p99), median(s.ratio));
    }
    return 0;
}

}  // namespace rp::bench
