#include "util/event_loop.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace rp::util {

EventLoop::EventLoop() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (!epfd_) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
}

void EventLoop::add(int fd, std::uint32_t events, Handler handler) {
    const std::uint64_t token = next_token_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::runtime_error("epoll_ctl(ADD, " + std::to_string(fd) + "): " + std::strerror(errno));
    token_by_fd_[fd] = token;
    regs_[token] = Registration{fd, std::make_shared<Handler>(std::move(handler))};
}

void EventLoop::modify(int fd, std::uint32_t events) {
    auto it = token_by_fd_.find(fd);
    if (it == token_by_fd_.end()) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = it->second;
    epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) {
    auto it = token_by_fd_.find(fd);
    if (it == token_by_fd_.end()) return;
    epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
    regs_.erase(it->second);
    token_by_fd_.erase(it);
}

EventLoop::TimerId EventLoop::call_after(std::chrono::milliseconds delay, std::function<void()> fn) {
    const TimerId id = next_timer_++;
    const auto when = Steady::now() + delay;
    timer_order_.emplace(when, id);
    timers_.emplace(id, std::make_pair(when, std::move(fn)));
    return id;
}

void EventLoop::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    auto [lo, hi] = timer_order_.equal_range(it->second.first);
    for (auto o = lo; o != hi; ++o) {
        if (o->second == id) {
            timer_order_.erase(o);
            break;
        }
    }
    timers_.erase(it);
}

void EventLoop::run_once(std::chrono::milliseconds max_wait) {
    auto wait = max_wait;
    if (!timer_order_.empty()) {
        auto until = std::chrono::ceil<std::chrono::milliseconds>(timer_order_.begin()->first - Steady::now());
        if (until < wait) wait = until < std::chrono::milliseconds(0) ? std::chrono::milliseconds(0) : until;
    }
    epoll_event events[256];
    const int n = epoll_wait(epfd_.get(), events, 256, static_cast<int>(wait.count()));
    for (int i = 0; i < n; ++i) {
        // epoll_event is packed on x86-64: copy the token out rather than bind a reference to a
        // misaligned field (UBSan's alignment check, under clang).
        const std::uint64_t token = events[i].data.u64;
        auto it = regs_.find(token);
        if (it == regs_.end()) continue;  // removed by an earlier handler in this batch
        auto handler = it->second.handler;  // keeps the handler alive if it removes itself
        (*handler)(events[i].events);
    }
    const auto now = Steady::now();
    while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
        const TimerId id = timer_order_.begin()->second;
        timer_order_.erase(timer_order_.begin());
        auto it = timers_.find(id);
        if (it == timers_.end()) continue;
        auto fn = std::move(it->second.second);
        timers_.erase(it);
        fn();
    }
}

void EventLoop::run() {
    while (!stopping_) run_once();
}

}  // namespace rp::util
