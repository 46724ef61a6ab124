// JournaldSource over REAL journal files: entries are written in the Journal Export Format
// (with trusted "_" fields, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID) and converted
// by systemd-journal-remote (package systemd-journal-remote; skipped when it is missing). The
// parser is the real matcher with the built-in Dovecot patterns, so "IDENT[PID]: MESSAGE" is
// proven to be what it understands. Cases: trusted login grants, forged `logger` entry counted
// untrusted, _SOURCE_REALTIME_TIMESTAMP used and clamped, restart resumes from the cursor without
// loss or repetition, live appends (a new file in the directory), failed deliveries retried.
#include "sources/journald_source.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "matching/matcher.hpp"

namespace {

using namespace std::chrono_literals;
using rp::core::LoginEvent;
using rp::sources::JournaldOptions;
using rp::sources::JournaldSource;

const char* const k_remote = "/lib/systemd/systemd-journal-remote";
const char* const k_boot = "0123456789abcdef0123456789abcdef";
// The ManualClock's time: the real time (whole seconds), because systemd-journal-remote refuses to
// append to a file whose entries lie in the future (it rotates it away instead).
const std::int64_t k_now_us =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count() *
    1'000'000;

class FakeSink final : public rp::sources::LoginSink {
public:
    rp::core::Status deliver(std::span<const LoginEvent> batch, const rp::core::Checkpoint& cp) override {
        ++attempts;
        if (fail) return rp::core::make_error("store is down");
        EXPECT_EQ(cp.key, "journald:test");
        events.insert(events.end(), batch.begin(), batch.end());
        checkpoint = cp.value;
        return rp::core::ok();
    }
    std::optional<std::string> find_checkpoint(const std::string& key) const override {
        EXPECT_EQ(key, "journald:test");
        return checkpoint;
    }
    std::vector<std::string> users() const {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.user);
        return out;
    }
    std::vector<LoginEvent> events;
    std::optional<std::string> checkpoint;
    int attempts = 0;
    bool fail = false;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

// Monotonically increasing timestamps so entries of several files order as written.
struct EntryClock {
    std::int64_t seq = 0;
    Fields base(std::int64_t realtime_us) {
        ++seq;
        return {{"__REALTIME_TIMESTAMP", std::to_string(realtime_us)},
                {"__MONOTONIC_TIMESTAMP", std::to_string(1'000'000 + seq * 1000)},
                {"_BOOT_ID", k_boot}};
    }
};

// A Dovecot login as journald records it from dovecot.service's `log` process.
Fields dovecot_login(EntryClock& c, std::int64_t realtime_us, const std::string& user, const std::string& ip,
                     std::optional<std::int64_t> source_rt = std::nullopt) {
    Fields f = c.base(realtime_us);
    f.insert(f.end(), {{"_SYSTEMD_UNIT", "dovecot.service"}, {"_COMM", "log"}, {"_EXE", "/usr/lib/dovecot/log"},
                       {"_UID", "0"}, {"_GID", "0"}, {"_PID", "812"}, {"_TRANSPORT", "syslog"},
                       {"SYSLOG_IDENTIFIER", "dovecot"}, {"SYSLOG_PID", "812"}, {"SYSLOG_FACILITY", "2"},
                       {"PRIORITY", "6"},
                       {"MESSAGE", "imap-login: Login: user=<" + user + ">, method=PLAIN, rip=" + ip +
                                       ", lip=192.0.2.1, mpid=4242, TLS, session=<AbCdEfGh>"}});
    if (source_rt) f.emplace_back("_SOURCE_REALTIME_TIMESTAMP", std::to_string(*source_rt));
    return f;
}

// `logger -t dovecot ...` run by a local user: same MESSAGE and identifier, other trusted fields.
Fields forged_login(EntryClock& c, std::int64_t realtime_us, const std::string& ip) {
    Fields f = c.base(realtime_us);
    f.insert(f.end(), {{"_SYSTEMD_UNIT", "session-2.scope"}, {"_COMM", "logger"}, {"_EXE", "/usr/bin/logger"},
                       {"_UID", "1000"}, {"_PID", "9999"}, {"_TRANSPORT", "syslog"},
                       {"SYSLOG_IDENTIFIER", "dovecot"}, {"SYSLOG_PID", "812"},
                       {"MESSAGE", "imap-login: Login: user=<mallory>, method=PLAIN, rip=" + ip +
                                       ", lip=192.0.2.1, mpid=4242, TLS, session=<AbCdEfGh>"}});
    return f;
}

Fields noise(EntryClock& c, std::int64_t realtime_us) {
    Fields f = c.base(realtime_us);
    f.insert(f.end(), {{"_SYSTEMD_UNIT", "dovecot.service"}, {"_COMM", "log"}, {"_UID", "0"},
                       {"SYSLOG_IDENTIFIER", "dovecot"}, {"SYSLOG_PID", "812"},
                       {"MESSAGE", "imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, "
                                   "method=PLAIN, rip=192.0.2.99, lip=192.0.2.1, session=<X>"}});
    return f;
}

bool have_remote() { return ::access(k_remote, X_OK) == 0; }

// Writes `entries` in export format and converts them into the journal file `out`.
void write_journal(const std::string& out, const std::vector<Fields>& entries) {
    const std::string exp = out + ".export";
    {
        FILE* f = std::fopen(exp.c_str(), "w");
        ASSERT_NE(f, nullptr);
        for (const auto& e : entries) {
            for (const auto& [k, v] : e) std::fprintf(f, "%s=%s\n", k.c_str(), v.c_str());
            std::fprintf(f, "\n");
        }
        std::fclose(f);
    }
    const std::string cmd = std::string(k_remote) + " -o '" + out + "' - < '" + exp + "' 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::remove(exp);
}

class JournaldSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_remote()) GTEST_SKIP() << k_remote << " missing (apt-get install systemd-journal-remote)";
        char tmpl[] = "/tmp/rp_journal_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        auto m = rp::matching::Matcher::build({"dovecot"}, {});
        ASSERT_TRUE(m) << m.error().message;
        matcher_ = *m;
    }
    void TearDown() override {
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    rp::sources::LineParser parser() {
        auto matcher = matcher_;
        auto state = std::make_shared<rp::matching::MatchState>(*matcher_);
        return [matcher, state](std::string_view lines, rp::core::Time now, std::vector<LoginEvent>& out) {
            matcher->scan(lines, now, *state, [&](const rp::matching::LoginMatch& hit) {
                out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), "", hit.time});
            });
        };
    }

    std::unique_ptr<JournaldSource> make(const std::string& path, std::chrono::milliseconds poll = 50ms) {
        JournaldOptions o;
        o.path = path;
        o.poll_interval = poll;
        o.retry_delay = 10ms;
        return std::make_unique<JournaldSource>("journald:test", o, parser(), sink_, clock_);
    }

    template <typename Pred>
    bool run_until(Pred pred, std::chrono::seconds deadline = 20s) {
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > end) return false;
            loop_.run_once(20ms);
        }
        return true;
    }

    std::string dir_;
    std::shared_ptr<const rp::matching::Matcher> matcher_;
    rp::util::EventLoop loop_;
    rp::core::ManualClock clock_{rp::core::from_unix_micros(k_now_us)};
    FakeSink sink_;
    EntryClock ec_;
};

