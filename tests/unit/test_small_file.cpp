// util::read_small_file: what every administrator's file (config, static entries, allow lists,
// secrets) is read with. A FIFO, a device or an oversized file in the file's place is an error
// at once, never a hang or unbounded memory; errors never quote the file's content.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

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
