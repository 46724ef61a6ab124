#include "store/worker_thread.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace rp::store {
namespace {

void drain_eventfd(int fd) {
    std::uint64_t v;
    while (::read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
    }
}

void signal_eventfd(int fd) {
    const std::uint64_t one = 1;
    if (fd >= 0) (void)!::write(fd, &one, sizeof one);
}

}  // namespace

WorkerThread::~WorkerThread() {
    stop();
    if (to_worker_ >= 0) ::close(to_worker_);
    if (to_loop_ >= 0) ::close(to_loop_);
}

core::Status WorkerThread::init() {
    if (to_worker_ < 0) to_worker_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (to_loop_ < 0) to_loop_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (to_worker_ < 0 || to_loop_ < 0) return core::make_error("eventfd: " + std::string(std::strerror(errno)));
    return core::ok();
}

core::Status WorkerThread::start(std::function<void()> body) {
    if (auto st = init(); !st) return st;
    {
        std::lock_guard lk(mu_);
        stop_ = false;
    }
    thread_ = std::thread(std::move(body));
    return core::ok();
}

void WorkerThread::stop() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    wake();
    thread_.join();
}

bool WorkerThread::stopping() {
    std::lock_guard lk(mu_);
    return stop_;
}

void WorkerThread::wake() { signal_eventfd(to_worker_); }
void WorkerThread::notify_loop() { signal_eventfd(to_loop_); }
void WorkerThread::drain_loop_fd() {
    if (to_loop_ >= 0) drain_eventfd(to_loop_);
}

bool WorkerThread::wait(std::chrono::milliseconds timeout, int extra_fd) {
    pollfd fds[2] = {{to_worker_, POLLIN, 0}, {extra_fd, POLLIN, 0}};
    (void)::poll(fds, extra_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
    drain_eventfd(to_worker_);
    return !stopping();
}

bool WorkerThread::pause(std::chrono::milliseconds duration) {
    using Steady = std::chrono::steady_clock;
    const auto until = Steady::now() + duration;
    bool go_on = !stopping();
    while (go_on && Steady::now() < until)
        go_on = wait(std::chrono::ceil<std::chrono::milliseconds>(until - Steady::now()));
    return go_on;
}

}  // namespace rp::store
