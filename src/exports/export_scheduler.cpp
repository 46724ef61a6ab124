#include "exports/export_scheduler.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::exports {

using util::Level;
using util::log;
using Steady = std::chrono::steady_clock;

struct ExportScheduler::Entry {
    std::unique_ptr<Exporter> exporter;  // the worker calls write_map() only
    ExportStatus status;                 // the loop's
    bool dirty = true;                   // the loop's: the file may not match the permits
    std::uint64_t streak = 0;            // failures since the last success
};

// One round of writes, handed to the worker and back. The worker fills `results`; everything
// else is set before and read after, ordered by the worker's mutex.
struct ExportScheduler::Job {
    std::shared_ptr<std::vector<Entry>> entries;  // keeps a reload's old exporters until we are back
    std::vector<std::size_t> which;
    std::vector<core::Permit> permits;
    core::Time now{};
    bool static_only = false;
    std::vector<core::Status> results;
    std::vector<bool> replaced;

    void run() {
        // Sorted here, off the loop: the loop only copied them (any order); map files come out
        // the same whatever order the table held them in.
        std::sort(permits.begin(), permits.end(), [](const auto& a, const auto& b) { return a.network < b.network; });
        for (const auto i : which) {
            Exporter& e = *(*entries)[i].exporter;
            const auto before = e.replacements();
            results.push_back(e.write_map(permits, now));
            replaced.push_back(e.replacements() != before);
        }
        std::vector<core::Permit>().swap(permits);  // freed here too, not on the loop in finish()
    }
};