TEST_F(JournaldSourceTest, TrustedLoginGrantsForgedLoggerLineIsUntrusted) {
    const std::string file = dir_ + "/system.journal";
    write_journal(file, {
        dovecot_login(ec_, k_now_us - 4'000'000, "alice", "192.0.2.10", k_now_us - 5'000'000),
        forged_login(ec_, k_now_us - 3'500'000, "203.0.113.66"),
        noise(ec_, k_now_us - 3'200'000),
        dovecot_login(ec_, k_now_us - 3'000'000, "bob", "192.0.2.11"),
        // A source time in the future (a wrong client clock) is clamped to the reading time.
        dovecot_login(ec_, k_now_us - 2'000'000, "carol", "2001:db8::7", k_now_us + 3'600'000'000LL),
    });
    auto src = make(file);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return src->counters().lines == 5 && sink_.events.size() == 3; }));
    ASSERT_EQ(sink_.users(), (std::vector<std::string>{"alice", "bob", "carol"}));
    EXPECT_EQ(sink_.events[0].ip.to_string(), "192.0.2.10");
    EXPECT_EQ(rp::core::to_unix_micros(sink_.events[0].time), k_now_us - 5'000'000) << "_SOURCE_REALTIME_TIMESTAMP";
    EXPECT_EQ(rp::core::to_unix_micros(sink_.events[1].time), k_now_us - 3'000'000) << "entry realtime";
    EXPECT_EQ(rp::core::to_unix_micros(sink_.events[2].time), k_now_us) << "clamped to now";
    EXPECT_EQ(sink_.events[0].server, "dovecot");
    EXPECT_EQ(sink_.events[0].source, "journald:test");
    for (const auto& e : sink_.events) EXPECT_NE(e.ip.to_string(), "203.0.113.66");
    const auto c = src->counters();
    EXPECT_EQ(c.untrusted, 1U);
    EXPECT_EQ(c.matches, 3U);
    ASSERT_TRUE(sink_.checkpoint);
    EXPECT_NE(sink_.checkpoint->find("s="), std::string::npos) << *sink_.checkpoint;
    src->stop(loop_);
}

