// util/fs_safe: privileged directory and socket operations never follow a symlink (issue 12 item 4).
// Real directories under /tmp; the ownership cases need root (skipped otherwise).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/endpoint.hpp"
#include "util/fs_safe.hpp"

namespace rp {
namespace {

namespace fs = std::filesystem;
constexpr uid_t k_nobody = 65534;

struct Scratch {
    std::string path;
    Scratch() {
        char tmpl[] = "/tmp/rp_fs_safe_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

struct stat stat_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st;
}

void make_file(const std::string& p, mode_t mode) {
    std::ofstream(p) << "secret\n";
    ::chmod(p.c_str(), mode);
}

bool root() { return ::geteuid() == 0; }

TEST(FsSafe, StateDirThatIsASymlinkIsRefusedAndItsTargetUntouched) {
    if (!root()) GTEST_SKIP() << "needs root (chown)";
    Scratch t;
    ASSERT_EQ(::mkdir((t / "target").c_str(), 0700), 0);
    ASSERT_EQ(::symlink((t / "target").c_str(), (t / "state").c_str()), 0);
    auto r = util::ensure_private_dir(t / "state", {0750, k_nobody, k_nobody});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
    const auto st = stat_of(t / "target");
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, 0u);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(FsSafe, CreatesMissingDirectoriesWithModeAndOwner) {
    if (!root()) GTEST_SKIP() << "needs root (chown)";
    Scratch t;
    const auto old = ::umask(077);  // a strict umask must not leave the parents unreachable
    auto r = util::ensure_private_dir(t / "a/b/state", {0750, k_nobody, k_nobody});
    ::umask(old);
    ASSERT_TRUE(r) << r.error().message;
    const auto st = stat_of(t / "a/b/state");
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    EXPECT_EQ(st.st_uid, k_nobody);
    EXPECT_EQ(stat_of(t / "a/b").st_mode & 07777, 0755u);
    EXPECT_EQ(stat_of(t / "a/b").st_uid, 0u);
    // Existing and already ours: accepted again, unchanged.
    EXPECT_TRUE(util::ensure_private_dir(t / "a/b/state", {0750, k_nobody, k_nobody}));
}

TEST(FsSafe, DirectoriesWritableByOthersAreRefused) {
    Scratch t;
    ASSERT_EQ(::mkdir((t / "open").c_str(), 0755), 0);
    ::chmod((t / "open").c_str(), 0777);
    // As the state_dir or the control socket's directory.
    auto r = util::ensure_private_dir(t / "open", {0750});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("writable by group or others"), std::string::npos) << r.error().message;
    // Above one: another user could swap what lies below; nothing is created there.
    r = util::ensure_private_dir(t / "open/state", {0750});
    ASSERT_FALSE(r);
    EXPECT_FALSE(fs::exists(t / "open/state"));
    // As a listener's socket directory: refused before anything is bound.
    auto ep = util::parse_endpoint("unix:" + (t / "open/policy.sock"));
    ASSERT_TRUE(ep);
    auto l = util::listen_endpoint(*ep);
    ASSERT_FALSE(l);
    EXPECT_NE(l.error().message.find("writable by group or others"), std::string::npos) << l.error().message;
    EXPECT_FALSE(fs::exists(t / "open/policy.sock"));
    // Group-writable too; sticky (like /tmp) is fine for a socket, never for a private directory.
    ::chmod((t / "open").c_str(), 0770);
    EXPECT_FALSE(util::open_socket_dir(t / "open"));
    ::chmod((t / "open").c_str(), 01777);
    EXPECT_TRUE(util::open_socket_dir(t / "open"));
    EXPECT_FALSE(util::ensure_private_dir(t / "open", {0750}));
}

TEST(FsSafe, SocketDirectoryThatIsASymlinkIsRefused) {
    Scratch t;
    ASSERT_EQ(::mkdir((t / "real").c_str(), 0755), 0);
    ASSERT_EQ(::symlink((t / "real").c_str(), (t / "link").c_str()), 0);
    auto ep = util::parse_endpoint("unix:" + (t / "link/s.sock"));
    ASSERT_TRUE(ep);
    auto l = util::listen_endpoint(*ep);
    ASSERT_FALSE(l);
    EXPECT_NE(l.error().message.find("symbolic link"), std::string::npos) << l.error().message;
    EXPECT_FALSE(fs::exists(t / "real/s.sock"));
}

// The race of e10e7cb: between bind() and chmod/chown by path, the socket's name is replaced by a
// symlink to a root-owned 0600 file. The safe functions act on the name without following it.
TEST(FsSafe, ChownOfASocketNameReplacedByASymlinkLeavesTheTargetAlone) {
    if (!root()) GTEST_SKIP() << "needs root (chown)";
    Scratch t;
    make_file(t / "victim", 0600);
    util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto bound = util::bind_unix(fd.get(), t / "ctl.sock", 0660, SOCK_STREAM);
    ASSERT_TRUE(bound) << bound.error().message;
    ASSERT_EQ(::unlink((t / "ctl.sock").c_str()), 0);
    ASSERT_EQ(::symlink((t / "victim").c_str(), (t / "ctl.sock").c_str()), 0);

    auto st = util::chown_socket(t / "ctl.sock", k_nobody, k_nobody, &*bound);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("left untouched"), std::string::npos) << st.error().message;
    st = util::chown_socket(t / "ctl.sock", k_nobody, k_nobody);  // the daemon's path-only form
    EXPECT_FALSE(st);
    const auto v = stat_of(t / "victim");
    EXPECT_EQ(v.st_uid, 0u);
    EXPECT_EQ(v.st_gid, 0u);
    EXPECT_EQ(v.st_mode & 07777, 0600u);
    // A hard link (or any other file) in its place is refused the same way.
    ASSERT_EQ(::unlink((t / "ctl.sock").c_str()), 0);
    ASSERT_EQ(::link((t / "victim").c_str(), (t / "ctl.sock").c_str()), 0);
    EXPECT_FALSE(util::chown_socket(t / "ctl.sock", k_nobody, k_nobody));
    EXPECT_EQ(stat_of(t / "victim").st_uid, 0u);
    // Removing "our socket" at exit removes neither the link nor the file.
    util::remove_socket_file(t / "ctl.sock", 0, 0);
    EXPECT_TRUE(fs::exists(t / "ctl.sock"));
}

TEST(FsSafe, ChownOfTheSocketWeBoundWorks) {
    if (!root()) GTEST_SKIP() << "needs root (chown)";
    Scratch t;
    util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto bound = util::bind_unix(fd.get(), t / "ctl.sock", 0660, SOCK_STREAM);
    ASSERT_TRUE(bound) << bound.error().message;
    ASSERT_TRUE(util::chown_socket(t / "ctl.sock", util::k_no_uid, k_nobody, &*bound));
    const auto st = stat_of(t / "ctl.sock");
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_gid, k_nobody);
    EXPECT_EQ(st.st_uid, 0u);
    util::remove_socket_file(t / "ctl.sock", bound->dev, bound->ino);
    EXPECT_FALSE(fs::exists(t / "ctl.sock"));
}

