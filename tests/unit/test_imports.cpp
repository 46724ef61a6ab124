// `relaypermit import` readers (pure parsers and their file access), allow_file, the control
// codec's import command, and the postfix-hash / postfix-lmdb exports (read back with libdb and
// liblmdb here; tests/integration/test_import.py asks the real postmap).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/allow_file.hpp"
#include "config/config.hpp"
#include "daemon/control_codec.hpp"
#include "exports/db_maps.hpp"
#include "exports/exporter.hpp"
#include "imports/import_files.hpp"
#include "imports/import_parsers.hpp"

namespace rp::imports {
namespace {

namespace fs = std::filesystem;

class ImportDir {
public:
    ImportDir() {
        std::string t = (fs::temp_directory_path() / "rp-imports-XXXXXX").string();
        path_ = ::mkdtemp(t.data());
    }
    ~ImportDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

void write_text(const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

core::Address ip(std::string_view s) { return *core::Address::parse(s); }

TEST(ImportParsers, AddressForms) {
    EXPECT_EQ(parse_import_address("192.0.2.1"), ip("192.0.2.1"));
    EXPECT_EQ(parse_import_address(std::string_view("192.0.2.1\0", 10)), ip("192.0.2.1"));
    EXPECT_EQ(parse_import_address("192.0.2.1/32"), ip("192.0.2.1"));
    EXPECT_EQ(parse_import_address("2001:db8::1/128"), ip("2001:db8::1"));
    EXPECT_EQ(parse_import_address(std::string_view("2001:db8::1/128\0", 16)), ip("2001:db8::1"));
    for (std::string_view bad : {"", "192.0.2.0/24", "2001:db8::/64", "192.0.2.1/128", "host.example", "192.0.2.1 ",
                                 "192.0.2.1/", "/32"})
        EXPECT_FALSE(parse_import_address(bad)) << bad;
}

TEST(ImportParsers, PopBeforeSmtpEntriesHaveNoTime) {
    const std::vector<Record> recs = {{"192.0.2.1", "ok"}, {std::string("192.0.2.2\0", 10), "ok"}, {"junk", "ok"}};
    auto b = parse_pop_before_smtp(recs);
    ASSERT_EQ(b.entries.size(), 2u);
    EXPECT_EQ(b.entries[0].kind, EntryTime::none);
    EXPECT_EQ(b.entries[1].ip, ip("192.0.2.2"));
    EXPECT_EQ(b.malformed, 1u);
    ASSERT_EQ(b.examples.size(), 1u);
}

TEST(ImportParsers, DracKeepsEachExpiry) {
    const std::vector<Record> recs = {{"192.0.2.1/32", "1790000000"},
                                      {std::string("2001:db8::5\0", 12), std::string("1790000060\0", 11)},
                                      {"192.0.2.3", "soon"},
                                      {"192.0.2.4", "-5"},
                                      {"192.0.2.0/24", "1790000000"}};
    auto b = parse_drac(recs);
    ASSERT_EQ(b.entries.size(), 2u);
    EXPECT_EQ(b.entries[0].kind, EntryTime::expires);
    EXPECT_EQ(b.entries[0].time, core::from_unix_seconds(1790000000));
    EXPECT_EQ(b.entries[1].ip, ip("2001:db8::5"));
    EXPECT_EQ(b.entries[1].time, core::from_unix_seconds(1790000060));
    EXPECT_EQ(b.malformed, 3u);
}

TEST(ImportParsers, SendmailAccessTakesOnlyRelayAddresses) {
    const auto b = parse_sendmail_access(
        "# written by the SMTP-after-POP patch\n"
        "192.0.2.1\tRELAY\n"
        "connect:192.0.2.2 RELAY\n"
        "IPv6:2001:db8::7 relay\n"
        "Connect:IPv6:2001:db8::8 RELAY\r\n"
        "spammer.example REJECT\n"
        "connect:192.0.2 RELAY\n"
        "example.com RELAY\n"
        "192.0.2.9 OK\n"
        "\n"
        "loneword\n");
    ASSERT_EQ(b.entries.size(), 4u);
    EXPECT_EQ(b.entries[2].ip, ip("2001:db8::7"));
    EXPECT_EQ(b.entries[3].ip, ip("2001:db8::8"));
    EXPECT_EQ(b.skipped, 4u);
    EXPECT_EQ(b.malformed, 1u);
}

TEST(ImportParsers, SqlTimes) {
    EXPECT_EQ(parse_sql_time("1790000000"), core::from_unix_seconds(1790000000));
    EXPECT_EQ(parse_sql_time("1790000000.25"), core::from_unix_seconds(1790000000));
    EXPECT_EQ(parse_sql_time("2026-12-05 10:00:00"), core::from_unix_seconds(1796464800));
    EXPECT_EQ(parse_sql_time("2026-12-05T10:00:00.123+00"), core::from_unix_seconds(1796464800));
    EXPECT_EQ(parse_sql_time("2026-12-05 10:00:00Z"), core::from_unix_seconds(1796464800));
    for (std::string_view bad : {"", "x", "2026-12-05 10:00:00+02", "2026-13-05 10:00:00", "1790000000.", "-1",
                                 "99999999999999999999"})
        EXPECT_FALSE(parse_sql_time(bad)) << bad;
}

TEST(ImportParsers, SqlRowsWithNullsAndUsers) {
    using Row = std::vector<std::optional<std::string>>;
    const std::vector<Row> rows = {{"192.0.2.1", "1790000000", "alice"},
                                   {"192.0.2.2", std::nullopt},
                                   {std::nullopt, "1790000000"},
                                   {"192.0.2.3", "2026-12-05 10:00:00", std::string("bad\nuser")},
                                   {"192.0.2.4"}};
    auto b = parse_sql_rows(rows);
    ASSERT_EQ(b.entries.size(), 2u);
    EXPECT_EQ(b.entries[0].user, "alice");
    EXPECT_EQ(b.entries[0].kind, EntryTime::login);
    EXPECT_EQ(b.entries[1].user, "");  // control characters: dropped, the entry kept
    EXPECT_EQ(b.malformed, 3u);
}

TEST(ImportParsers, StaticAllowedLines) {
    const auto s = parse_static_allowed("# smtp-poplock\n192.0.2.1\n198.51.100.0/24 # office\n203.0.113.\n10\n"
                                        "2001:db8::/48\n  \nnot-an-address\n192.0.2.1.\n");
    ASSERT_EQ(s.networks.size(), 5u);
    EXPECT_EQ(s.networks[2].to_string(), "203.0.113.0/24");
    EXPECT_EQ(s.networks[3].to_string(), "10.0.0.0/8");
    EXPECT_EQ(s.malformed, 2u);
}

TEST(ImportFiles, BerkeleyHashReadBack) {
    ImportDir d;
    const std::vector<Record> recs = {{"192.0.2.1", "ok"}, {"192.0.2.2", "ok"}};
    ASSERT_TRUE(exports::write_bdb_hash(d / "pbs.db", recs));
    auto got = read_berkeley_db(d / "pbs.db");
    ASSERT_TRUE(got) << got.error().message;
    std::sort(got->begin(), got->end());
    EXPECT_EQ(*got, recs);
    write_text(d / "text.db", "not a database\n");
    EXPECT_FALSE(read_berkeley_db(d / "text.db"));
    EXPECT_FALSE(read_berkeley_db(d / "missing.db"));
    ASSERT_EQ(::symlink((d / "pbs.db").c_str(), (d / "link.db").c_str()), 0);
    EXPECT_FALSE(read_berkeley_db(d / "link.db"));  // a symlink is not followed
}

TEST(ImportFiles, RelayCtrlDirectoryNeverFollowsSymlinks) {
    ImportDir d;
    const std::string dir = d / "relay-ctrl";
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    write_text(dir + "/192.0.2.1", "");
    write_text(dir + "/2001:db8::9", "");
    write_text(dir + "/junk", "");
    write_text(d / "outside", "");
    ASSERT_EQ(::symlink((d / "outside").c_str(), (dir + "/192.0.2.66").c_str()), 0);
    ASSERT_EQ(::mkdir((dir + "/192.0.2.77").c_str(), 0700), 0);
    const struct timespec t[2] = {{1790000000, 0}, {1790000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/192.0.2.1").c_str(), t, 0), 0);
    auto b = read_relay_ctrl(dir);
    ASSERT_TRUE(b) << b.error().message;
    ASSERT_EQ(b->entries.size(), 2u);
    for (const auto& e : b->entries) {
        EXPECT_EQ(e.kind, EntryTime::login);
        if (e.ip == ip("192.0.2.1")) {
            EXPECT_EQ(e.time, core::from_unix_seconds(1790000000));
        }
    }
    EXPECT_EQ(b->malformed, 3u);  // junk, the symlink, the directory
    ASSERT_EQ(::symlink(dir.c_str(), (d / "dirlink").c_str()), 0);
    EXPECT_FALSE(read_relay_ctrl(d / "dirlink"));
}

TEST(ImportFiles, SendmailAccessFromAFile) {
    ImportDir d;
    write_text(d / "access", "192.0.2.1 RELAY\nexample.com REJECT\n");
    auto b = read_import("sendmail-access", d / "access");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->entries.size(), 1u);
    EXPECT_EQ(b->skipped, 1u);
    EXPECT_FALSE(read_import("sql", d / "access"));
}

TEST(AllowFile, ParsesStrictlyAndNamesTheLine) {
    auto ok = config::parse_allow_file("# office\n192.0.2.0/24\n  2001:db8::/32  # v6\n\n198.51.100.7\n", "/f");
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->size(), 3u);
    EXPECT_EQ((*ok)[1].line, 3);
    EXPECT_EQ((*ok)[2].network.to_string(), "198.51.100.7");
    auto bad = config::parse_allow_file("192.0.2.0/24\n192.0.2.1/24\n", "/f");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("/f:2:"), std::string::npos) << bad.error().message;
}

TEST(AllowFile, LoadConfigAppendsFilesAndListsOrigins) {
    ImportDir d;
    write_text(d / "static.allow", "198.51.100.0/24\n");
    write_text(d / "relaypermit.toml", "allow = [\"192.0.2.0/24\"]\nallow_file = [\"" + (d / "static.allow") + "\"]\n");
    auto cfg = config::load_config_and_allow_files(d / "relaypermit.toml", true);
    ASSERT_TRUE(cfg) << cfg.error().message;
    ASSERT_EQ(cfg->allow.size(), 2u);
    const auto list = config::static_allow_list(*cfg);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].from, d / "relaypermit.toml" + ": allow");
    EXPECT_EQ(list[1].from, d / "static.allow" + ":1");
    write_text(d / "static.allow", "not a network\n");
    EXPECT_FALSE(config::load_config_and_allow_files(d / "relaypermit.toml", true));
    std::filesystem::remove(d / "static.allow");
    EXPECT_FALSE(config::load_config_and_allow_files(d / "relaypermit.toml", true));
    EXPECT_FALSE(config::parse_config("allow_file = [\"relative\"]\n", "x.toml"));
}

TEST(ImportControl, CodecChecksEveryEntry) {
    auto r = daemon::parse_control_request(
        R"({"cmd":"import","format":"drac","dry_run":true,"entries":[{"ip":"192.0.2.1","expires":1790000000},)"
        R"({"ip":"192.0.2.2","login":1790000000,"user":"alice"},{"ip":"2001:db8::1"}]})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->cmd, daemon::ControlCmd::import_permits);
    EXPECT_TRUE(r->dry_run);
    ASSERT_EQ(r->entries.size(), 3u);
    EXPECT_EQ(r->entries[0].kind, EntryTime::expires);
    EXPECT_EQ(r->entries[1].user, "alice");
    EXPECT_EQ(r->entries[2].kind, EntryTime::none);
    for (const char* bad : {
             R"({"cmd":"import","format":"nope","entries":[{"ip":"192.0.2.1"}]})",
             R"({"cmd":"import","format":"drac","entries":[]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"x"}]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1","login":1,"expires":2}]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1","login":-1}]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1","login":1.5}]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1","extra":1}]})",
             R"({"cmd":"import","format":"drac","entries":[{"user":"a"}]})",
             R"({"cmd":"import","format":"drac","entries":[{"ip":"192.0.2.1"}],"dry_run":"yes"})",
             R"({"cmd":"import","entries":[{"ip":"192.0.2.1"}]})",
             R"({"cmd":"list","static":1})",
         })
        EXPECT_FALSE(daemon::parse_control_request(bad)) << bad;
    auto l = daemon::parse_control_request(R"({"cmd":"list","static":true})");
    ASSERT_TRUE(l);
    EXPECT_TRUE(l->static_list);
}

