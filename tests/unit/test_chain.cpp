// Exec chains (`allow --chain`, `check --chain`): each case runs the function in a forked child
// with a clean environment, stdin a pipe holding bytes the program must still see, stdout and
// stderr captured to files, and a fake program (/bin/sh -c ...) that records what it got. The
// control socket is served by a tiny server thread (answering, frozen, or absent). Waits are
// conditions with deadlines; the frozen case checks the 1 s budget.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/chain.hpp"
#include "core/time.hpp"
#include "store/permit_store.hpp"
#include "util/endpoint.hpp"

// The chain functions live in the relaypermit executable's sources (src/cli), which the unit
// test binary does not link: compile them into this test directly.
#include "cli/chain.cpp"    // NOLINT(bugprone-suspicious-include)
#include "cli/offline.cpp"  // NOLINT(bugprone-suspicious-include)

namespace rp::cli {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/rp_chain_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// A control-socket server on its own thread. mode: "answer" replies with reply_for(request),
// "frozen" accepts and never answers.
class FakeDaemon {
public:
    FakeDaemon(const std::string& path, std::string mode, int backlog = 16) : mode_(std::move(mode)) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        EXPECT_EQ(::listen(fd_, backlog), 0);
        if (mode_ != "no-accept") thread_ = std::thread([this] { serve(); });
    }
    ~FakeDaemon() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        for (int c : held_) ::close(c);
        ::close(fd_);
    }
    std::map<std::string, nlohmann::json> replies;  // cmd -> reply (set before use)
    std::vector<nlohmann::json> requests() {
        std::lock_guard<std::mutex> g(mu_);
        return requests_;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            if (mode_ == "frozen") {
                held_.push_back(c);
                continue;
            }
            std::string in;
            char buf[4096];
            while (in.find('\n') == std::string::npos) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 2000) <= 0) break;
                const auto n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
            }
            auto req = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
            {
                std::lock_guard<std::mutex> g(mu_);
                requests_.push_back(req);
            }
            const std::string cmd = req.is_object() ? req.value("cmd", "") : "";
            auto it = replies.find(cmd);
            nlohmann::json reply = it != replies.end() ? it->second : nlohmann::json{{"ok", false}, {"error", "?"}};
            const std::string out = reply.dump() + "\n";
            (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }
    int fd_ = -1;
    std::string mode_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<nlohmann::json> requests_;
    std::vector<int> held_;
};

struct ChildResult {
    int status = -1;  // exit status, or -1 if it did not exit in time
    std::chrono::milliseconds elapsed{};
    std::string out;     // what the fake program recorded
    std::string stdout_; // the child's stdout (must be empty)
    std::string stderr_;
    std::string stdin_seen;  // what the program read from stdin
};

class ChainTest : public ::testing::Test {
protected:
    TempDir dir;
    fs::path sock() const { return dir.path / "ctl.sock"; }
    fs::path config() const { return dir.path / "relaypermit.toml"; }

    void write_config(const std::string& extra = "") {
        std::ofstream f(config());
        f << "state_dir = \"" << (dir.path / "state").string() << "\"\n"
          << "control_socket = \"" << sock().string() << "\"\n"
          << extra;
    }

    // Runs fn in a child with exactly `env` as environment. The fake program records RELAYCLIENT
    // (and whether it is set) and copies its stdin.
    ChildResult run(bool allow, const std::map<std::string, std::string>& env, bool with_program = true,
                    std::vector<std::string> program = {}) {
        const auto out = dir.path / "program.out", in_copy = dir.path / "stdin.copy";
        const auto cap_out = dir.path / "child.stdout", cap_err = dir.path / "child.stderr";
        fs::remove(out);
        fs::remove(in_copy);
        if (with_program && program.empty())
            program = {"/bin/sh", "-c",
                       "cat > '" + in_copy.string() + "'; echo \"ran relayclient=${RELAYCLIENT-<unset>}\" > '" +
                           out.string() + "'"};
        int pipefd[2];
        EXPECT_EQ(::pipe(pipefd), 0);
        const std::string path = config().string();
        const auto start = Steady::now();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(pipefd[1]);
            ::dup2(pipefd[0], 0);
            const int o = ::open(cap_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int e = ::open(cap_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(o, 1);
            ::dup2(e, 2);
            ::clearenv();
            for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
            const int rc = allow ? run_allow_chain(path, true, program) : run_check_chain(path, true, program);
            ::_exit(rc);
        }
        ::close(pipefd[0]);
        const std::string input = "CLIENT BYTES\n";
        // The child may already have exited (no program to exec): its stdin pipe is then closed,
        // and the write must fail with EPIPE, not kill the test binary with SIGPIPE.
        const auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
        (void)::write(pipefd[1], input.data(), input.size());
        ::signal(SIGPIPE, old_pipe);
        ::close(pipefd[1]);
        ChildResult r;
        const auto deadline = Steady::now() + 10s;
        int st = 0;
        while (true) {
            const pid_t w = ::waitpid(pid, &st, WNOHANG);
            if (w == pid) break;
            if (Steady::now() > deadline) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &st, 0);
                return r;
            }
            std::this_thread::sleep_for(2ms);  // polling waitpid, not a fixed wait
        }
        r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - start);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = slurp(out);
        r.stdout_ = slurp(cap_out);
        r.stderr_ = slurp(cap_err);
        r.stdin_seen = slurp(in_copy);
        return r;
    }
};

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST_F(ChainTest, AllowGrantsFromDovecotIpThenExecs) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["allow"] = {{"ok", true}, {"permit", {{"ip", "192.0.2.7"}}}};
    auto r = run(true, {{"IP", "192.0.2.7"}, {"USER", "alice"}, {"LOCAL_IP", "127.0.0.1"}});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(r.stdin_seen, "CLIENT BYTES\n");  // stdin untouched
    EXPECT_EQ(r.stdout_, "");
    EXPECT_EQ(r.stderr_, "");
    auto reqs = d.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0], (nlohmann::json{{"cmd", "allow"}, {"ip", "192.0.2.7"}, {"user", "alice"}}));
}

