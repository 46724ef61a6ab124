// FileTailSource: appends, partial lines, rotation (rename, copytruncate, delete+recreate, while
// stopped: one case of each on real files and inotify, the others in memory in
// test_file_tail_restore.cpp), restarts, bad input and store failures. Real files in a temporary
// directory; the event loop is driven until a condition holds or a deadline passes (no fixed sleeps).
#include "sources/file_tail_source.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using rp::core::LoginEvent;
using rp::sources::FileTailOptions;
using rp::sources::FileTailSource;

// Stores events and the last checkpoint together, like PermitStore::grant; can be told to fail.
class FakeSink final : public rp::sources::LoginSink {
public:
    rp::core::Status deliver(std::span<const LoginEvent> batch, const rp::core::Checkpoint& cp) override {
        ++attempts;
        if (fail) return rp::core::make_error("store is down");
        EXPECT_EQ(cp.key, "file:test");
        events.insert(events.end(), batch.begin(), batch.end());
        if (progress != nullptr) progress->store(events.size());
        checkpoint = cp.value;
        ++deliveries;
        return rp::core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string& key) const override {
        EXPECT_EQ(key, "file:test");
        return checkpoint;
    }

    std::vector<std::string> users() const {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.user);
        return out;
    }

    std::vector<LoginEvent> events;
    std::atomic<std::size_t>* progress = nullptr;  // for another thread to watch
    std::optional<std::string> checkpoint;
    int attempts = 0;
    int deliveries = 0;
    bool fail = false;
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

std::string login(const std::string& user, int ip = 1) {
    return "LOGIN 192.0.2." + std::to_string(ip) + " " + user + "\n";
}

// u<from> .. u<to>, one login line each.
std::string logins(int from, int to) {
    std::string s;
    for (int i = from; i <= to; ++i) s += login("u" + std::to_string(i), i % 250 + 1);
    return s;
}

std::vector<std::string> names(int from, int to) {
    std::vector<std::string> v;
    for (int i = from; i <= to; ++i) v.push_back("u" + std::to_string(i));
    return v;
}

// A log writer that keeps its file open like rsyslog: after a rename it writes to the old file.
class Writer {
public:
    explicit Writer(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {
        EXPECT_GE(fd_, 0) << path;
    }
    ~Writer() {
        if (fd_ >= 0) ::close(fd_);
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    void write(const std::string& s) {
        std::size_t done = 0;
        while (done < s.size()) {
            const ssize_t n = ::write(fd_, s.data() + done, s.size() - done);
            ASSERT_GT(n, 0);
            done += static_cast<std::size_t>(n);
        }
    }

private:
    int fd_;
};

void append(const std::string& path, const std::string& s) { Writer(path).write(s); }

class FileTailTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/rp-filetail-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        log_ = dir_ + "/mail.log";
        opts_.drain_grace = 300ms;
        opts_.retry_delay = 50ms;
        opts_.checkpoint_interval = 20ms;
    }
    void TearDown() override {
        src_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void start() {
        if (src_) src_->stop(loop_);
        src_ = std::make_unique<FileTailSource>("file:test", log_, parse_logins, sink_, clock_, opts_);
        auto st = src_->start(loop_);
        ASSERT_TRUE(st.has_value()) << st.error().message;
    }
    void stop() {
        src_->stop(loop_);
        src_.reset();
    }

    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            loop_.run_once(10ms);
        }
        return true;
    }
    // Gives the source time to do something it must not do (bounded; for negative checks).
    void run_for(std::chrono::milliseconds d) {
        run_until([] { return false; }, d);
    }
    bool wait_events(std::size_t n) {
        return run_until([&] { return sink_.events.size() >= n; });
    }
    // Waits until the stored position covers everything read (nothing left uncommitted).
    bool wait_settled() {
        return run_until([&] { return sink_.checkpoint && checkpoint_offset() == file_size(log_); });
    }
    std::uint64_t checkpoint_offset() const {
        auto j = nlohmann::json::parse(*sink_.checkpoint);
        return j.contains("offset") ? j["offset"].get<std::uint64_t>() : 0;
    }
    static std::uint64_t file_size(const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    }

    std::string dir_;
    std::string log_;
    FileTailOptions opts_;
    FakeSink sink_;
    rp::core::SystemClock clock_;
    rp::util::EventLoop loop_;
    std::unique_ptr<FileTailSource> src_;
};