TEST(PostfixDbExport, HashAndLmdbHoldPostmapsRecords) {
    ImportDir d;
    const auto now = core::from_unix_seconds(1790000000);
    const std::vector<core::Permit> live = {
        {core::Cidr::host(ip("192.0.2.1")), "alice", "test", now, now + std::chrono::minutes(5)},
        {core::Cidr::host(ip("2001:db8::1")), "bob", "test", now, now + std::chrono::minutes(5)},
        {core::Cidr::host(ip("192.0.2.9")), "old", "test", now, now}};
    config::ExportConfig hash{config::ExportType::postfix_hash, d / "relay.db", "", {}, std::chrono::seconds(10), 0};
    auto e = exports::open_exporter(hash);
    ASSERT_TRUE(e) << e.error().message;
    ASSERT_TRUE((*e)->write(live, now));
    auto recs = read_berkeley_db(d / "relay.db");
    ASSERT_TRUE(recs) << recs.error().message;
    std::sort(recs->begin(), recs->end());
    const std::vector<Record> want = {{std::string("192.0.2.1\0", 10), std::string("OK\0", 3)},
                                      {std::string("2001:db8::1\0", 12), std::string("OK\0", 3)}};
    EXPECT_EQ(*recs, want);
    ASSERT_TRUE((*e)->write(live, now));
    EXPECT_EQ((*e)->replacements(), 1u);  // same content: not rewritten

    config::ExportConfig lmdb{config::ExportType::postfix_lmdb, d / "relay.lmdb", "", {}, std::chrono::seconds(10), 0};
    auto l = exports::open_exporter(lmdb);
    ASSERT_TRUE(l) << l.error().message;
    ASSERT_TRUE((*l)->write(live, now));
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_open(env, (d / "relay.lmdb").c_str(), MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), 0);
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
    MDB_val k{10, const_cast<char*>("192.0.2.1")}, v{};
    ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
    EXPECT_EQ(std::string(static_cast<const char*>(v.mv_data), v.mv_size), std::string("OK\0", 3));
    MDB_val gone{10, const_cast<char*>("192.0.2.9")};
    EXPECT_EQ(mdb_get(txn, dbi, &gone, &v), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    config::ExportConfig wrong{config::ExportType::postfix_lmdb, d / "relay.db", "", {}, std::chrono::seconds(10), 0};
    EXPECT_FALSE(exports::open_exporter(wrong));
}

}  // namespace
}  // namespace rp::imports
