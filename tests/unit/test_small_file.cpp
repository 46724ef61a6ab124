// util::read_small_file: what every administrator's file (config, static entries, allow lists,
// secrets) is read with. A FIFO, a device or an oversized file in the file's place is an error
// at once, never a hang or unbounded memory; errors never quote the file's content.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/session_file.hpp"
#include "daemon/socketmap_static.hpp"
#include "exports/map_formats.hpp"
#include "util/small_file.hpp"

namespace fs = std::filesystem;
using rp::util::read_small_file;

namespace {

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("rp-small-file-" + std::to_string(::getpid()));
    TempDir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
        return (path / name).string();
    }
};

}  // namespace

TEST(SmallFile, ReadsARegularFileAndMissingIsNotAnError) {
    TempDir d;
    auto r = read_small_file(d.write("a", "x y\n"), 100);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ(**r, "x y\n");
    r = read_small_file((d.path / "missing").string(), 100);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
    EXPECT_FALSE(rp::util::read_existing_small_file((d.path / "missing").string(), 100));
}

TEST(SmallFile, FifoDeviceDirectoryAndOversizeAreErrorsAtOnce) {
    TempDir d;
    const auto fifo = (d.path / "fifo").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);  // no writer: a blocking open would hang here
    const struct {
        std::string path;
        std::size_t limit;
        std::string want;
    } rows[] = {
        {fifo, 100, "not a regular file"},
        {"/dev/zero", 100, "not a regular file"},
        {d.path.string(), 100, "not a regular file"},
        {d.write("big", std::string(101, 'a')), 100, "larger than 100 bytes"},
    };
    for (const auto& r : rows) {
        auto got = read_small_file(r.path, r.limit);
        ASSERT_FALSE(got) << r.path;
        EXPECT_NE(got.error().message.find(r.want), std::string::npos) << got.error().message;
        EXPECT_EQ(got.error().message.rfind(r.path, 0), 0u) << "errors name the path first";
    }
}

TEST(SmallFile, SocketmapStaticErrorsNameTheLineNotItsText) {
    TempDir d;
    // A static path that leads to a file the daemon should not show (read as root at start).
    const auto path = d.write("shadow", "root:$6$secret-hash:19000:0:99999:7:::\n");
    auto r = rp::daemon::read_socketmap_static(path);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("line 1"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("secret-hash"), std::string::npos) << r.error().message;
    auto fifo = (d.path / "fifo").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_FALSE(rp::daemon::read_socketmap_static(fifo));  // at once, not blocked on open
    auto t = rp::exports::parse_tcprules("192.0.2.1:allow,SECRET\"\n");
    if (!t) {
        EXPECT_EQ(t.error().message.find("SECRET"), std::string::npos) << t.error().message;
    }
}

// Review of issue 17, item 5: the daemon's own state files (sessions.jsonl) are read the same
// way, and also refused through a symbolic link, when owned by another user or writable by
// others; the refusal never quotes the content.
TEST(SmallFile, PrivateFileRefusesLinksOtherOwnersAndOthersWrite) {
    using rp::util::read_private_file;
    TempDir d;
    const auto good = d.write("s", "secret line\n");
    ::chmod(good.c_str(), 0600);
    auto r = read_private_file(good, 100);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(**r, "secret line\n");
    EXPECT_FALSE(*read_private_file((d.path / "missing").string(), 100));
    fs::create_symlink(good, d.path / "link");
    r = read_private_file((d.path / "link").string(), 100);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("symbolic link"), std::string::npos) << r.error().message;
    for (mode_t mode : {0620, 0602}) {
        ::chmod(good.c_str(), mode);
        r = read_private_file(good, 100);
        ASSERT_FALSE(r) << mode;
        EXPECT_NE(r.error().message.find("writable by others"), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find("secret"), std::string::npos);
    }
    ::chmod(good.c_str(), 0600);
    EXPECT_FALSE(read_private_file(good, 5));  // bounded
    if (::geteuid() == 0) {  // as root the file can be given away
        ASSERT_EQ(::chown(good.c_str(), 65534, 65534), 0);
        r = read_private_file(good, 100);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("not owned"), std::string::npos) << r.error().message;
    }
    ::mkfifo((d.path / "fifo").c_str(), 0600);
    EXPECT_FALSE(read_private_file((d.path / "fifo").string(), 100));  // at once, never blocks
}

TEST(SmallFile, SessionFileIsReadAsAPrivateFileAndBadLinesAreNoSessions) {
    TempDir d;
    const auto path = d.write("sessions.jsonl",
                              "{\"server\":\"dovecot\",\"id\":\"A\",\"net\":\"192.0.2.1\",\"user\":\"u\",\"source\":\"s\","
                              "\"login_us\":1,\"cap_us\":2}\n{\"server\":\"dovecot\",\"id\":\"B\",\"net\":\"192.0.2.1\"}\n"
                              "\xff\xfe garbage\n");
    ::chmod(path.c_str(), 0600);
    auto r = rp::daemon::read_session_file(path);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->sessions.size(), 1u);
    EXPECT_EQ(r->malformed, 2u);
    ::chmod(path.c_str(), 0666);
    EXPECT_FALSE(rp::daemon::read_session_file(path));
    EXPECT_TRUE(rp::daemon::read_session_file((d.path / "none").string()));  // missing: no session
}