TEST_F(FileTailTest, FirstStartReadsWholeFile) {
    append(log_, logins(1, 3) + "some other line\n");
    start();
    ASSERT_TRUE(wait_events(3));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 3));
    EXPECT_EQ(sink_.events[0].source, "file:test");
    const auto c = src_->counters();
    EXPECT_EQ(c.lines, 4u);
    EXPECT_EQ(c.matches, 3u);
    EXPECT_EQ(c.malformed, 0u);
    auto j = nlohmann::json::parse(*sink_.checkpoint);
    for (const char* k : {"dev", "ino", "offset", "fp", "fp_len"}) EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["fp_len"].get<std::uint64_t>(), file_size(log_));  // shorter than 256 bytes
}

TEST_F(FileTailTest, AppendIsSeen) {
    append(log_, "");
    start();
    ASSERT_TRUE(run_until([&] { return sink_.deliveries >= 1; }));
    Writer w(log_);
    for (int i = 1; i <= 5; ++i) {
        w.write(login("u" + std::to_string(i)));
        ASSERT_TRUE(wait_events(static_cast<std::size_t>(i))) << i;
    }
    EXPECT_EQ(sink_.users(), names(1, 5));
}

TEST_F(FileTailTest, WaitsForMissingFile) {
    start();
    EXPECT_FALSE(src_->following());
    append(log_, login("u1"));
    ASSERT_TRUE(wait_events(1));
    EXPECT_TRUE(src_->following());
}

TEST_F(FileTailTest, MissingDirectoryIsAnError) {
    FileTailSource s("file:test", dir_ + "/nope/mail.log", parse_logins, sink_, clock_, opts_);
    auto st = s.start(loop_);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message.find(dir_ + "/nope"), std::string::npos) << st.error().message;
}

TEST_F(FileTailTest, PartialLineIsHeldUntilItsNewline) {
    append(log_, login("u1"));
    start();
    ASSERT_TRUE(wait_events(1));
    const std::uint64_t before = file_size(log_);
    append(log_, "LOGIN 192.0.2.7 u2");  // no newline yet: "u2" could still become "u2x"
    run_for(150ms);
    EXPECT_EQ(sink_.events.size(), 1u);
    EXPECT_EQ(checkpoint_offset(), before);

    // A restart while the line is incomplete resumes before it.
    stop();
    append(log_, "x");
    start();
    run_for(100ms);
    EXPECT_EQ(sink_.events.size(), 1u);
    append(log_, "\n");
    ASSERT_TRUE(wait_events(2));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2x"}));
}

TEST_F(FileTailTest, RenameRotationDrainsTheOldFile) {
    auto old_writer = std::make_unique<Writer>(log_);
    old_writer->write(logins(1, 2));
    start();
    ASSERT_TRUE(wait_events(2));

    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    Writer new_writer(log_);
    new_writer.write(logins(3, 3));
    ASSERT_TRUE(wait_events(3));
    EXPECT_EQ(src_->draining_files(), 1u);
    // The writer has not reopened yet (no HUP): it still appends to the renamed file.
    old_writer->write(logins(4, 5));
    ASSERT_TRUE(wait_events(5));
    old_writer.reset();
    ASSERT_TRUE(run_until([&] { return src_->draining_files() == 0; }));
    new_writer.write(logins(6, 6));
    ASSERT_TRUE(wait_events(6));
    ASSERT_TRUE(wait_settled());
    run_for(50ms);
    auto got = sink_.users();
    EXPECT_EQ(got, (std::vector<std::string>{"u1", "u2", "u3", "u4", "u5", "u6"}));
}

