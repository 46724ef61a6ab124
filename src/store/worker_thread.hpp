// WorkerThread: one background thread that does a store's blocking I/O (a shared engine's
// network calls, the embedded store's SQLite commits) so the loop thread never waits for it.
//
// Two eventfds connect the threads: wake() makes the worker's wait() return (new work queued),
// notify_loop() makes loop_fd() readable (news for the loop, which the daemon's EventLoop
// watches). The owner keeps its queues under mutex(); the stop flag lives under the same mutex,
// so a worker that checks stopping() while holding it sees work and stop in one consistent view.
// Thread-safety: wake(), notify_loop(), stopping(), wait() and pause() may be called from
// either thread; start() and stop() from the owner's (loop) thread only.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "core/result.hpp"

namespace rp::store {

class WorkerThread final {
public:
    WorkerThread() = default;
    WorkerThread(const WorkerThread&) = delete;
    WorkerThread& operator=(const WorkerThread&) = delete;
    ~WorkerThread();  // stop()s, then closes the eventfds

    // Creates the eventfds (so loop_fd() is valid) without starting a thread.
    core::Status init();
    // init() if needed, then runs `body` on the new thread. body returns when stopping() holds
    // (or earlier, e.g. a test hook that simulates a crash).
    core::Status start(std::function<void()> body);
    // Sets the stop flag, wakes the worker and joins it. Idempotent.
    void stop();
    bool running() const { return thread_.joinable(); }

    std::mutex& mutex() { return mu_; }
    // REQUIRES: mutex() held by the caller.
    bool stopping_locked() const { return stop_; }
    bool stopping();

    int loop_fd() const { return to_loop_; }
    void wake();             // loop -> worker
    void notify_loop();      // worker -> loop
    void drain_loop_fd();    // loop: call before taking the news

    // Worker: waits up to `timeout` for wake() or for `extra_fd` to become readable.
    // Returns false once stop() has been called.
    bool wait(std::chrono::milliseconds timeout, int extra_fd = -1);
    // Worker: waits the whole `duration` (a back-off; wake() does not cut it short).
    // Returns false, early, once stop() has been called.
    bool pause(std::chrono::milliseconds duration);

private:
    std::mutex mu_;
    bool stop_ = false;
    int to_worker_ = -1, to_loop_ = -1;
    std::thread thread_;
};

}  // namespace rp::store
