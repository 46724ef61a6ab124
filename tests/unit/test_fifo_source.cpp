// FifoSource: creation and refusal of paths, a 1M-line flood from a writer thread (every login
// exactly once, the writer never blocked for long), a slow downstream (lines dropped and counted,
// the writer still never blocked), over-long lines and store failures. Real named pipes in a
// temporary directory; the loop runs until a condition holds or a deadline passes (no fixed sleeps).
#include "sources/fifo_source.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using rp::core::LoginEvent;
using rp::sources::FifoOptions;
using rp::sources::FifoSource;

class FakeSink final : public rp::sources::LoginSink {
public:
    rp::core::Status deliver(std::span<const LoginEvent> batch, const rp::core::Checkpoint& cp) override {
        ++attempts;
        if (slow.count() > 0) std::this_thread::sleep_for(slow);  // a slow downstream, on purpose
        if (fail) return rp::core::make_error("store is down");
        EXPECT_TRUE(cp.key.empty());
        events.insert(events.end(), batch.begin(), batch.end());
        return rp::core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string&) const override { return std::nullopt; }

    std::vector<LoginEvent> events;
    int attempts = 0;
    bool fail = false;
    std::chrono::milliseconds slow{0};
};

// "LOGIN <ip> <user>" is a login; anything else is not.
void parse_logins(std::string_view block, rp::core::Time now, std::vector<LoginEvent>& out) {
    while (!block.empty()) {
        const auto nl = block.find('\n');
        EXPECT_NE(nl, std::string_view::npos) << "the parser must only get complete lines";
        if (nl == std::string_view::npos) return;
        std::string_view line = block.substr(0, nl);
        block.remove_prefix(nl + 1);
        if (!line.starts_with("LOGIN ")) continue;
        line.remove_prefix(6);
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos) continue;
        auto ip = rp::core::Address::parse(line.substr(0, sp));
        if (!ip) continue;
        out.push_back(LoginEvent{*ip, std::string(line.substr(sp + 1)), "test", "", now});
    }
}

class FifoSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);
        char tmpl[] = "/tmp/rp_fifo_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/pipe";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    template <typename Pred>
    bool run_until(Pred pred, std::chrono::seconds deadline = 30s) {
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > end) return false;
            loop_.run_once(20ms);
        }
        return true;
    }

    std::string dir_, path_;
    rp::util::EventLoop loop_;
    rp::core::ManualClock clock_{rp::core::from_unix_seconds(1'800'000'000)};
    FakeSink sink_;
};

// One writer: lines in writes of at most 4 KiB (as a syslog daemon writes messages), recording the
// longest time one write() call was blocked.
struct Writer {
    std::atomic<bool> done{false};
    std::atomic<long long> max_block_us{0};
    std::size_t logins = 0;
    std::thread thread;

    void start(const std::string& path, std::size_t total, std::size_t login_every) {
        for (std::size_t i = 0; i < total; ++i)
            if (i % login_every == 0) ++logins;
        thread = std::thread([this, path, total, login_every] {
            const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);  // a blocking writer, like syslogd
            ASSERT_GE(fd, 0);
            std::string chunk;
            auto flush = [&] {
                const auto t0 = std::chrono::steady_clock::now();
                std::size_t off = 0;
                while (off < chunk.size()) {
                    const ssize_t w = ::write(fd, chunk.data() + off, chunk.size() - off);
                    ASSERT_GT(w, 0);
                    off += static_cast<std::size_t>(w);
                }
                const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
                if (us > max_block_us.load()) max_block_us.store(us);
                chunk.clear();
            };
            for (std::size_t i = 0; i < total; ++i) {
                std::string line;
                if (i % login_every == 0)
                    line = "LOGIN 198.51.100." + std::to_string(i % 250) + " u" + std::to_string(i) + "\n";
                else
                    line = "Nov 22 00:31:13 mx postfix/smtpd[123]: connect from unknown[203.0.113.7] line " + std::to_string(i) + "\n";
                if (chunk.size() + line.size() > 4096) flush();
                chunk += line;
            }
            flush();
            ::close(fd);
            done = true;
        });
    }
};

TEST_F(FifoSourceTest, CreatesMissingPipeWithMode) {
    FifoOptions opts;
    opts.mode = 0640;
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_)) << "start";
    struct stat st {};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0640U);
    // A writer finds a reader at once: a non-blocking open for writing does not fail with ENXIO.
    const int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0) << std::strerror(errno);
    const std::string data = "LOGIN 192.0.2.1 alice\nnoise\nLOGIN 2001:db8::1 bob\n";
    ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(w);  // a writer closing is not EOF for us
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; }));
    EXPECT_EQ(sink_.events[0].user, "alice");
    EXPECT_EQ(sink_.events[1].user, "bob");
    EXPECT_EQ(sink_.events[0].source, "fifo:test");
    EXPECT_EQ(src.counters().lines, 3U);
    EXPECT_EQ(src.counters().matches, 2U);
    src.stop(loop_);
    EXPECT_EQ(::lstat(path_.c_str(), &st), 0) << "the pipe stays";
}

TEST_F(FifoSourceTest, ExistingPipeIsUsedAsIs) {
    ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_);
    ASSERT_TRUE(src.start(loop_));
    struct stat st {};
    ASSERT_EQ(::stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U) << "an existing pipe's mode is the admin's";
}