TEST_F(FileTailTest, CopyTruncate) {
    append(log_, logins(1, 3));
    start();
    ASSERT_TRUE(wait_events(3));
    std::filesystem::copy_file(log_, log_ + ".1");
    ASSERT_EQ(::truncate(log_.c_str(), 0), 0);
    append(log_, logins(4, 4));
    ASSERT_TRUE(wait_events(4));
    append(log_, logins(5, 6));
    ASSERT_TRUE(wait_events(6));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 6));
}

TEST_F(FileTailTest, DeleteAndRecreate) {
    append(log_, logins(1, 2));
    start();
    ASSERT_TRUE(wait_events(2));
    ASSERT_EQ(::unlink(log_.c_str()), 0);
    append(log_, logins(3, 4));
    ASSERT_TRUE(wait_events(4));
    append(log_, logins(5, 5));
    ASSERT_TRUE(wait_events(5));
    ASSERT_TRUE(run_until([&] { return src_->draining_files() == 0; }));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 5));
}

TEST_F(FileTailTest, RotationWhileStopped) {
    append(log_, logins(1, 2));
    start();
    ASSERT_TRUE(wait_events(2));
    stop();
    append(log_, logins(3, 4));                                   // before the rotation
    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);  // logrotate (delaycompress)
    append(log_ + ".1", logins(5, 5));                            // the writer's late line
    append(log_ + ".2.gz", "compressed junk\n");                  // not ours: other inode
    append(log_, logins(6, 7));                                   // the new file
    start();
    ASSERT_TRUE(wait_events(7));
    ASSERT_TRUE(run_until([&] { return src_->draining_files() == 0; }));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 7));

    // Once more, from the new file's checkpoint.
    stop();
    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    append(log_, logins(8, 8));
    start();
    ASSERT_TRUE(wait_events(8));
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 8));
}

TEST_F(FileTailTest, StopWhileDrainingResumesBothFiles) {
    auto old_writer = std::make_unique<Writer>(log_);
    old_writer->write(logins(1, 1));
    opts_.drain_grace = 10s;
    start();
    ASSERT_TRUE(wait_events(1));
    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    append(log_, logins(2, 2));
    ASSERT_TRUE(wait_events(2));
    ASSERT_EQ(src_->draining_files(), 1u);
    stop();
    auto j = nlohmann::json::parse(*sink_.checkpoint);
    ASSERT_TRUE(j.contains("draining")) << *sink_.checkpoint;
    old_writer->write(logins(3, 3));  // late line in the rotated file while we were stopped
    append(log_, logins(4, 4));
    opts_.drain_grace = 300ms;
    start();
    ASSERT_TRUE(wait_events(4));
    ASSERT_TRUE(run_until([&] { return src_->draining_files() == 0; }));
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 4));
}

TEST_F(FileTailTest, RestartResumesWithoutDuplicates) {
    append(log_, logins(1, 1));
    start();
    ASSERT_TRUE(wait_events(1));
    append(log_, "noise\n" + logins(2, 2) + "noise\n");
    ASSERT_TRUE(wait_events(2));
    stop();
    append(log_, logins(3, 3));
    start();
    ASSERT_TRUE(wait_events(3));
    ASSERT_TRUE(wait_settled());
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 3));
}

TEST_F(FileTailTest, CrashKeepsExactlyOnce) {
    // A crash leaves the store as of its last deliver(): any snapshot of the sink is a state
    // the daemon can restart from.
    opts_.checkpoint_interval = 10s;  // lines without events leave the stored position behind
    append(log_, logins(1, 2));
    start();
    ASSERT_TRUE(wait_events(2));
    append(log_, "noise\nnoise\n");
    run_for(50ms);
    FakeSink snapshot = sink_;
    append(log_, logins(3, 4));
    ASSERT_TRUE(wait_events(4));
    src_.reset();  // (the destructor stores the position; the snapshot does not have it)
    sink_ = snapshot;
    append(log_, logins(5, 5));
    start();
    ASSERT_TRUE(wait_events(5));
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 5));
}

