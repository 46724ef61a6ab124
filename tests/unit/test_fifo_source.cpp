// FifoSource: creation and refusal of paths, a 1M-line flood at full speed with the downstream
// stuck (the writer is never held up, noise is filtered, drops are counted) and working (every
// login once), a writer throttled to the stated rate (nothing lost), a pipe passed by the service
// manager, a slow downstream, over-long lines and store failures. Real named pipes in a temporary
// directory; the loop runs until a condition holds or a deadline passes (no fixed sleeps), and no
// assertion depends on the host's speed.
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
    cfg.type = rp::config::SourceType::fifo;
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

// The parser with a candidate filter, as the daemon builds it from the matcher's prefilter: only
// "LOGIN " lines can be logins.
rp::sources::LineParser filtered_parser() {
    return rp::sources::LineParser(parse_logins, [](std::string_view lines,
                                                    const std::function<void(std::size_t, std::size_t)>& keep) {
        for (std::size_t pos = 0; pos < lines.size();) {
            const auto end = std::min(lines.find('\n', pos), lines.size());
            if (lines.substr(pos, end - pos).starts_with("LOGIN ")) keep(pos, end);
            pos = end + 1;
        }
    });
}

std::string flood_line(std::size_t i, std::size_t login_every) {
    if (i % login_every == 0) return "LOGIN 198.51.100." + std::to_string(i % 250) + " u" + std::to_string(i) + "\n";
    return "Nov 22 00:31:13 mx postfix/smtpd[123]: connect from unknown[203.0.113.7] line " + std::to_string(i) + "\n";
}

// Each delivered login once, and only logins the flood holds.
void expect_each_once(const std::vector<LoginEvent>& events, std::size_t total, std::size_t login_every) {
    std::vector<int> seen(total, 0);
    for (const auto& e : events) {
        ASSERT_TRUE(e.user.starts_with("u"));
        const auto i = std::stoul(e.user.substr(1));
        ASSERT_LT(i, total);
        ASSERT_EQ(i % login_every, 0U);
        ASSERT_EQ(++seen[i], 1) << "duplicate " << e.user;
    }
}

// Writes `total` flood lines from this thread through a non-blocking descriptor. When the pipe is
// full it turns the loop once: the source must then make room, whatever the downstream does (a
// writer that needed anything else would block). Host speed does not matter: nothing is timed.
std::size_t write_flood_turning_loop(rp::util::EventLoop& loop, const std::string& path, std::size_t total,
                                     std::size_t login_every) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    std::string chunk;
    std::size_t logins = 0, stuck_turns = 0;
    auto flush = [&] {
        std::size_t off = 0;
        while (off < chunk.size()) {
            const ssize_t w = ::write(fd, chunk.data() + off, chunk.size() - off);
            if (w > 0) {
                off += static_cast<std::size_t>(w);
                stuck_turns = 0;
                continue;
            }
            ASSERT_TRUE(w < 0 && errno == EAGAIN) << std::strerror(errno);
            ASSERT_LT(++stuck_turns, 3U) << "the source left the pipe full";
            loop.run_once(0ms);
        }
        chunk.clear();
    };
    for (std::size_t i = 0; i < total; ++i) {
        if (i % login_every == 0) ++logins;
        const auto line = flood_line(i, login_every);
        if (chunk.size() + line.size() > 4096) flush();  // syslogd-sized writes
        chunk += line;
    }
    flush();
    ::close(fd);
    return logins;
}

