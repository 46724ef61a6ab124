#include "daemon/limit_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.hpp"

namespace rp::daemon {
namespace {

int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The child's start: /dev/null for 0-2, clean signals, its own process group.
struct SpawnSetup {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        sigset_t none, reset;
        sigemptyset(&none);
        sigfillset(&reset);
        sigdelset(&reset, SIGKILL);
        sigdelset(&reset, SIGSTOP);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &reset);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
    }
};

}  // namespace

LimitCommand::LimitCommand(util::EventLoop& loop, std::vector<std::string> argv, std::size_t max_running,
                           std::chrono::milliseconds timeout)
    : loop_(loop), argv_(std::move(argv)), max_running_(max_running), timeout_(timeout) {}

LimitCommand::~LimitCommand() {
    for (auto& [pid, c] : children_) {
        ::kill(-pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        loop_.remove(c.pidfd);
        loop_.cancel(c.timer);
        ::close(c.pidfd);
    }
}

void LimitCommand::run(const LimitEvent& e) {
    if (argv_.empty()) return;
    if (children_.size() >= max_running_) {
        ++dropped_;
        return;
    }
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "RELAYPERMIT_LIMIT=" + e.limit,
                                    "RELAYPERMIT_IP=" + e.ip, "RELAYPERMIT_USER=" + e.user,
                                    "RELAYPERMIT_DETAIL=" + e.detail};
    std::vector<char*> envp, argv;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    SpawnSetup setup;
    pid_t pid = -1;
    const int err = ::posix_spawnp(&pid, argv[0], &setup.fa, &setup.attr, argv.data(), envp.data());
    if (err != 0) {
        ++failures_;
        util::log(util::Level::error, "on_limit: cannot run {}: {}", util::esc(argv_.front()), std::strerror(err));
        return;
    }
    ++started_;
    Child c;
    c.pidfd = open_pidfd(pid);
    if (c.pidfd < 0) {  // no pidfd (kernel < 5.3): wait for it; the program was meant to be short
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures_;
        return;
    }
    c.timer = loop_.call_after(timeout_, [this, pid] {
        auto it = children_.find(pid);
        if (it == children_.end()) return;
        it->second.timer = 0;
        util::log(util::Level::warning, "on_limit: {} ran longer than {} ms; killed", util::esc(argv_.front()),
                  timeout_.count());
        ::kill(-pid, SIGKILL);
    });
    loop_.add(c.pidfd, EPOLLIN, [this, pid](std::uint32_t) { reap(pid); });
    children_.emplace(pid, c);
}

void LimitCommand::reap(pid_t pid) {
    auto it = children_.find(pid);
    if (it == children_.end()) return;
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == 0) return;  // not yet (spurious wake-up)
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ++failures_;
        util::log(util::Level::warning, "on_limit: {} {}", util::esc(argv_.front()),
                  r < 0 ? std::string("could not be reaped")
                  : WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "ended by signal " + std::to_string(WTERMSIG(status)));
    }
    loop_.remove(it->second.pidfd);
    if (it->second.timer) loop_.cancel(it->second.timer);
    ::close(it->second.pidfd);
    children_.erase(it);
}

}  // namespace rp::daemon