// The thread that writes files. One job at a time; a finished job waits in `done` and an eventfd
// tells the loop. The state is shared with the thread, so a worker stuck in a write can be left
// behind at exit (detached): it then leaks its job instead of destroying exporters off the loop.
class ExportScheduler::Worker {
public:
    Worker() : s_(std::make_shared<Shared>()) {
        s_->efd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        // Signals are the loop's (a signalfd): the thread starts with all of them blocked, even
        // when it is created before the daemon blocks them, or SIGTERM would kill the process.
        sigset_t all, old;
        sigfillset(&all);
        ::pthread_sigmask(SIG_SETMASK, &all, &old);
        thread_ = std::thread([s = s_] { run(*s); });
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    ~Worker() {
        std::unique_lock lk(s_->mu);
        s_->quit = true;
        const bool stuck = s_->todo || s_->running;
        s_->abandoned = stuck;
        lk.unlock();
        s_->cv.notify_all();
        if (stuck) thread_.detach();
        else thread_.join();
    }
    int fd() const { return s_->efd.get(); }

    void submit(std::unique_ptr<Job> job) {
        {
            std::lock_guard lk(s_->mu);
            s_->todo = std::move(job);
        }
        s_->cv.notify_all();
    }
    // The finished job, if any (after the eventfd fired, or to clean up).
    std::unique_ptr<Job> take() {
        std::uint64_t n;
        while (::read(s_->efd.get(), &n, sizeof n) > 0) {}
        std::lock_guard lk(s_->mu);
        return std::move(s_->done);
    }
    // Waits at most `bound` for the job in flight.
    std::unique_ptr<Job> wait(std::chrono::milliseconds bound) {
        std::unique_lock lk(s_->mu);
        s_->cv.wait_for(lk, bound, [&] { return s_->done != nullptr; });
        return std::move(s_->done);
    }

private:
    struct Shared {
        std::mutex mu;
        std::condition_variable cv;
        std::unique_ptr<Job> todo, done;
        bool running = false, quit = false, abandoned = false;
        util::UniqueFd efd;
    };

    static void run(Shared& s) {
        std::unique_lock lk(s.mu);
        for (;;) {
            s.cv.wait(lk, [&] { return s.quit || s.todo; });
            if (!s.todo) return;
            auto job = std::move(s.todo);
            s.running = true;
            lk.unlock();
            job->run();
            lk.lock();
            s.running = false;
            if (s.abandoned) {
                (void)job.release();  // its exporters belong to a loop that is gone
                return;
            }
            s.done = std::move(job);
            s.cv.notify_all();
            const std::uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(s.efd.get(), &one, sizeof one);
        }
    }

    std::shared_ptr<Shared> s_;
    std::thread thread_;
};

ExportScheduler::ExportScheduler(util::EventLoop& loop, const core::Clock& clock, Snapshot snapshot,
                                 ExportTiming timing)
    : loop_(loop), clock_(clock), snapshot_(std::move(snapshot)), timing_(timing),
      entries_(std::make_shared<std::vector<Entry>>()), worker_(std::make_unique<Worker>()),
      retry_delay_(timing.retry_first) {
    loop_.add(worker_->fd(), EPOLLIN, [this](std::uint32_t) {
        if (auto job = worker_->take()) finish(std::move(job));
    });
}

ExportScheduler::ExportScheduler(util::EventLoop& loop, const core::Clock& clock, PieceSnapshot pieces,
                                 ExportTiming timing)
    : ExportScheduler(loop, clock, Snapshot{}, timing) {
    pieces_ = std::move(pieces);
}

ExportScheduler::~ExportScheduler() {
    stopped_ = true;
    if (timer_) loop_.cancel(timer_);
    if (copy_timer_) loop_.cancel(copy_timer_);
    copying_.reset();
    loop_.remove(worker_->fd());
    if (in_flight_ && !worker_->wait(timing_.stop_bound))
        log(Level::error, "exports: a write still runs after {} ms; leaving it behind", timing_.stop_bound.count());
    worker_.reset();
}

void ExportScheduler::set_exporters(std::vector<std::unique_ptr<Exporter>> exporters) {
    auto fresh = std::make_shared<std::vector<Entry>>();
    for (auto& e : exporters) {
        Entry entry;
        entry.status.name = e->describe();
        entry.exporter = std::move(e);
        fresh->push_back(std::move(entry));
    }
    entries_ = std::move(fresh);  // a job in flight keeps the old ones alive until finish()
    retry_delay_ = timing_.retry_first;
    arm(timing_.batch);
}

void ExportScheduler::changed() {
    if (stopped_ || entries_->empty()) return;
    for (auto& e : *entries_) e.dirty = true;
    arm(timing_.batch);
}

void ExportScheduler::write_now() {
    if (stopped_ || entries_->empty()) return;
    if (!wait_for_worker(timing_.start_bound, "previous")) return;
    if (timer_) loop_.cancel(timer_);
    timer_ = 0;
    for (auto& e : *entries_) e.dirty = true;
    start_round();
    wait_for_worker(timing_.start_bound, "first");
}

void ExportScheduler::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (timer_) loop_.cancel(timer_);
    timer_ = 0;
    if (entries_->empty()) return;
    if (!wait_for_worker(timing_.stop_bound, "last")) {
        log(Level::error, "exports: not rewritten without permits at stop (a write still runs); "
                          "`relaypermit exports clean` does it");
        return;
    }
    again_ = false;
    start_round(true);
    wait_for_worker(timing_.stop_bound, "stop");
    wait_after_write(timing_.stop_bound);
}

std::vector<ExportStatus> ExportScheduler::status() const {
    std::vector<ExportStatus> out;
    for (const auto& e : *entries_) out.push_back(e.status);
    return out;
}

bool ExportScheduler::idle() const {
    if (in_flight_ || timer_) return false;
    return std::none_of(entries_->begin(), entries_->end(), [](const Entry& e) { return e.exporter->busy(); });
}

void ExportScheduler::arm(std::chrono::milliseconds delay) {
    if (stopped_) return;
    const auto due = Steady::now() + delay;
    if (timer_ && timer_due_ <= due) return;  // an earlier round covers it
    if (timer_) loop_.cancel(timer_);
    timer_due_ = due;
    timer_ = loop_.call_after(delay, [this] {
        timer_ = 0;
        start_round();
    });
}

void ExportScheduler::start_round(bool static_only) {
    if (in_flight_) {
        again_ = true;  // one more round once this one is back
        return;
    }
    auto job = std::make_unique<Job>();
    job->entries = entries_;
    job->static_only = static_only;
    for (std::size_t i = 0; i < entries_->size(); ++i) {
        auto& e = (*entries_)[i];
        if (!static_only && !e.dirty) continue;
        e.dirty = false;  // a change from now on marks it again
        job->which.push_back(i);
    }
    if (job->which.empty()) return;
    job->now = clock_.now();
    in_flight_ = true;
    if (!static_only && pieces_) {
        copy_ = pieces_(job->now);
        copying_ = std::move(job);
        copy_piece();
        return;
    }
    if (!static_only) job->permits = snapshot_(job->now);
    worker_->submit(std::move(job));
}