TEST_F(FileTailTest, MegabyteLineThenLogin) {
    std::string huge(1024 * 1024, 'x');
    huge += " LOGIN 192.0.2.66 evil";  // the tail of the line must never be parsed as a line
    append(log_, huge + "\n" + logins(1, 1));
    start();
    ASSERT_TRUE(wait_events(1));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 1));
    const auto c = src_->counters();
    EXPECT_EQ(c.malformed, 1u);
    EXPECT_GE(c.dropped, 1024u * 1024u);
    EXPECT_EQ(c.matches, 1u);
}

TEST_F(FileTailTest, OverLongLineAcrossAppendsAndRestart) {
    append(log_, logins(1, 1));
    start();
    ASSERT_TRUE(wait_events(1));
    for (int i = 0; i < 4; ++i) append(log_, std::string(50 * 1024, 'y'));  // 200 KB, no newline
    ASSERT_TRUE(run_until([&] {
        return sink_.checkpoint && nlohmann::json::parse(*sink_.checkpoint).value("skip", false);
    }));
    stop();
    start();
    append(log_, " LOGIN 192.0.2.66 evil\n" + logins(2, 2));  // ends the over-long line
    ASSERT_TRUE(wait_events(2));
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 2));
}

TEST_F(FileTailTest, BinaryJunk) {
    std::mt19937 rng(42);
    std::string junk;
    for (int i = 0; i < 300000; ++i) junk += static_cast<char>(rng() & 0xff);
    junk += '\n';
    std::string nul_line("LOGIN 192.0.2.9 a\0b\n", 20);
    append(log_, logins(1, 1) + junk + logins(2, 2) + nul_line + logins(3, 3));
    start();
    ASSERT_TRUE(run_until([&] {
        return sink_.events.size() >= 4;
    }));
    ASSERT_TRUE(wait_settled());
    ASSERT_EQ(sink_.events.size(), 4u);
    EXPECT_EQ(sink_.events[0].user, "u1");
    EXPECT_EQ(sink_.events[1].user, "u2");
    EXPECT_EQ(sink_.events[2].user, std::string("a\0b", 3));  // passed on; the parser decides
    EXPECT_EQ(sink_.events[3].user, "u3");
}

TEST_F(FileTailTest, DeliverFailureThenRecovery) {
    append(log_, logins(1, 1));
    start();
    ASSERT_TRUE(wait_events(1));
    sink_.fail = true;
    const int attempts = sink_.attempts;
    append(log_, logins(2, 3));
    ASSERT_TRUE(run_until([&] { return sink_.attempts >= attempts + 1; }));
    append(log_, "noise\n" + logins(4, 4));
    ASSERT_TRUE(run_until([&] { return sink_.attempts >= attempts + 3; }));  // retried, still failing
    EXPECT_EQ(sink_.events.size(), 1u);
    sink_.fail = false;
    ASSERT_TRUE(wait_events(4));
    ASSERT_TRUE(wait_settled());
    run_for(50ms);
    EXPECT_EQ(sink_.users(), names(1, 4));
    EXPECT_EQ(src_->counters().matches, 4u);
    EXPECT_EQ(src_->counters().lines, 5u);
}

TEST_F(FileTailTest, DeliverFailureDuringRotation) {
    auto old_writer = std::make_unique<Writer>(log_);
    old_writer->write(logins(1, 1));
    start();
    ASSERT_TRUE(wait_events(1));
    sink_.fail = true;
    const int attempts = sink_.attempts;
    old_writer->write(logins(2, 2));
    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    append(log_, logins(3, 3));
    ASSERT_TRUE(run_until([&] { return sink_.attempts >= attempts + 2; }));
    old_writer->write(logins(4, 4));
    sink_.fail = false;
    ASSERT_TRUE(wait_events(4));
    ASSERT_TRUE(run_until([&] { return src_->draining_files() == 0; }));
    run_for(50ms);
    auto got = sink_.users();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, names(1, 4));
}