TEST_F(FifoSourceTest, RefusesRegularFileAndSymlink) {
    { FILE* f = std::fopen(path_.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_);
    auto st = src.start(loop_);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("not a FIFO"), std::string::npos) << st.error().message;

    const std::string target = dir_ + "/real";
    ASSERT_EQ(::mkfifo(target.c_str(), 0600), 0);
    const std::string link = dir_ + "/link";
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    FifoSource src2("fifo:test", link, parse_logins, sink_, clock_);
    auto st2 = src2.start(loop_);
    ASSERT_FALSE(st2);
    EXPECT_NE(st2.error().message.find("symbolic link"), std::string::npos) << st2.error().message;
}

TEST_F(FifoSourceTest, FactoryChecksConfig) {
    rp::config::SourceConfig cfg;
    cfg.type = "fifo";
    cfg.name = "fifo:x";
    EXPECT_FALSE(rp::sources::open_fifo_source(cfg, parse_logins, sink_, clock_)) << "path required";
    cfg.path = path_;
    cfg.group = "no-such-group-relaypermit";
    EXPECT_FALSE(rp::sources::open_fifo_source(cfg, parse_logins, sink_, clock_));
    cfg.group = "";
    auto src = rp::sources::open_fifo_source(cfg, parse_logins, sink_, clock_);
    ASSERT_TRUE(src);
    ASSERT_TRUE((*src)->start(loop_));
    (*src)->stop(loop_);
}

// The flood from the issue: 1M lines, 2% logins, while the loop runs.
TEST_F(FifoSourceTest, MillionLinesEveryLoginOnceWriterNeverBlocked) {
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_);
    ASSERT_TRUE(src.start(loop_));
    constexpr std::size_t total = 1'000'000;
    Writer w;
    w.start(path_, total, 50);
    const bool finished = run_until([&] { return w.done.load() && src.counters().lines == total && src.backlog_bytes() == 0; }, 120s);
    w.thread.join();
    ASSERT_TRUE(finished) << "lines " << src.counters().lines;
    ASSERT_EQ(sink_.events.size(), w.logins);
    std::vector<int> seen(total, 0);
    for (const auto& e : sink_.events) {
        ASSERT_TRUE(e.user.starts_with("u"));
        const auto i = std::stoul(e.user.substr(1));
        ASSERT_LT(i, total);
        ++seen[i];
    }
    for (std::size_t i = 0; i < total; i += 50) ASSERT_EQ(seen[i], 1) << "login u" << i;
    EXPECT_EQ(src.counters().dropped, 0U);
    EXPECT_EQ(src.counters().matches, w.logins);
    // Bounded: one 4 KiB write never waits for the parser (generous for a shared 2-core machine).
    EXPECT_LT(w.max_block_us.load(), 1'000'000) << "writer blocked for " << w.max_block_us.load() << " us";
    std::printf("[ info ] 1M lines: longest write() block %lld us\n", w.max_block_us.load());
}

// A downstream far slower than the writer: lines are dropped and counted, the pipe never fills.
TEST_F(FifoSourceTest, SlowDownstreamDropsInsteadOfBlockingWriter) {
    FifoOptions opts;
    opts.max_backlog_bytes = 64 * 1024;
    opts.batch_bytes = 4096;
    sink_.slow = 5ms;
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    constexpr std::size_t total = 100'000;
    Writer w;
    w.start(path_, total, 10);
    const bool finished = run_until([&] { return w.done.load() && src.counters().lines == total && src.backlog_bytes() == 0; }, 120s);
    w.thread.join();
    ASSERT_TRUE(finished) << "lines " << src.counters().lines;
    EXPECT_GT(src.counters().dropped, 0U);
    EXPECT_LT(sink_.events.size(), w.logins);
    std::vector<int> seen(total, 0);
    for (const auto& e : sink_.events) ASSERT_EQ(++seen[std::stoul(e.user.substr(1))], 1) << "duplicate " << e.user;
    EXPECT_LT(w.max_block_us.load(), 1'000'000) << "writer blocked for " << w.max_block_us.load() << " us";
    std::printf("[ info ] slow sink: dropped %llu lines, delivered %zu of %zu logins, longest write() block %lld us\n",
                static_cast<unsigned long long>(src.counters().dropped), sink_.events.size(), w.logins,
                w.max_block_us.load());
}

TEST_F(FifoSourceTest, OverlongLinesAreSkippedWhole) {
    FifoOptions opts;
    opts.max_line_bytes = 100;
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    const int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0);
    // The tail of the long line looks like a login: it must not be parsed on its own.
    const std::string data = "LOGIN 192.0.2.1 first\n" + std::string(300, 'x') + "LOGIN 192.0.2.66 forged\nLOGIN 192.0.2.2 second\n";
    ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; }));
    EXPECT_EQ(sink_.events[0].user, "first");
    EXPECT_EQ(sink_.events[1].user, "second");
    EXPECT_EQ(src.counters().malformed, 1U);
    EXPECT_EQ(src.counters().lines, 3U);
    ::close(w);
}

TEST_F(FifoSourceTest, FailedDeliveryIsRetried) {
    FifoOptions opts;
    opts.retry_delay = 10ms;
    FifoSource src("fifo:test", path_, parse_logins, sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    sink_.fail = true;
    const int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0);
    const std::string data = "LOGIN 192.0.2.1 alice\n";
    ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_TRUE(run_until([&] { return sink_.attempts >= 3; }));
    sink_.fail = false;
    ASSERT_TRUE(run_until([&] { return !sink_.events.empty(); }));
    loop_.run_once(0ms);
    EXPECT_EQ(sink_.events.size(), 1U);
    ::close(w);
}

}  // namespace
