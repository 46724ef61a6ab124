// run(): the daemon's start-up as a list of named steps, the serving loop, reload and shutdown.
#include "daemon/daemon.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config/allow_file.hpp"
#include "daemon/daemon_impl.hpp"
#include "daemon/login_spool.hpp"
#include "daemon/sd_notify.hpp"
#include "util/allocator.hpp"
#include "util/fs_safe.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

}  // namespace

int Daemon::run() {
    auto cfg = config::load_config_and_allow_files(opts_.config_path, opts_.explicit_config);
    if (!cfg) {
        log(Level::error, "{}", cfg.error().message);
        return 2;
    }
    cfg_ = *cfg;
    raise_fd_limit();
    block_signals();
    // Least privilege: everything that needs root comes before drop_privileges. The store must
    // exist before frontends answer, and the loop only runs after the last step: nothing is
    // served before the store is ready.
    using Step = core::Status (Daemon::*)();
    static constexpr Step steps[] = {
        &Daemon::find_user,     &Daemon::make_state_dir,  &Daemon::open_control,     &Daemon::bind_frontends,
        &Daemon::bind_sources,  &Daemon::open_metrics,    &Daemon::drop_privileges,  &Daemon::open_store,     &Daemon::open_limits,
        &Daemon::open_exports,  &Daemon::restore_sessions, &Daemon::take_spool,      &Daemon::purge_expired,  &Daemon::start_sources,
        &Daemon::close_passed_fds, &Daemon::watch_signals,
    };
    for (const Step step : steps) {
        if (auto st = (this->*step)(); !st) {
            log(Level::error, "{}", st.error().message);
            return 2;
        }
    }
    serve();
    shut_down();
    return 0;
}

// Signals arrive through a signalfd on the loop; SIGPIPE is ignored (peers hang up).
void Daemon::block_signals() {
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
}

core::Status Daemon::find_user() {
    auto who = find_run_as(cfg_.user, cfg_.file);
    if (!who) return who.error();
    run_as_ = *who;
    return core::ok();
}

core::Status Daemon::make_state_dir() { return make_dirs(cfg_.state_dir, 0750, run_as_.uid, run_as_.gid); }

core::Status Daemon::open_control() {
    if (auto st = open_control_socket(); !st) return st;
    if (run_as_.configured()) (void)util::chown_socket(cfg_.control_socket, run_as_.uid, util::k_no_gid);
    // The spool of logins pushed while we are stopped: ours, writable by who may use the control
    // socket (login_spool.hpp). Made while still root; without it pushes are only lost, so a
    // failure is a warning.
    const gid_t spool_gid = control_gid_ != static_cast<gid_t>(-1) ? control_gid_ : run_as_.gid;
    if (auto st = prepare_spool_dir(cfg_.state_dir, run_as_.uid, spool_gid); !st)
        log(Level::warning, "spool: {}; logins pushed while the daemon is stopped cannot all be kept", st.error().message);
    return core::ok();
}

// Grants the logins pushed while we were stopped, with their own time; then every minute (a push
// that raced our start).
core::Status Daemon::take_spool() {
    drain_spool();
    schedule_spool_drain();
    return core::ok();
}

core::Status Daemon::open_store() {
    auto st = store::open_store({cfg_.state_dir, cfg_.store, cfg_.store_password_file, false,
                                 static_cast<std::size_t>(cfg_.max_permits)});
    if (!st) return st.error();
    store_ = std::move(*st);
    if (const int fd = store_->event_fd(); fd >= 0) {
        // A shared store: news from other daemons (and our own acknowledgements) arrive here.
        loop_.add(fd, EPOLLIN, [this](std::uint32_t) {
            if (store_->process_events(clock_.now()) > 0) reschedule_expiry();
            if (auto removed = store_->take_removed(); !removed.empty()) end_removed_sessions(removed);
            if (store_->take_removed_overflow()) end_sessions_without_permit();
        });
    }
    return core::ok();
}

// Purges what expired while we were stopped, and arms the timer.
core::Status Daemon::purge_expired() {
    run_expiry();
    exports_.write_now();  // the files are current before the first answer
    return core::ok();
}

core::Status Daemon::watch_signals() {
    loop_.add(signal_fd_.get(), EPOLLIN, [this](std::uint32_t) {
        signalfd_siginfo si{};
        while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGHUP) {
                sd_notify("RELOADING=1");
                reload();
                sd_notify("READY=1");
                notify_status();
            } else {
                log(Level::notice, "signal {}: stopping", si.ssi_signo);
                loop_.stop();
            }
        }
    });
    return core::ok();
}

void Daemon::serve() {
    log(Level::notice, "relaypermit {} started: {} live permits in {}, {} source(s), policy on {}", RELAYPERMIT_VERSION,
        store_->size(), store_->describe(), sources_.size(),
        cfg_.policy.listen.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(cfg_.policy.listen, ", ")));
    sd_notify("READY=1");
    start_notifications();
    schedule_stats();
    loop_.run();
}

void Daemon::shut_down() {
    sd_notify("STOPPING=1");
    log_stats();
    for (auto& s : sources_) s->stop(loop_);
    for (auto& fe : frontends_) fe->close();
    if (metrics_) metrics_->close();
    watchdog_.reset();
    exports_.stop();  // fail closed: no permit stays in a file nobody keeps current
    save_sessions_now();  // open sessions survive the restart (sessions.cpp)
    close_limits();       // the last budget counts reach the store
    if (control_) {
        control_.reset();
        util::remove_socket_file(cfg_.control_socket, 0, 0);
    }
}

int run_daemon(const RunOptions& opts) {
    util::tune_allocator_for_latency();  // before any thread: see util/allocator.hpp
    Daemon d(opts);
    return d.run();
}

}  // namespace rp::daemon
