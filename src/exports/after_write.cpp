#include "exports/after_write.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/log.hpp"

extern char** environ;

namespace rp::exports {
namespace {

constexpr std::size_t kKeepOutput = 1024;
constexpr std::chrono::milliseconds kMaxPoll{50};

std::string one_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    for (char& c : s)
        if (c == '\n' || c == '\r') c = '|';
        else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return s;
}

}  // namespace

AfterWriteCommand::AfterWriteCommand(util::EventLoop& loop, std::vector<std::string> argv,
                                     std::chrono::milliseconds timeout, std::string label)
    : loop_(loop), argv_(std::move(argv)), timeout_(timeout), label_(std::move(label)) {}

AfterWriteCommand::~AfterWriteCommand() {
    if (poll_timer_) loop_.cancel(poll_timer_);
    if (out_) loop_.remove(out_.get());
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
        util::log(util::Level::warning, "export {}: after_write killed (the export was closed while it ran)", label_);
    }
}

void AfterWriteCommand::request() {
    if (running()) {
        pending_ = true;
        return;
    }
    start();
}

void AfterWriteCommand::start() {
    pending_ = false;
    killed_ = false;
    output_.clear();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        ++runs_;
        ++failures_;
        util::log(util::Level::error, "export {}: after_write: cannot create a pipe: {}", label_, std::strerror(errno));
        return;
    }
    util::UniqueFd rd(fds[0]), wr(fds[1]);
    // The child's end must block (a command writing much output would otherwise get EAGAIN).
    (void)::fcntl(wr.get(), F_SETFL, 0);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
    // The daemon blocks HUP/TERM/INT for its signalfd and ignores PIPE: the child gets neither.
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    for (int s : {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout kills what it started, too
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    std::vector<char*> argv;
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int e = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        ++runs_;
        ++failures_;
        util::log(util::Level::error, "export {}: after_write: cannot run {}: {}", label_, argv_.front(),
                  std::strerror(e));
        return;
    }
    pid_ = pid;
    started_ = std::chrono::steady_clock::now();
    out_ = std::move(rd);
    loop_.add(out_.get(), EPOLLIN, [this](std::uint32_t) { drain_output(); });
    poll_every_ = std::chrono::milliseconds(1);
    poll_timer_ = loop_.call_after(poll_every_, [this] { poll(); });
}

void AfterWriteCommand::drain_output() {
    if (!out_) return;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out_.get(), buf, sizeof buf);
        if (n > 0) {
            const std::size_t keep = std::min(static_cast<std::size_t>(n), kKeepOutput - std::min(kKeepOutput, output_.size()));
            output_.append(buf, keep);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        // EOF or error: nobody writes any more.
        loop_.remove(out_.get());
        out_.reset();
        return;
    }
}

void AfterWriteCommand::poll() {
    poll_timer_ = 0;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
        finish(r == pid_ ? status : -1);
        return;
    }
    if (!killed_ && std::chrono::steady_clock::now() - started_ >= timeout_) {
        killed_ = true;
        ::kill(-pid_, SIGKILL);
    }
    poll_every_ = std::min(poll_every_ * 2, kMaxPoll);
    poll_timer_ = loop_.call_after(poll_every_, [this] { poll(); });
}

void AfterWriteCommand::finish(int status) {
    pid_ = -1;
    drain_output();
    if (out_) {  // a grandchild may hold the pipe open: stop listening, keep what was read
        loop_.remove(out_.get());
        out_.reset();
    }
    ++runs_;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    const std::string out = output_.empty() ? std::string() : ": " + one_line(output_);
    if (killed_) {
        ++failures_;
        util::log(util::Level::error, "export {}: after_write {} killed after {} ms (after_write_timeout){}", label_,
                  argv_.front(), ms.count(), out);
    } else if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        util::log(util::Level::debug, "export {}: after_write {} done in {} ms{}", label_, argv_.front(), ms.count(), out);
    } else {
        ++failures_;
        std::string how = status < 0              ? std::string("vanished")
                          : WIFEXITED(status)     ? "exited with " + std::to_string(WEXITSTATUS(status))
                          : WIFSIGNALED(status)   ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                  : std::string("ended");
        util::log(util::Level::error, "export {}: after_write {} {}{}", label_, argv_.front(), how, out);
    }
    if (pending_) start();
}

}  // namespace rp::exports
