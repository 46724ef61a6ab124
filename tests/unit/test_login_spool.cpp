// LoginSpool: logins pushed while the daemon is stopped (issue 12 item 15). The file format's
// hostile cases, the atomic write (no temporary file left, mode 0640), reading back oldest first,
// and a symlink planted in the spool is never followed.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/login_spool.hpp"

using namespace rp;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rp-spool-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

mode_t mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

}  // namespace

TEST(LoginSpool, FormatRoundTrip) {
    daemon::SpooledLogin in{*core::Address::parse("2001:db8::7"), "alice", core::from_unix_seconds(1'800'000'000), 2h};
    auto out = daemon::parse_spooled_login(daemon::encode_spooled_login(in));
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->ip, in.ip);
    EXPECT_EQ(out->user, "alice");
    EXPECT_EQ(out->time, in.time);
    EXPECT_EQ(out->ttl, in.ttl);
    in.ttl.reset();
    out = daemon::parse_spooled_login(daemon::encode_spooled_login(in));
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->ttl);
}

TEST(LoginSpool, HostileFilesAreErrors) {
    const char* bad[] = {
        "",
        "null",
        "[]",
        R"({"ip":"192.0.2.1"})",
        R"({"time_us":1})",
        R"({"ip":5,"time_us":1})",
        R"({"ip":"192.0.2.1","time_us":"1"})",
        R"({"ip":"192.0.2.1","time_us":-1})",
        R"({"ip":"192.0.2.1","time_us":0})",
        R"({"ip":"192.0.2.1","time_us":1e300})",
        R"({"ip":"192.0.2.1","time_us":18446744073709551615})",
        R"({"ip":"192.0.2.1","time_us":1,"ttl_ms":-5})",
        R"({"ip":"192.0.2.1","time_us":1,"ttl_ms":9200000000000000})",
        R"({"ip":"192.0.2.1","time_us":1,"user":"a\nb"})",
        R"({"ip":"192.0.2.1","time_us":1,"server":"x"})",
    };
    for (const char* text : bad) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(daemon::parse_spooled_login(text));
    }
}

TEST(LoginSpool, WriteReadRemove) {
    TempDir t;
    const std::string dir = t.path + "/spool";
    ASSERT_TRUE(daemon::prepare_spool_dir(t.path, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    EXPECT_EQ(mode_of(dir), 03770u);
    const auto t0 = core::from_unix_seconds(1'800'000'000);
    ASSERT_TRUE(daemon::spool_login(dir, {*core::Address::parse("192.0.2.2"), "bob", t0 + 1s, {}}));
    ASSERT_TRUE(daemon::spool_login(dir, {*core::Address::parse("192.0.2.1"), "alice", t0, 1h}));
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        ++files;
        EXPECT_TRUE(e.path().filename().string().starts_with("login.")) << e.path();
        EXPECT_EQ(mode_of(e.path()), 0640u);
    }
    EXPECT_EQ(files, 2u);  // no temporary file left behind

    auto entries = daemon::read_spool(dir, 100);
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 2u);
    ASSERT_TRUE((*entries)[0].login);
    EXPECT_EQ((*entries)[0].login->user, "alice");  // oldest first
    EXPECT_EQ((*entries)[0].login->ttl, std::optional<core::Duration>(1h));
    EXPECT_EQ((*entries)[1].login->user, "bob");
    EXPECT_EQ(daemon::read_spool(dir, 1)->size(), 1u);

    for (const auto& e : *entries) EXPECT_TRUE(daemon::remove_spooled(dir, e.name));
    EXPECT_TRUE(daemon::read_spool(dir, 100)->empty());
    EXPECT_TRUE(daemon::remove_spooled(dir, "login.gone"));
}

TEST(LoginSpool, MissingDirectoryIsAnEmptySpoolButCannotBeWritten) {
    TempDir t;
    auto entries = daemon::read_spool(t.path + "/spool", 10);
    ASSERT_TRUE(entries);
    EXPECT_TRUE(entries->empty());
    EXPECT_FALSE(daemon::spool_login(t.path + "/spool", {*core::Address::parse("192.0.2.1"), "", {}, {}}));
}

TEST(LoginSpool, SymlinksAreNeverFollowed) {
    TempDir t;
    ASSERT_TRUE(daemon::prepare_spool_dir(t.path, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    const std::string dir = t.path + "/spool";
    { std::ofstream(t.path + "/secret") << R"({"ip":"192.0.2.9","time_us":1})"; }
    ASSERT_EQ(::symlink((t.path + "/secret").c_str(), (dir + "/login.1.1.1").c_str()), 0);
    auto entries = daemon::read_spool(dir, 10);
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_FALSE((*entries)[0].login);  // ELOOP, not the target's content

    TempDir u;
    ASSERT_EQ(::symlink(t.path.c_str(), (u.path + "/spool").c_str()), 0);
    EXPECT_FALSE(daemon::prepare_spool_dir(u.path, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    EXPECT_FALSE(daemon::spool_login(u.path + "/spool", {*core::Address::parse("192.0.2.1"), "", {}, {}}));
}

TEST(LoginSpool, OversizedFileIsAnError) {
    TempDir t;
    ASSERT_TRUE(daemon::prepare_spool_dir(t.path, static_cast<uid_t>(-1), static_cast<gid_t>(-1)));
    { std::ofstream(t.path + "/spool/login.2") << std::string(5000, ' ') << R"({"ip":"192.0.2.9","time_us":1})"; }
    auto entries = daemon::read_spool(t.path + "/spool", 10);
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_FALSE((*entries)[0].login);
}
