// Golden corpora: logs written by real servers (Dovecot 2.3 and a Dovecot proxy, Courier, Cyrus, popa3d,
// solid-pop3d, GNU Mailutils) through a real rsyslogd in three framings, captured by
// tests/integration/test_real_servers.py (RELAYPERMIT_SAVE_CORPUS=DIR). Each NAME.log must
// give exactly NAME.expected (`relaypermit scan` output), so pattern changes are checked
// against real lines without starting the servers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "matching/matcher.hpp"

namespace {

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(Golden, RealServerCorporaGiveExactlyTheExpectedLogins) {
    const std::filesystem::path dir = std::filesystem::path(RP_SOURCE_DIR) / "tests/data/golden";
    auto matcher = *rp::matching::Matcher::build({}, {});
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".log") continue;
        ++files;
        rp::matching::MatchState state(*matcher);
        std::string got;
        matcher->scan(slurp(e.path()), rp::core::from_unix_seconds(2'000'000'000), state,
                      [&](const rp::matching::LoginMatch& m) {
                          got += m.ip.to_string() + "\t" + std::string(m.user) + "\t" + std::string(m.server) + "\n";
                      });
        auto expected_path = e.path();
        expected_path.replace_extension(".expected");
        EXPECT_EQ(got, slurp(expected_path)) << e.path();
    }
    EXPECT_GE(files, 21);
}