TEST_F(FileTailTest, RotationsUnderAConcurrentWriter) {
    // A writer thread appends continuously and rotates by rename+create every 2000 lines,
    // writing more lines to the renamed file before it reopens (like rsyslog before its HUP).
    // Rotations are far apart in real life: before rotating again the writer waits until the
    // follower has read the new file's first line (two rotations within one wake-up would let
    // the file in between go unseen; see docs/rotation.md).
    constexpr int k_total = 12000;
    std::atomic<std::size_t> progress{0};
    sink_.progress = &progress;
    append(log_, "");
    start();
    std::thread writer([&] {
        auto w = std::make_unique<Writer>(log_);
        auto line = [](int i) { return login("u" + std::to_string(i), i % 250 + 1); };
        for (int i = 1; i <= k_total; ++i) {
            w->write(line(i));
            if (i % 2000 == 1000 && i + 51 <= k_total) {
                const std::string rotated = log_ + "." + std::to_string(i);
                ASSERT_EQ(::rename(log_.c_str(), rotated.c_str()), 0);
                append(log_, "");  // logrotate's create
                for (int k = 0; k < 50; ++k) w->write(line(++i));
                w = std::make_unique<Writer>(log_);  // the HUP
                w->write(line(++i));
                const auto deadline = std::chrono::steady_clock::now() + 10s;
                while (progress.load() < static_cast<std::size_t>(i) && std::chrono::steady_clock::now() < deadline)
                    std::this_thread::yield();
            }
        }
    });
    const bool all = run_until([&] { return sink_.events.size() >= static_cast<std::size_t>(k_total); }, 30s);
    writer.join();
    sink_.progress = nullptr;
    ASSERT_TRUE(all) << sink_.events.size();
    run_for(50ms);
    auto got = sink_.users();
    std::sort(got.begin(), got.end());
    auto want = names(1, k_total);
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
}

TEST_F(FileTailTest, BigCatchUpIsBoundedPerWakeUp) {
    opts_.read_chunk = 4096;
    opts_.max_bytes_per_wakeup = 16 * 1024;
    append(log_, logins(1, 20000));  // ~500 KB
    start();
    ASSERT_TRUE(wait_events(20000));
    ASSERT_TRUE(wait_settled());
    EXPECT_EQ(sink_.users(), names(1, 20000));
    EXPECT_GT(sink_.deliveries, 20);  // delivered in pieces, between which the loop ran
}

TEST_F(FileTailTest, CorruptCheckpointReadsFromStart) {
    append(log_, logins(1, 2));
    sink_.checkpoint = "{\"dev\":\"x\"";
    start();
    ASSERT_TRUE(wait_events(2));
    EXPECT_EQ(sink_.users(), names(1, 2));
}