// The file exists only with its final mode: the umask is set around bind(), whatever the
// process umask is, and restored afterwards.
TEST(FsSafe, UnixSocketIsCreatedWithItsFinalMode) {
    Scratch t;
    for (const mode_t process_umask : {mode_t{0}, mode_t{077}}) {
        for (const mode_t want : {mode_t{0666}, mode_t{0660}, mode_t{0600}}) {
            const auto old = ::umask(process_umask);
            const std::string path = t / ("s" + std::to_string(want));
            auto ep = util::parse_endpoint("unix:" + path);
            ASSERT_TRUE(ep);
            auto l = util::bind_listener(*ep, {16, want});
            const auto after = ::umask(old);
            ASSERT_TRUE(l) << l.error().message;
            EXPECT_EQ(after, process_umask) << "the process umask is restored";
            const auto st = stat_of(path);
            EXPECT_TRUE(S_ISSOCK(st.st_mode));
            EXPECT_EQ(st.st_mode & 0777, want) << "umask " << process_umask;
            EXPECT_EQ(st.st_ino, l->ino);
            l->remove_socket_file();
            EXPECT_FALSE(fs::exists(path));
        }
    }
}

TEST(FsSafe, StaleSocketReplacedLiveOneAndOtherFilesRefused) {
    Scratch t;
    const std::string path = t / "p.sock";
    auto ep = util::parse_endpoint("unix:" + path);
    ASSERT_TRUE(ep);
    {
        auto first = util::listen_endpoint(*ep);
        ASSERT_TRUE(first);
        auto second = util::listen_endpoint(*ep);
        ASSERT_FALSE(second);
        EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
    }
    EXPECT_TRUE(util::listen_endpoint(*ep)) << "a stale socket file is replaced";
    ASSERT_EQ(::unlink(path.c_str()), 0);
    make_file(t / "victim", 0600);
    ASSERT_EQ(::symlink((t / "victim").c_str(), path.c_str()), 0);
    EXPECT_FALSE(util::listen_endpoint(*ep)) << "a symlink is not a stale socket";
    EXPECT_TRUE(fs::exists(t / "victim"));
}

TEST(FsSafe, ExistingDirectoryOfAnotherUserIsRefused) {
    if (!root()) GTEST_SKIP() << "needs root (chown)";
    Scratch t;
    ASSERT_EQ(::mkdir((t / "theirs").c_str(), 0755), 0);
    ASSERT_EQ(::chown((t / "theirs").c_str(), k_nobody, k_nobody), 0);
    auto r = util::ensure_private_dir(t / "theirs", {0750});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("belongs to uid"), std::string::npos) << r.error().message;
    // ...unless it is the daemon's configured user.
    EXPECT_TRUE(util::ensure_private_dir(t / "theirs", {0750, k_nobody, k_nobody}));
}

}  // namespace
}  // namespace rp
