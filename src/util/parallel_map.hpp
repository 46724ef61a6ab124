// Ordered parallel map: items 0..n-1 are worked on by several threads, and their results are
// handed to the calling thread strictly in order, so that a consumer with state (a pid cache, an
// output stream) sees exactly what a one-thread loop would give it. Plus cutting a buffer into
// chunks at line ends, the usual work items.
//
// What it is not: a general thread pool. Threads live for one call; a window bounds how far the
// workers run ahead of the consumer, so the memory held by finished results stays bounded.
// Thread-safety: work functions run concurrently on different items (each with its own local
// state); emit/consume run only on the calling thread, each item after its work finished
// (happens-before), in order. An exception from emit/consume stops the hand-out, joins the
// workers and propagates; an exception from work on a worker thread terminates (as any thread).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

namespace rp::util {

struct ParallelOptions {
    unsigned threads = 1;  // threads to use, the caller's included
    std::size_t window = 0;  // items claimed ahead of the next one emitted; 0 = 4 per thread
};

using WorkFn = std::function<void(std::size_t)>;

// Runs work(i) for every i in [0, n) on up to opts.threads threads, and emit(i) on the calling
// thread for i = 0, 1, ... n-1, each once its work is done. Each extra thread calls make_worker()
// once and uses the function it returns (owning that thread's local state); an empty function
// (or std::bad_alloc) ends that thread and the others do its share. The calling thread runs
// caller_work on unclaimed items while it waits for the next one to emit. A thread that cannot be
// started is no error: fewer threads do the work. With opts.threads == 1 (or n <= 1) nothing
// runs ahead: caller_work(i) then emit(i), for i = 0, 1, ... in turn (relaypermit scan's one
// thread relies on it to match with its state as it reads).
void ordered_parallel_for(std::size_t n, const ParallelOptions& opts, const std::function<WorkFn()>& make_worker,
                          const WorkFn& caller_work, const WorkFn& emit);

// The same with results: consume(i, map(i, local)) in order of i. `caller_local` is the calling
// thread's local state; make_local() makes one per extra thread (a null pointer ends that thread)
// and is called on that thread, concurrently with map() on others.
template <class Result, class Local, class MakeLocal, class Map, class Consume>
void ordered_parallel_map(std::size_t n, const ParallelOptions& opts, Local& caller_local, MakeLocal&& make_local,
                          Map&& map, Consume&& consume) {
    std::deque<Result> slots(n);  // slot i: written by the thread that did item i, read after emit(i)
    ordered_parallel_for(
        n, opts,
        [&]() -> WorkFn {
            std::shared_ptr<Local> local = make_local();
            if (!local) return {};
            return [&map, &slots, local](std::size_t i) { slots[i] = map(i, *local); };
        },
        [&](std::size_t i) { slots[i] = map(i, caller_local); },
        [&](std::size_t i) {
            Result r = std::move(slots[i]);
            slots[i] = Result();  // its memory is freed as the scan goes
            consume(i, std::move(r));
        });
}

// Emptied results kept for the next items: a consumer gives back what it has emptied (cleared
// containers keep their capacity), a worker takes one instead of a new T. A scan that builds a
// few hundred KB per chunk otherwise grows and trims the heap once per chunk (635 brk calls and
// 24,000 page faults per GB, docs/benchmarks.md). Holds at most the items in flight (the
// window). Thread-safe: take and give may run on any threads.
template <class T>
class SparePool {
public:
    T take() {
        std::lock_guard<std::mutex> lock(mu_);
        if (items_.empty()) return T();
        T t = std::move(items_.back());
        items_.pop_back();
        return t;
    }
    void give(T&& t) {
        std::lock_guard<std::mutex> lock(mu_);
        items_.push_back(std::move(t));
    }

private:
    std::mutex mu_;
    std::vector<T> items_;
};

// Offsets 0 = c0 < c1 < ... < ck = text.size() cutting `text` into chunks of about chunk_bytes
// (at least 1) that end at line ends ('\n'), so no line is split; a chunk is longer when a line
// is. An empty text gives {0}.
std::vector<std::size_t> line_cuts(std::string_view text, std::size_t chunk_bytes);

}  // namespace rp::util