TEST_F(ChainTest, AllowPrefersTcpRemoteIpAndAuthUser) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["allow"] = {{"ok", true}, {"permit", {{"ip", "x"}}}};
    auto r = run(true, {{"TCPREMOTEIP", "::ffff:198.51.100.9"}, {"IP", "192.0.2.1"}, {"AUTHUSER", "bob"}});
    EXPECT_EQ(r.status, 0);
    auto reqs = d.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0]["ip"], "198.51.100.9");
    EXPECT_EQ(reqs[0]["user"], "bob");
}

TEST_F(ChainTest, AllowCourierRuleNeedsAuthenticated) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["allow"] = {{"ok", true}, {"permit", {{"ip", "x"}}}};
    auto r = run(true, {{"TCPREMOTEIP", "192.0.2.3"}, {"AUTHUSER", "bob"}, {"AUTHARGV0", "pop3d"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_TRUE(d.requests().empty());  // not authenticated: nothing granted
    auto r2 = run(true, {{"TCPREMOTEIP", "192.0.2.3"}, {"AUTHUSER", "bob"}, {"AUTHARGV0", "pop3d"},
                         {"AUTHENTICATED", "bob"}});
    EXPECT_EQ(r2.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(d.requests().size(), 1u);
}

TEST_F(ChainTest, AllowExecsAnywayOnEveryFailure) {
    write_config();
    struct Case {
        const char* what;
        std::map<std::string, std::string> env;
    };
    // No daemon listening at all.
    for (const auto& c : std::vector<Case>{{"daemon down", {{"IP", "192.0.2.7"}}},
                                           {"no address", {{"USER", "alice"}}},
                                           {"bad address", {{"IP", "192.0.2.300"}}},
                                           {"text address", {{"IP", "example.org"}}}}) {
        auto r = run(true, c.env);
        EXPECT_EQ(r.out, "ran relayclient=<unset>\n") << c.what;
        EXPECT_EQ(r.stdin_seen, "CLIENT BYTES\n") << c.what;
        EXPECT_EQ(r.stdout_, "") << c.what;
        EXPECT_EQ(count_lines(r.stderr_), 1) << c.what << ": " << r.stderr_;
        EXPECT_NE(r.stderr_.find("relaypermit: allow --chain:"), std::string::npos) << c.what;
    }
    // Bad and unreadable configs.
    {
        std::ofstream(config()) << "ttl = \n";
        auto r = run(true, {{"IP", "192.0.2.7"}});
        EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
        EXPECT_EQ(count_lines(r.stderr_), 1) << r.stderr_;
        fs::remove(config());
        auto r2 = run(true, {{"IP", "192.0.2.7"}});  // explicit path that does not exist
        EXPECT_EQ(r2.out, "ran relayclient=<unset>\n");
        EXPECT_EQ(count_lines(r2.stderr_), 1) << r2.stderr_;
    }
    // The daemon answers with a refusal.
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["allow"] = {{"ok", false}, {"error", "permission denied"}};
    auto r = run(true, {{"IP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_NE(r.stderr_.find("permission denied"), std::string::npos);
}

TEST_F(ChainTest, AllowFrozenDaemonExecsWithinOneSecond) {
    write_config();
    FakeDaemon d(sock(), "frozen");
    auto r = run(true, {{"IP", "192.0.2.7"}, {"USER", "alice"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_GE(r.elapsed, 900ms);
    EXPECT_LT(r.elapsed, 1800ms);
    EXPECT_EQ(count_lines(r.stderr_), 1) << r.stderr_;
}

TEST_F(ChainTest, AllowBacklogFullExecsWithinOneSecond) {
    write_config();
    // A daemon that never accepts, with its backlog filled: connect() cannot complete.
    FakeDaemon d(sock(), "no-accept", 0);
    std::vector<int> fillers;
    for (int i = 0; i < 8; ++i) {
        const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock().c_str());
        const int rc = ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        fillers.push_back(c);
        if (rc != 0 && errno == EAGAIN) break;  // backlog full
    }
    auto r = run(true, {{"IP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_LT(r.elapsed, 1800ms);
    EXPECT_EQ(count_lines(r.stderr_), 1) << r.stderr_;
    for (int c : fillers) ::close(c);
}

TEST_F(ChainTest, AllowWithoutProgramExitsAfterGrant) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["allow"] = {{"ok", true}, {"permit", {{"ip", "x"}}}};
    EXPECT_EQ(run(true, {{"IP", "192.0.2.7"}}, false).status, 0);
    EXPECT_EQ(run(true, {}, false).status, 2);
}

TEST_F(ChainTest, ExecFailureIs127) {
    write_config();
    auto r = run(true, {}, true, {"/nonexistent/program"});
    EXPECT_EQ(r.status, 127);
}

TEST_F(ChainTest, CheckSetsRelayclientWhenPermitted) {
    write_config("relayclient = \"@relay\"\n");
    FakeDaemon d(sock(), "answer");
    d.replies["check"] = {{"ok", true}, {"permitted", true}, {"kind", "permit"}};
    auto r = run(false, {{"TCPREMOTEIP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=@relay\n");
    EXPECT_EQ(r.stdout_, "");
    EXPECT_EQ(r.stderr_, "");
    EXPECT_EQ(r.stdin_seen, "CLIENT BYTES\n");
    ASSERT_EQ(d.requests().size(), 1u);
    EXPECT_EQ(d.requests()[0], (nlohmann::json{{"cmd", "check"}, {"ip", "192.0.2.7"}}));
}

TEST_F(ChainTest, CheckDefaultRelayclientIsEmpty) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["check"] = {{"ok", true}, {"permitted", true}};
    EXPECT_EQ(run(false, {{"TCPREMOTEIP", "192.0.2.7"}}).out, "ran relayclient=\n");
}

TEST_F(ChainTest, CheckNotPermittedExecsUnchanged) {
    write_config();
    FakeDaemon d(sock(), "answer");
    d.replies["check"] = {{"ok", true}, {"permitted", false}};
    auto r = run(false, {{"TCPREMOTEIP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(r.stderr_, "");
    // An upstream RELAYCLIENT (tcprules) is left alone and the daemon is not asked.
    auto r2 = run(false, {{"TCPREMOTEIP", "192.0.2.7"}, {"RELAYCLIENT", "x"}});
    EXPECT_EQ(r2.out, "ran relayclient=x\n");
    EXPECT_EQ(d.requests().size(), 1u);
}

TEST_F(ChainTest, CheckFallsBackToReadOnlyStoreWhenDaemonFrozen) {
    write_config();
    {
        fs::create_directories(dir.path / "state");
        auto st = store::open_store({(dir.path / "state").string(), "", "", false});
        ASSERT_TRUE(st.has_value()) << st.error().message;
        const auto now = core::SystemClock().now();
        std::vector<core::Permit> permits = {
            {core::Cidr::host(*core::Address::parse("192.0.2.7")), "alice", "test", now, now + std::chrono::minutes(10)}};
        ASSERT_TRUE((*st)->grant(permits, {}, now).has_value());
    }
    FakeDaemon d(sock(), "frozen");
    auto r = run(false, {{"TCPREMOTEIP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=\n");
    EXPECT_LT(r.elapsed, 1800ms);
    EXPECT_NE(r.stderr_.find("read-only"), std::string::npos) << r.stderr_;
    auto r2 = run(false, {{"TCPREMOTEIP", "192.0.2.8"}});
    EXPECT_EQ(r2.out, "ran relayclient=<unset>\n");
}

TEST_F(ChainTest, CheckFallsBackToStaticAllowWhenDaemonDown) {
    write_config("allow = [\"203.0.113.0/24\"]\n");
    auto r = run(false, {{"TCPREMOTEIP", "203.0.113.5"}});
    EXPECT_EQ(r.out, "ran relayclient=\n");
}

TEST_F(ChainTest, CheckExecsUnchangedOnFailures) {
    write_config("state_dir = \"/nonexistent/relaypermit\"\n");  // duplicate key: bad config
    auto r = run(false, {{"TCPREMOTEIP", "192.0.2.7"}});
    EXPECT_EQ(r.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(count_lines(r.stderr_), 1) << r.stderr_;
    write_config();
    auto r2 = run(false, {});
    EXPECT_EQ(r2.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(count_lines(r2.stderr_), 1) << r2.stderr_;
    auto r3 = run(false, {{"TCPREMOTEIP", "not-an-ip"}});
    EXPECT_EQ(r3.out, "ran relayclient=<unset>\n");
    EXPECT_EQ(count_lines(r3.stderr_), 1) << r3.stderr_;
}

}  // namespace
}  // namespace rp::cli
