// FileTailSource::restore's cases over an in-memory filesystem (MemTailEnv): rotation while
// stopped, copytruncate while stopped, an unreadable checkpoint, a fingerprint mismatch (at the
// path and on a renamed file), a file gone while stopped. Each case: follow a file, stop (the
// position is stored), change the filesystem, start again, and check which logins come back and
// in which order. No real files, no waits: the loop runs until a condition holds.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "mem_tail_env.hpp"
#include "sources/file_tail_checkpoint.hpp"
#include "sources/file_tail_source.hpp"

namespace {

using namespace std::chrono_literals;
using rp::core::LoginEvent;
using rp::sources::FileTailOptions;
using rp::sources::FileTailSource;

class Sink final : public rp::sources::LoginSink {
public:
    rp::core::Status deliver(std::span<const LoginEvent> batch, const rp::core::Checkpoint& cp) override {
        for (const auto& e : batch) users.push_back(e.user);
        checkpoint = cp.value;
        return rp::core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string&) const override { return checkpoint; }
    std::vector<std::string> users;
    std::optional<std::string> checkpoint;
};

void parse_logins(std::string_view block, rp::core::Time now, std::vector<LoginEvent>& out) {
    while (!block.empty()) {
        const auto nl = block.find('\n');
        std::string_view line = block.substr(0, nl);
        block.remove_prefix(nl + 1);
        if (!line.starts_with("LOGIN ")) continue;
        out.push_back(LoginEvent{*rp::core::Address::parse("192.0.2.1"), std::string(line.substr(6)), "test", "", now});
    }
}

std::string lines(std::initializer_list<const char*> users) {
    std::string s;
    for (const char* u : users) s += std::string("LOGIN ") + u + "\n";
    return s;
}

class FileTailRestoreTest : public ::testing::Test {
protected:
    const std::string dir_ = "/var/log";
    const std::string path_ = "/var/log/mail.log";
    rp::test::MemTailEnv env_{dir_};
    Sink sink_;
    rp::core::ManualClock clock_{rp::core::from_unix_seconds(1'800'000'000)};
    rp::util::EventLoop loop_;

    FileTailOptions opts() {
        FileTailOptions o;
        o.env = &env_;
        o.safety_poll = 1ms;  // no change notification in memory: the timer drives the reads
        o.fingerprint_bytes = 16;
        return o;
    }
    // Runs a source until `users` logins arrived in all (or a generous deadline), then stops it.
    void run_until_users(std::size_t n) {
        FileTailSource src("file:test", path_, parse_logins, sink_, clock_, opts());
        ASSERT_TRUE(src.start(loop_));
        const auto end = std::chrono::steady_clock::now() + 30s;
        while (sink_.users.size() < n && std::chrono::steady_clock::now() < end) loop_.run_once(5ms);
        for (int i = 0; i < 3; ++i) loop_.run_once(0ms);  // anything more would show up now
        src.stop(loop_);
    }
    std::vector<std::string> after(std::size_t from) const {
        return {sink_.users.begin() + static_cast<std::ptrdiff_t>(from), sink_.users.end()};
    }
};

using V = std::vector<std::string>;

TEST_F(FileTailRestoreTest, RotationWhileStoppedFinishesTheOldFileFirst) {
    env_.write(path_, lines({"a", "b"}));
    run_until_users(2);
    env_.append(path_, lines({"c"}));  // written after we stopped, before the rotation
    env_.rename(path_, path_ + ".1");
    env_.write(path_, lines({"d"}));
    run_until_users(4);
    EXPECT_EQ(sink_.users, (V{"a", "b", "c", "d"}));
    const auto cp = rp::sources::parse_tail_checkpoint(*sink_.checkpoint);
    ASSERT_TRUE(cp);
    ASSERT_TRUE(cp->current);
    EXPECT_EQ(cp->current->ino, env_.ino(path_));
}

TEST_F(FileTailRestoreTest, CopytruncateWhileStoppedReadsTheRestOfTheCopyFirst) {
    env_.write(path_, lines({"first-line-long", "b"}));
    run_until_users(2);
    env_.append(path_, lines({"c"}));
    env_.copy(path_, path_ + ".1");  // logrotate's copy, then the truncate
    env_.truncate(path_);
    env_.append(path_, lines({"d", "e", "f"}));  // longer than before: only the fingerprint tells
    run_until_users(6);
    EXPECT_EQ(sink_.users, (V{"first-line-long", "b", "c", "d", "e", "f"}));
}

TEST_F(FileTailRestoreTest, UnreadableCheckpointReadsTheFileFromTheStart) {
    env_.write(path_, lines({"a", "b"}));
    sink_.checkpoint = "{\"v\":1,\"dev\":\"77\"}";  // a field of the wrong type
    run_until_users(2);
    EXPECT_EQ(sink_.users, (V{"a", "b"}));
    sink_.checkpoint = "not json";
    run_until_users(4);
    EXPECT_EQ(after(2), (V{"a", "b"}));
}

TEST_F(FileTailRestoreTest, FingerprintMismatchAtThePathReadsItFromZero) {
    env_.write(path_, lines({"original-first", "b"}));
    run_until_users(2);
    // Rewritten in place while stopped (same inode, longer, other first bytes), no copy anywhere.
    env_.write(path_, lines({"rewritten-first", "x", "y"}));
    run_until_users(5);
    EXPECT_EQ(after(2), (V{"rewritten-first", "x", "y"}));
}

TEST_F(FileTailRestoreTest, RenamedFileWithOtherContentIsIgnored) {
    env_.write(path_, lines({"original-first", "b"}));
    run_until_users(2);
    env_.rename(path_, path_ + ".1");
    env_.write(path_ + ".1", lines({"someone-elses-file", "zzzzz"}));  // same inode, other content
    env_.write(path_, lines({"new"}));
    run_until_users(3);
    EXPECT_EQ(after(2), (V{"new"})) << "the renamed file's content is not ours: nothing from it";
}

TEST_F(FileTailRestoreTest, FileGoneWhileStoppedContinuesWithTheNewOne) {
    env_.write(path_, lines({"a"}));
    run_until_users(1);
    env_.rename(path_, path_ + ".1.gz");  // compressed: another inode in real life
    env_.unlink(path_ + ".1.gz");
    env_.write(path_, lines({"b"}));
    run_until_users(2);
    EXPECT_EQ(sink_.users, (V{"a", "b"}));
}

TEST_F(FileTailRestoreTest, CheckpointFormatRoundTrips) {
    rp::sources::TailCheckpoint cp;
    cp.current = rp::sources::TailPosition{1, 2, 3, true, "00ff", 3};
    cp.draining.push_back(rp::sources::TailPosition{1, 9, 4096, false, rp::sources::fingerprint("abc"), 3});
    const auto text = rp::sources::format_tail_checkpoint(cp);
    EXPECT_EQ(rp::sources::parse_tail_checkpoint(text), cp);
    EXPECT_EQ(rp::sources::fingerprint(""), "cbf29ce484222325");
    EXPECT_FALSE(rp::sources::parse_tail_checkpoint("{\"draining\":{}}"));
    EXPECT_FALSE(rp::sources::parse_tail_checkpoint("[]"));
    EXPECT_TRUE(rp::sources::parse_tail_checkpoint("{\"v\":1}"));
}

}  // namespace
