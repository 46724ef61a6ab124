#include "util/parallel_map.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

namespace rp::util {
namespace {

// Who works on which item, and which items are done. Items are claimed in order, at most
// `window` ahead of the next one to emit, so finished results waiting for the consumer stay few.
class Schedule {
public:
    Schedule(std::size_t n, std::size_t window) : n_(n), window_(window), done_(n, 0) {}

    // The next item to work on, or n once every item is claimed (or after stop()). With `wait`,
    // blocks while the window is full.
    std::size_t claim(std::unique_lock<std::mutex>& lock, bool wait) {
        while (true) {
            if (next_ < n_ && next_ < consumed_ + window_) return next_++;
            if (next_ >= n_ || !wait) return n_;
            cv_.wait(lock);
        }
    }
    std::size_t claim_waiting() {
        std::unique_lock lock(mu_);
        return claim(lock, true);
    }
    void finish(std::size_t i) {
        std::lock_guard lock(mu_);
        done_[i] = 1;
        cv_.notify_all();
    }
    // Blocks until item i is done, doing unclaimed items with `work` meanwhile.
    void await(std::size_t i, const WorkFn& work) {
        std::unique_lock lock(mu_);
        while (!done_[i]) {
            const std::size_t j = claim(lock, false);
            if (j == n_) {
                cv_.wait(lock);
                continue;
            }
            lock.unlock();
            work(j);
            lock.lock();
            done_[j] = 1;
            cv_.notify_all();
        }
    }
    void emitted(std::size_t i) {
        std::lock_guard lock(mu_);
        consumed_ = i + 1;
        cv_.notify_all();
    }
    void stop() {
        {
            std::lock_guard lock(mu_);
            next_ = n_;
        }
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    const std::size_t n_, window_;
    std::size_t next_ = 0, consumed_ = 0;  // next item to claim; items emitted
    std::vector<char> done_;
};

}  // namespace

void ordered_parallel_for(std::size_t n, const ParallelOptions& opts, const std::function<WorkFn()>& make_worker,
                          const WorkFn& caller_work, const WorkFn& emit) {
    const unsigned threads = std::max(1u, opts.threads);
    if (threads == 1 || n <= 1) {
        for (std::size_t i = 0; i < n; ++i) {
            caller_work(i);
            emit(i);
        }
        return;
    }
    Schedule schedule(n, opts.window ? opts.window : 4 * std::size_t{threads});
    std::vector<std::thread> workers;
    struct Join {  // also when emit throws: stop handing out items, wait for the workers
        Schedule& schedule;
        std::vector<std::thread>& workers;
        ~Join() {
            schedule.stop();
            for (auto& w : workers) w.join();
        }
    } join{schedule, workers};
    auto worker = [&] {
        WorkFn work;
        try {
            work = make_worker();
        } catch (const std::bad_alloc&) {
            return;  // the others do the work
        }
        if (!work) return;
        for (std::size_t i; (i = schedule.claim_waiting()) != n;) {
            work(i);
            schedule.finish(i);
        }
    };
    for (unsigned t = 1; t < threads && t < n; ++t) {
        try {
            workers.emplace_back(worker);
        } catch (const std::system_error&) {
            break;  // no more threads: the caller and the workers started so far do the work
        }
    }
    for (std::size_t i = 0; i < n; ++i) {
        schedule.await(i, caller_work);
        schedule.emitted(i);  // the window moves on while the caller emits
        emit(i);
    }
}

std::vector<std::size_t> line_cuts(std::string_view text, std::size_t chunk_bytes) {
    std::vector<std::size_t> cuts{0};
    const std::size_t chunk = std::max<std::size_t>(chunk_bytes, 1);
    while (cuts.back() < text.size()) {
        const std::size_t pos = cuts.back() + chunk;
        if (pos >= text.size()) {
            cuts.push_back(text.size());
            break;
        }
        const void* nl = std::memchr(text.data() + pos - 1, '\n', text.size() - pos + 1);
        cuts.push_back(nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text.data()) + 1 : text.size());
    }
    return cuts;
}

}  // namespace rp::util