void ExportScheduler::copy_piece() {
    copy_timer_ = 0;
    if (copy_(copying_->permits)) {
        // After every descriptor ready meanwhile (timers run after them in a loop turn).
        copy_timer_ = loop_.call_after(std::chrono::milliseconds(0), [this] { copy_piece(); });
        return;
    }
    copy_ = {};
    worker_->submit(std::move(copying_));
}

void ExportScheduler::finish_copy_at_once() {
    if (!copying_) return;
    if (copy_timer_) loop_.cancel(copy_timer_);
    copy_timer_ = 0;
    while (copy_(copying_->permits)) {
    }
    copy_ = {};
    worker_->submit(std::move(copying_));
}

void ExportScheduler::finish(std::unique_ptr<Job> job) {
    in_flight_ = false;
    bool failed = false;
    if (job->entries == entries_) {  // else: written for exporters a reload replaced
        for (std::size_t k = 0; k < job->which.size(); ++k) {
            record((*entries_)[job->which[k]], job->results[k], job->replaced[k], job->static_only);
            failed = failed || !job->results[k];
        }
    }
    job.reset();  // may destroy a reload's old exporters: here, on the loop
    if (stopped_) return;
    if (failed) {
        arm(retry_delay_);
        retry_delay_ = std::min(retry_delay_ * 2, timing_.retry_max);
    } else if (std::none_of(entries_->begin(), entries_->end(), [](const Entry& e) { return e.status.failing; })) {
        retry_delay_ = timing_.retry_first;
    }
    if (std::exchange(again_, false)) start_round();
}

void ExportScheduler::record(Entry& e, const core::Status& s, bool replaced, bool static_only) {
    auto& st = e.status;
    if (s) {
        ++st.writes;
        if (replaced) ++st.replacements;
        st.last_success = clock_.now();
        if (st.failing)
            log(Level::notice, "export {}: written again after {} failed attempt(s)", st.name, e.streak);
        else if (static_only)
            log(Level::info, "export {}: rewritten without permits (stopping)", st.name);
        st.failing = false;
        e.streak = 0;
        e.exporter->map_written(replaced);
        return;
    }
    ++st.failures;
    ++e.streak;
    st.last_error = s.error().message;
    if (static_only) {
        log(Level::error, "export {}: cannot remove the permits at stop, the file keeps them: {}", st.name,
            st.last_error);
        return;
    }
    e.dirty = true;
    if (!st.failing) {  // one line per streak; status shows the count and the latest error
        const bool named = st.last_error.starts_with(st.name + ":");
        log(Level::error, "export {}: {} (retrying after {}, doubling up to {}, until it succeeds)", st.name,
            named ? st.last_error.substr(st.name.size() + 2) : st.last_error, core::format_duration(retry_delay_),
            core::format_duration(timing_.retry_max));
    }
    st.failing = true;
}

bool ExportScheduler::wait_for_worker(std::chrono::milliseconds bound, const char* what) {
    const auto deadline = Steady::now() + bound;
    while (in_flight_) {
        finish_copy_at_once();
        const auto left = std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline - Steady::now()),
                                   std::chrono::milliseconds(0));
        auto job = worker_->wait(left);
        if (!job) {
            log(Level::warning, "exports: the {} write takes longer than {} ms; going on while it continues", what,
                bound.count());
            return false;
        }
        finish(std::move(job));
    }
    return true;
}

void ExportScheduler::wait_after_write(std::chrono::milliseconds bound) {
    const auto deadline = Steady::now() + bound;
    auto busy = [&] {
        return std::any_of(entries_->begin(), entries_->end(), [](const Entry& e) { return e.exporter->busy(); });
    };
    while (busy() && Steady::now() < deadline) loop_.run_once(std::chrono::milliseconds(10));
    if (busy()) log(Level::warning, "exports: an after_write command still runs at stop; it is killed");
}

}  // namespace rp::exports