TEST_F(JournaldSourceTest, FiltersAreConfigurable) {
    const std::string file = dir_ + "/system.journal";
    write_journal(file, {dovecot_login(ec_, k_now_us - 4'000'000, "alice", "192.0.2.10"),
                         forged_login(ec_, k_now_us - 3'000'000, "203.0.113.66")});
    JournaldOptions o;
    o.path = file;
    o.units = {};
    o.uids = {};
    o.comms = {"log"};
    o.exes = {"/usr/lib/dovecot/log"};
    JournaldSource src("journald:test", o, parser(), sink_, clock_);
    ASSERT_TRUE(src.start(loop_));
    ASSERT_TRUE(run_until([&] { return src.counters().lines == 2; }));
    loop_.run_once(0ms);
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"alice"}));
    EXPECT_EQ(src.counters().untrusted, 1U);
}

TEST_F(JournaldSourceTest, RestartResumesFromCursorWithoutLossOrRepetition) {
    write_journal(dir_ + "/a.journal", {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1"),
                                        noise(ec_, k_now_us - 8'900'000),
                                        dovecot_login(ec_, k_now_us - 8'800'000, "u2", "192.0.2.2")});
    {
        auto src = make(dir_);
        ASSERT_TRUE(src->start(loop_));
        ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2 && src->counters().lines == 3; }));
        src->stop(loop_);
    }
    ASSERT_TRUE(sink_.checkpoint);
    const std::string first_cursor = *sink_.checkpoint;
    // Restart with nothing new: nothing is delivered again.
    {
        auto src = make(dir_);
        ASSERT_TRUE(src->start(loop_));
        for (int i = 0; i < 10; ++i) loop_.run_once(5ms);
        ASSERT_TRUE(run_until([&] { return src->counters().lines == 0; }));
        src->stop(loop_);
        EXPECT_EQ(sink_.events.size(), 2U);
    }
    // More entries arrive while stopped (a second journal file, later times), then a restart.
    write_journal(dir_ + "/b.journal", {dovecot_login(ec_, k_now_us - 7'000'000, "u3", "192.0.2.3"),
                                        forged_login(ec_, k_now_us - 6'900'000, "203.0.113.66"),
                                        dovecot_login(ec_, k_now_us - 6'800'000, "u4", "192.0.2.4")});
    {
        auto src = make(dir_);
        ASSERT_TRUE(src->start(loop_));
        ASSERT_TRUE(run_until([&] { return src->counters().lines == 3; }));
        loop_.run_once(0ms);
        src->stop(loop_);
        EXPECT_EQ(src->counters().untrusted, 1U);
    }
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2", "u3", "u4"}));
    EXPECT_NE(*sink_.checkpoint, first_cursor);
}