// Issue 12 item 16, at full speed: 1M lines with 2% logins; the downstream is stuck (every
// deliver() fails) while they arrive. The writer is never held up, noise is filtered before
// queuing and counted, candidates beyond the backlog are counted as dropped, and when the store
// recovers every login is either delivered once or counted as dropped.
TEST_F(FifoSourceTest, StuckDownstreamWriterNeverBlocksOnlyNoiseFilteredDropsCounted) {
    FifoOptions opts;
    opts.max_backlog_bytes = 64 * 1024;  // ~2,500 of the 20,000 login lines
    opts.retry_delay = 1ms;
    FifoSource src("fifo:test", path_, filtered_parser(), sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    sink_.fail = true;
    constexpr std::size_t total = 1'000'000, every = 50;
    const std::size_t logins = write_flood_turning_loop(loop_, path_, total, every);
    ASSERT_TRUE(run_until([&] { return src.counters().lines == total; }));
    EXPECT_EQ(src.counters().filtered, total - logins) << "every noise line is filtered, no login line";
    EXPECT_GT(src.counters().dropped, 0U);
    EXPECT_LE(src.backlog_bytes(), opts.max_backlog_bytes);
    sink_.fail = false;
    ASSERT_TRUE(run_until([&] { return src.backlog_bytes() == 0 && sink_.events.size() + src.counters().dropped == logins; }));
    expect_each_once(sink_.events, total, every);
    EXPECT_EQ(src.counters().matches, sink_.events.size());
    std::printf("[ info ] stuck downstream: %zu logins delivered, %llu dropped (counted), %llu noise lines filtered\n",
                sink_.events.size(), static_cast<unsigned long long>(src.counters().dropped),
                static_cast<unsigned long long>(src.counters().filtered));
}

// The same flood with a working store: noise never takes a candidate's place, so every login
// mixed into it is delivered exactly once, however fast the writer or slow the host.
TEST_F(FifoSourceTest, FloodOfNoiseEveryLoginOnce) {
    FifoSource src("fifo:test", path_, filtered_parser(), sink_, clock_);
    ASSERT_TRUE(src.start(loop_));
    constexpr std::size_t total = 1'000'000, every = 50;
    const std::size_t logins = write_flood_turning_loop(loop_, path_, total, every);
    ASSERT_TRUE(run_until([&] { return src.counters().lines == total && src.backlog_bytes() == 0; }));
    ASSERT_EQ(sink_.events.size(), logins);
    expect_each_once(sink_.events, total, every);
    EXPECT_EQ(src.counters().dropped, 0U);
    EXPECT_EQ(src.counters().filtered, total - logins);
    EXPECT_EQ(src.counters().matches, logins);
}

// "Nothing lost below a stated rate" (docs/journald.md): a blocking writer thread throttled to
// 20,000 lines/s (2% logins), a rate any host meets with room to spare, loses nothing. The
// writer's pace comes from the clock; the assertions are on counts only.
TEST_F(FifoSourceTest, ThrottledWriterLosesNothing) {
    FifoSource src("fifo:test", path_, filtered_parser(), sink_, clock_);
    ASSERT_TRUE(src.start(loop_));
    constexpr std::size_t total = 40'000, every = 50, rate = 20'000;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);  // blocking, like syslogd
        ASSERT_GE(fd, 0);
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < total; i += 40) {  // 40 lines per write
            std::string chunk;
            for (std::size_t j = i; j < std::min(total, i + 40); ++j) chunk += flood_line(j, every);
            std::this_thread::sleep_until(t0 + std::chrono::microseconds(i * 1'000'000 / rate));
            for (std::size_t off = 0; off < chunk.size();) {
                const ssize_t w = ::write(fd, chunk.data() + off, chunk.size() - off);
                ASSERT_GT(w, 0);
                off += static_cast<std::size_t>(w);
            }
        }
        ::close(fd);
        done = true;
    });
    const bool finished = run_until([&] { return done.load() && src.counters().lines == total && src.backlog_bytes() == 0; }, 120s);
    writer.join();
    ASSERT_TRUE(finished) << "lines " << src.counters().lines;
    EXPECT_EQ(src.counters().dropped, 0U);
    ASSERT_EQ(sink_.events.size(), total / every);
    expect_each_once(sink_.events, total, every);
}

// A pipe passed by the service manager (ListenFIFO=) is read instead of the path; what it held
// before start is a backlog, what arrives later is live.
TEST_F(FifoSourceTest, PipeFromServiceManagerIsUsedAndItsContentIsBacklog) {
    ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    rp::util::UniqueFd held(::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));  // what systemd holds
    ASSERT_TRUE(held);
    const std::string before = "LOGIN 192.0.2.1 early\nnoise\n";
    ASSERT_EQ(::write(held.get(), before.data(), before.size()), static_cast<ssize_t>(before.size()));
    const rp::util::ListenFds passed({{held.get(), "mailfifo"}});
    FifoOptions opts;
    opts.inherited = &passed;
    FifoSource src("mailfifo", dir_ + "/elsewhere", filtered_parser(), sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/elsewhere")) << "the path is not created when a pipe was passed";
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 1; }));
    EXPECT_TRUE(sink_.events[0].backlog);
    const std::string after = "LOGIN 192.0.2.2 late\n";
    ASSERT_EQ(::write(held.get(), after.data(), after.size()), static_cast<ssize_t>(after.size()));
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; }));
    EXPECT_EQ(sink_.events[1].user, "late");
    EXPECT_FALSE(sink_.events[1].backlog);
    EXPECT_EQ(src.counters().filtered, 1U);
    src.stop(loop_);
}

// Matched by inode when the descriptor's name is the socket unit's default.
TEST_F(FifoSourceTest, PipeFromServiceManagerMatchedByInode) {
    ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    rp::util::UniqueFd held(::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(held);
    const rp::util::ListenFds passed({{held.get(), "relaypermit-fifo.socket"}});
    FifoOptions opts;
    opts.inherited = &passed;
    FifoSource src("fifo:test", path_, filtered_parser(), sink_, clock_, opts);
    ASSERT_TRUE(src.start(loop_));
    const int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0);
    const std::string data = "LOGIN 192.0.2.3 carol\n";
    ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(w);  // all writers gone: a read-only passed pipe must not turn into an endless EOF
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 1; }));
    EXPECT_FALSE(sink_.events[0].backlog);
    for (int i = 0; i < 5; ++i) loop_.run_once(0ms);
    EXPECT_EQ(src.counters().lines, 1U);
    src.stop(loop_);
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
