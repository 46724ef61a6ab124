// EventLoop: a single-threaded epoll reactor with one-shot timers.
//
// Every I/O source of the daemon is a file descriptor (sockets, inotify, signalfd, the journal's
// fd), so one epoll set drives all of them; nothing blocks in a handler. Handlers may add or
// remove any registration, including their own, while running: registrations are keyed by a
// token, never by the (reusable) fd number, so an event for a removed registration is dropped.
// Timers use the monotonic clock and fire in deadline order from run_once().
// Thread-safety: not thread-safe; use from the loop's thread only.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "util/unique_fd.hpp"

namespace rp::util {

class EventLoop {
public:
    using Handler = std::function<void(std::uint32_t events)>;
    using TimerId = std::uint64_t;
    using Steady = std::chrono::steady_clock;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // REQUIRES: fd not already registered. `events` are EPOLLIN/EPOLLOUT/... flags.
    void add(int fd, std::uint32_t events, Handler handler);
    void modify(int fd, std::uint32_t events);
    // Removing an unknown fd is a no-op.
    void remove(int fd);

    TimerId call_after(std::chrono::milliseconds delay, std::function<void()> fn);
    void cancel(TimerId id);

    // Waits at most `max_wait` (or until the next timer) and dispatches what is ready.
    void run_once(std::chrono::milliseconds max_wait = std::chrono::milliseconds(1000));
    void run();   // until stop()
    void stop() { stopping_ = true; }
    bool stopping() const { return stopping_; }

private:
    struct Registration {
        int fd;
        std::shared_ptr<Handler> handler;
    };
    UniqueFd epfd_;
    std::uint64_t next_token_ = 1;
    std::unordered_map<int, std::uint64_t> token_by_fd_;
    std::unordered_map<std::uint64_t, Registration> regs_;
    TimerId next_timer_ = 1;
    std::multimap<Steady::time_point, TimerId> timer_order_;
    std::unordered_map<TimerId, std::pair<Steady::time_point, std::function<void()>>> timers_;
    bool stopping_ = false;
};

}  // namespace rp::util