TEST_F(JournaldSourceTest, NewEntriesWhileRunningAreRead) {
    write_journal(dir_ + "/a.journal", {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1")});
    auto src = make(dir_);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 1; }));
    write_journal(dir_ + "/b.journal", {dovecot_login(ec_, k_now_us - 8'000'000, "u2", "192.0.2.2")});
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; }));
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2"}));
}

// One journal file that grows (systemd-journal-remote appends to an existing file), read live and
// across a restart.
TEST_F(JournaldSourceTest, AppendsToTheSameFileLiveAndAcrossRestart) {
    const std::string file = dir_ + "/system.journal";
    std::vector<Fields> all = {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1")};
    write_journal(file, all);
    auto src = make(file);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 1; }));
    write_journal(file, {dovecot_login(ec_, k_now_us - 8'000'000, "u2", "192.0.2.2")});
    ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; })) << "lines " << src->counters().lines;
    src->stop(loop_);
    write_journal(file, {noise(ec_, k_now_us - 7'500'000), dovecot_login(ec_, k_now_us - 7'000'000, "u3", "192.0.2.3")});
    src = make(file);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return src->counters().lines == 2; }));
    loop_.run_once(0ms);
    src->stop(loop_);
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2", "u3"}));
}

// The stored entry's file was vacuumed while stopped: reading resumes at the next entry, once.
TEST_F(JournaldSourceTest, ResumesWhenTheStoredEntryIsGone) {
    write_journal(dir_ + "/a.journal", {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1"),
                                        dovecot_login(ec_, k_now_us - 8'800'000, "u2", "192.0.2.2")});
    {
        auto src = make(dir_);
        ASSERT_TRUE(src->start(loop_));
        ASSERT_TRUE(run_until([&] { return sink_.events.size() == 2; }));
        src->stop(loop_);
    }
    write_journal(dir_ + "/b.journal", {dovecot_login(ec_, k_now_us - 7'000'000, "u3", "192.0.2.3"),
                                        dovecot_login(ec_, k_now_us - 6'800'000, "u4", "192.0.2.4")});
    std::filesystem::remove(dir_ + "/a.journal");
    auto src = make(dir_);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return src->counters().lines == 2; }));
    for (int i = 0; i < 5; ++i) loop_.run_once(5ms);
    src->stop(loop_);
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2", "u3", "u4"}));
}

TEST_F(JournaldSourceTest, FailedDeliveryIsRetriedFromTheStoredCursor) {
    const std::string file = dir_ + "/system.journal";
    write_journal(file, {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1"),
                         dovecot_login(ec_, k_now_us - 8'000'000, "u2", "192.0.2.2")});
    sink_.fail = true;
    auto src = make(file);
    ASSERT_TRUE(src->start(loop_));
    ASSERT_TRUE(run_until([&] { return sink_.attempts >= 3; }));
    sink_.fail = false;
    ASSERT_TRUE(run_until([&] { return sink_.events.size() >= 2; }));
    for (int i = 0; i < 5; ++i) loop_.run_once(5ms);
    EXPECT_EQ(sink_.users(), (std::vector<std::string>{"u1", "u2"}));
    EXPECT_EQ(src->counters().lines, 2U);
}

TEST_F(JournaldSourceTest, MissingJournalIsAnError) {
    auto src = make(dir_ + "/nope.journal");
    EXPECT_FALSE(src->start(loop_));
}

TEST_F(JournaldSourceTest, FactoryUsesConfigFilters) {
    const std::string file = dir_ + "/system.journal";
    write_journal(file, {dovecot_login(ec_, k_now_us - 9'000'000, "u1", "192.0.2.1")});
    rp::config::SourceConfig cfg;
    cfg.type = rp::config::SourceType::journald;
    cfg.name = "journald:test";
    cfg.path = file;
    cfg.units = {"other.service"};
    auto src = rp::sources::open_journald_source(cfg, parser(), sink_, clock_);
    ASSERT_TRUE(src);
    ASSERT_TRUE((*src)->start(loop_));
    ASSERT_TRUE(run_until([&] { return (*src)->counters().untrusted == 1; }));
    EXPECT_TRUE(sink_.events.empty());
    (*src)->stop(loop_);
}

}  // namespace