// Issue 12 item 1: events from what a file held when the source started (a first start, a
// rotation while stopped, an unreadable checkpoint, lines appended while stopped) are a backlog;
// lines appended after the source reached the end are live.
TEST_F(FileTailTest, BacklogFlagMarksWhatWasThereAtStart) {
    auto backlog_of = [&] {
        std::map<std::string, bool> out;
        for (const auto& e : sink_.events) out[e.user] = e.backlog;
        return out;
    };
    append(log_, logins(1, 2));  // first start: the whole file
    start();
    ASSERT_TRUE(wait_events(2));
    ASSERT_TRUE(wait_settled());
    append(log_, logins(3, 3));  // live
    ASSERT_TRUE(wait_events(3));
    stop();
    append(log_, logins(4, 4));  // appended while stopped
    ASSERT_EQ(::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    append(log_ + ".1", logins(5, 5));  // rotated while stopped, with a late line
    append(log_, logins(6, 6));         // the new file
    start();
    ASSERT_TRUE(wait_events(6));
    ASSERT_TRUE(wait_settled());
    append(log_, logins(7, 7));  // live again
    ASSERT_TRUE(wait_events(7));
    stop();
    sink_.checkpoint = "{\"dev\":\"x\"";  // unreadable: read from the start again
    start();
    ASSERT_TRUE(wait_events(9));
    ASSERT_TRUE(wait_settled());
    const std::map<std::string, bool> first{{"u1", true}, {"u2", true}, {"u3", false}, {"u4", true},
                                            {"u5", true}, {"u6", true}, {"u7", true}};
    auto got = backlog_of();
    for (const auto& [user, backlog] : first) EXPECT_EQ(got[user], backlog) << user;
    // The last start re-read u6 and u7 from the new file: a backlog (u7 included).
    EXPECT_TRUE(sink_.events.back().backlog);
    EXPECT_EQ(sink_.events.back().user, "u7");
    EXPECT_FALSE(sink_.events[6].backlog) << sink_.events[6].user;  // u7 appended live
}

// Issue 14: the backlog is read through util::read_range by the path the chooser measured (as
// `scan` reads). Forced read() and forced mmap deliver the same events for a file whose last line
// has no newline (held back), an empty file, and a file that shrinks while its backlog is read
// (mmap: the lost pages are detected, the batch is dropped and read again, no SIGBUS).
TEST_F(FileTailTest, BacklogThroughReadOrMmapDeliversTheSameEvents) {
    opts_.read_chunk = 4096;
    const std::string lines = logins(1, 600);  // ~15 KB: several pages and read() runs
    const auto cut = static_cast<off_t>(logins(1, 300).size());
    struct Case {
        std::string name, text;
        off_t shrink_to;  // -1: no shrink
        std::vector<std::string> want;
    };
    const std::vector<Case> cases{{"tail", lines + "LOGIN 192.0.2.9 no-newline", -1, names(1, 600)},
                                  {"empty", "", -1, {}},
                                  {"shrinks", lines, cut, names(1, 300)}};
    for (const auto& c : cases) {
        std::map<rp::util::ReadPath, std::vector<std::string>> got;
        for (auto path : {rp::util::ReadPath::read, rp::util::ReadPath::mmap}) {
            const std::string file = dir_ + "/" + c.name + std::to_string(static_cast<int>(path)) + ".log";
            append(file, c.text);
            bool shrunk = false;
            // Shrinks the file on its first call, then parses the lines it can still see (a
            // mapped block that lost pages ends in zeros).
            auto parser = [&](std::string_view block, rp::core::Time now, std::vector<LoginEvent>& out) {
                if (c.shrink_to >= 0 && !shrunk) {
                    shrunk = true;
                    EXPECT_EQ(::truncate(file.c_str(), c.shrink_to), 0);
                }
                parse_logins(block.substr(0, block.rfind('\n') + 1), now, out);
            };
            FakeSink sink;
            auto o = opts_;
            o.backlog_read_path = path;
            FileTailSource src("file:test", file, parser, sink, clock_, o);
            ASSERT_TRUE(src.start(loop_).has_value());
            const std::uint64_t settled = c.shrink_to >= 0 ? static_cast<std::uint64_t>(c.shrink_to) : lines.size();
            EXPECT_TRUE(run_until([&] {
                if (!sink.checkpoint || sink.events.size() < c.want.size()) return false;
                auto j = nlohmann::json::parse(*sink.checkpoint);
                return j.contains("offset") && j["offset"].get<std::uint64_t>() == (c.text.empty() ? 0 : settled);
            })) << c.name;
            src.stop(loop_);
            got[path] = sink.users();
        }
        EXPECT_EQ(got[rp::util::ReadPath::read], c.want) << c.name;
        EXPECT_EQ(got[rp::util::ReadPath::mmap], c.want) << c.name;
    }
}

}  // namespace
