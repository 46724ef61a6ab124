// util/redact and the store URL parser: a URL's password is never printed, whatever its shape
// (issue 12 item 12).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/shared_backend.hpp"
#include "util/redact.hpp"

namespace rp {
namespace {

struct HostileUrl {
    std::string url;
    std::string password;  // what must never show
    std::string shown;     // mask_url's output
};

TEST(UrlMask, HostileShapesNeverShowThePassword) {
    const std::vector<HostileUrl> rows = {
        {"redis://relay:hunter2@127.0.0.1:6379/0", "hunter2", "redis://***@127.0.0.1:6379/0"},
        {"redis://relay:pa/ss@127.0.0.1:6379/0", "pa/ss", "redis://***@127.0.0.1:6379/0"},
        {"redis://relay:p@ss@127.0.0.1/0", "p@ss", "redis://***@127.0.0.1/0"},
        {"redis://relay:p:a:ss@127.0.0.1/0", "p:a:ss", "redis://***@127.0.0.1/0"},
        {"redis://relay:pa#ss@127.0.0.1/0", "pa#ss", "redis://***@127.0.0.1/0"},
        {"redis://relay:pa?ss@127.0.0.1/0", "pa?ss", "redis://***@127.0.0.1/0"},
        {"redis://relay:6379/ss@127.0.0.1/0", "6379/ss", "redis://***@127.0.0.1/0"},
        {"redis://relay:pa%2Fss%40x@127.0.0.1/0", "pa%2Fss%40x", "redis://***@127.0.0.1/0"},
        {"redis://:only-pass@[::1]:6379/3", "only-pass", "redis://***@[::1]:6379/3"},
        {"Redis://relay:Hunter2@127.0.0.1/0", "Hunter2", "Redis://***@127.0.0.1/0"},
        {"REDIS://relay:pa/ss@h/0", "pa/ss", "REDIS://***@h/0"},
        {"postgres:/rp:s3cret@db/relay", "s3cret", "postgres:/***@db/relay"},
        {"postgres:rp:s3cret@db/relay", "s3cret", "***@db/relay"},
        {"rp:s3cret@db:5432/relay", "s3cret", "***@db:5432/relay"},
        {"//rp:s3cret@db/relay", "s3cret", "***@db/relay"},
        {"redis:///rp:s3cret@h", "s3cret", "redis:///***@h"},
        {"redis://relay:s3cret", "s3cret", "redis://***"},
        {"redis://relay:s3/cret", "s3/cret", "redis://***"},
        {"user:s3cret", "s3cret", "***"},
        {"postgresql://rp@db/relay?password=hunter2&sslmode=require", "hunter2",
         "postgresql://***@db/relay?password=***"},
        {"postgresql://db/relay?sslmode=require&PassWord=hu&nter2", "hu&nter2",
         "postgresql://db/relay?sslmode=require&PassWord=***"},
        {"mysql://db/x?sslpassword=abc123", "abc123", "mysql://db/x?sslpassword=***"},
    };
    for (const auto& r : rows) {
        const auto shown = util::mask_url(r.url);
        EXPECT_EQ(shown, r.shown) << r.url;
        EXPECT_EQ(shown.find(r.password), std::string::npos) << r.url << " -> " << shown;
        // The parser (when it accepts the text) agrees: its redacted form hides it too.
        if (auto u = store::parse_store_url(r.url)) {
            EXPECT_EQ(u->redacted().find(r.password), std::string::npos) << r.url << " -> " << u->redacted();
        }
    }
}

TEST(UrlMask, NothingToMaskIsUnchanged) {
    for (const char* url : {"redis://127.0.0.1:6379/0", "redis://[::1]:6379/0?prefix=rp:", "redis://[::1]",
                            "postgresql://db/relay?sslmode=require", "embedded", "", "host:6379",
                            "unix:/run/x.sock"})
        EXPECT_EQ(util::mask_url(url), url);
}

TEST(UrlMask, ParserTakesTheLastAtAsTheEndOfTheUserinfo) {
    auto u = store::parse_store_url("redis://relay:pa/ss@w?rd@127.0.0.1:6380/2");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->user, "relay");
    EXPECT_EQ(u->password, "pa/ss@w?rd");
    EXPECT_EQ(u->host, "127.0.0.1");
    EXPECT_EQ(u->port, 6380);
    EXPECT_EQ(u->database, "2");
    EXPECT_EQ(u->redacted(), "redis://relay:***@127.0.0.1:6380/2");
}

std::string temp_file(const std::string& content, mode_t mode) {
    char tmpl[] = "/tmp/rp_secret_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(tmpl) << content;
    ::chmod(tmpl, mode);
    return tmpl;
}

TEST(SecretFile, WarnsWhenOthersCanRead) {
    const auto path = temp_file("s3cret\n", 0640);
    EXPECT_FALSE(util::secret_file_warning(path, "store_password_file"));
    ::chmod(path.c_str(), 0644);
    auto w = util::secret_file_warning(path, "store_password_file");
    ASSERT_TRUE(w);
    EXPECT_NE(w->find("readable by others"), std::string::npos) << *w;
    EXPECT_NE(w->find("store_password_file"), std::string::npos) << *w;
    ::chmod(path.c_str(), 0602);
    EXPECT_TRUE(util::secret_file_warning(path, "tls_key")) << "writable by others";
    EXPECT_FALSE(util::secret_file_warning("/nonexistent/rp", "tls_key"));
    ::unlink(path.c_str());
}

TEST(ConfigSecrets, ApiHeaderFileIsReadAndNeverShown) {
    const auto header = temp_file("X-Relay-Key: hdr-s3cret\n", 0600);
    const std::string source = "[[source]]\ntype = \"dovecot-auth-policy\"\nlisten = [\"127.0.0.1:10040\"]\n";
    auto cfg = config::parse_config(source + "api_header_file = \"" + header + "\"\n", "t.toml");
    ASSERT_TRUE(cfg) << cfg.error().message;
    ASSERT_EQ(cfg->sources.size(), 1u);
    EXPECT_EQ(cfg->sources[0].api_header, "X-Relay-Key: hdr-s3cret");
    EXPECT_EQ(cfg->sources[0].api_header_file, header);

    auto both = config::parse_config(source + "api_header = \"A: b\"\napi_header_file = \"" + header + "\"\n", "t.toml");
    ASSERT_FALSE(both);
    EXPECT_NE(both.error().message.find("not both"), std::string::npos) << both.error().message;
    auto bad = config::parse_config(source + "api_header = \"no-colon-s3cret\"\n", "t.toml");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message.find("no-colon-s3cret"), std::string::npos) << bad.error().message;
    auto missing = config::parse_config(source + "api_header_file = \"/nonexistent/rp.header\"\n", "t.toml");
    EXPECT_FALSE(missing);
    ::unlink(header.c_str());
}

TEST(ConfigSecrets, StoreErrorsMaskTheUrl) {
    auto cfg = config::parse_config("store = \"Redis://relay:pa/ss@127.0.0.1/0\"\n", "t.toml");
    ASSERT_FALSE(cfg);
    EXPECT_EQ(cfg.error().message.find("pa/ss"), std::string::npos) << cfg.error().message;
    EXPECT_NE(cfg.error().message.find("Redis://***@127.0.0.1/0"), std::string::npos) << cfg.error().message;
}

}  // namespace
}  // namespace rp
