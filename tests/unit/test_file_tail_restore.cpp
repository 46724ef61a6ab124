// FileTailSource's rotation cases over an in-memory filesystem (MemTailEnv), without real files
// or waits: the loop runs until a condition holds.
// - restore: follow a file, stop (the position is stored), change the filesystem, start again,
//   and check which logins come back and in which order: rotation while stopped, copytruncate
//   while stopped, an unreadable checkpoint, a fingerprint mismatch (at the path and on a renamed
//   file), a file gone while stopped.
// - live (FileTailLiveTest): the filesystem changes while the source follows it: rename rotation
//   with the writer still appending to the old file, rotation coalesced into one wake-up,
//   copytruncate (also of lines not read yet), truncation, delete and recreate.
// tests/unit/test_file_tail_source.cpp keeps one case of each kind on real files and inotify.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
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

std::string numbered(int from, int to) {
    std::string s;
    for (int i = from; i <= to; ++i) s += "LOGIN u" + std::to_string(i) + "\n";
    return s;
}

// The live cases, one row each: a source follows the in-memory file while the rows' steps change
// it. A step's change happens with the source asleep (so "before the source wakes" is exact
// here); then the loop runs until `users` logins arrived in all, and `draining` says how many
// rotated files are still read then. `drain`: the writers are done with the rotated files: past
// the grace (on env's manual clock) they are closed. Every case ends with u1..uN in file order.
using Change = std::function<void(rp::test::MemTailEnv& env, const std::string& path)>;
struct Step {
    Change change;
    std::size_t users;
    bool drain = false;
    int draining = -1;  // -1: not checked
};
struct LiveCase {
    const char* name;
    std::vector<Step> steps;
};

const std::vector<LiveCase>& live_cases() {
    using Env = rp::test::MemTailEnv;
    using S = const std::string&;
    static const std::vector<LiveCase> cases = {
        {"RenameRotationDrainsTheOldFileWhileItsWriterAppends",
         {{[](Env& e, S p) { e.write(p, numbered(1, 2)); }, 2},
          {[](Env& e, S p) { e.rename(p, p + ".1"); e.write(p, numbered(3, 3)); }, 3, false, 1},
          {[](Env& e, S p) { e.append(p + ".1", numbered(4, 5)); }, 5, true},  // no HUP yet: old file
          {[](Env& e, S p) { e.append(p, numbered(6, 6)); }, 6}}},
        {"RotationCoalescedIntoOneWakeUp",  // the old file grows, is renamed, grows; the new one fills
         {{[](Env& e, S p) { e.write(p, numbered(1, 10)); }, 10},
          {[](Env& e, S p) {
               e.append(p, numbered(11, 500));
               e.rename(p, p + ".1");
               e.append(p + ".1", numbered(501, 600));
               e.write(p, numbered(601, 1000));
           },
           1000}}},
        {"Copytruncate",
         {{[](Env& e, S p) { e.write(p, numbered(1, 3)); }, 3},
          {[](Env& e, S p) { e.copy(p, p + ".1"); e.truncate(p); e.append(p, numbered(4, 4)); }, 4},
          {[](Env& e, S p) { e.append(p, numbered(5, 6)); }, 6}}},
        {"CopytruncateOfLinesNotReadYet",  // the last line is completed in the copy
         {{[](Env& e, S p) { e.write(p, numbered(1, 1)); }, 1},
          {[](Env& e, S p) {
               e.append(p, numbered(2, 3) + "LOGIN u4");
               e.copy(p, p + ".1");
               e.append(p + ".1", "\n");
               e.truncate(p);
               e.append(p, numbered(5, 5));
           },
           5, true}}},
        {"TruncatedAndRegrownBeforeWakeUp",  // longer than before: only the fingerprint tells
         {{[](Env& e, S p) { e.write(p, numbered(1, 2)); }, 2},
          {[](Env& e, S p) { e.truncate(p); e.append(p, "2026-11-22 new file\n" + numbered(3, 20)); }, 20}}},
        {"TruncatedToSmallerThenGrown",
         {{[](Env& e, S p) { e.write(p, numbered(1, 5)); }, 5},
          {[](Env& e, S p) { e.truncate(p); e.append(p, numbered(6, 6)); }, 6},
          {[](Env& e, S p) {
               for (int i = 7; i <= 20; ++i) e.append(p, numbered(i, i));  // well past the old size
           },
           20}}},
        {"DeletedAndRecreated",
         {{[](Env& e, S p) { e.write(p, numbered(1, 2)); }, 2},
          {[](Env& e, S p) { e.unlink(p); e.write(p, numbered(3, 4)); }, 4},  // a new inode
          {[](Env& e, S p) { e.append(p, numbered(5, 5)); }, 5, true}}},
    };
    return cases;
}

class FileTailLiveTest : public FileTailRestoreTest, public ::testing::WithParamInterface<LiveCase> {
protected:
    bool run_until(const std::function<bool()>& done) {
        const auto end = std::chrono::steady_clock::now() + 30s;
        while (!done() && std::chrono::steady_clock::now() < end) loop_.run_once(5ms);
        return done();
    }
};

TEST_P(FileTailLiveTest, DeliversEveryLineOnceInFileOrder) {
    auto o = opts();
    o.drain_grace = 50ms;  // env_'s clock: a rotated file is read until a step advances it
    FileTailSource src("file:test", path_, parse_logins, sink_, clock_, o);
    ASSERT_TRUE(src.start(loop_));
    std::size_t n = 0;
    for (const auto& step : GetParam().steps) {
        step.change(env_, path_);
        ASSERT_TRUE(run_until([&] { return sink_.users.size() >= step.users; })) << "step " << n;
        if (step.draining >= 0) {
            EXPECT_EQ(src.draining_files(), static_cast<std::size_t>(step.draining)) << "step " << n;
        }
        if (step.drain) {
            env_.advance(1s);
            ASSERT_TRUE(run_until([&] { return src.draining_files() == 0; })) << "step " << n;
        }
        n = step.users;
    }
    src.stop(loop_);
    V want;
    for (std::size_t i = 1; i <= n; ++i) want.push_back("u" + std::to_string(i));
    EXPECT_EQ(sink_.users, want);
}

INSTANTIATE_TEST_SUITE_P(Rotation, FileTailLiveTest, ::testing::ValuesIn(live_cases()),
                         [](const ::testing::TestParamInfo<LiveCase>& row) { return std::string(row.param.name); });

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
