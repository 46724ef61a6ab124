// [[export]] map files: key formats, static-file parsers, the five exporters on real files, and after_write.
// Where the real tool is installed (tcprules from ucspi-tcp, postmap with postfix-cdb, makemap
// from sendmail-bin or $RP_MAKEMAP) the output is compared with it; otherwise that check skips.
#include <arpa/inet.h>
#include <db.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "exports/after_write.hpp"
#include "exports/export_scheduler.hpp"
#include "exports/exporter.hpp"
#include "exports/map_formats.hpp"
#include "util/event_loop.hpp"

namespace rp::exports {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
public:
    TempDir() {
        std::string t = (fs::temp_directory_path() / "rp-exports-XXXXXX").string();
        path_ = ::mkdtemp(t.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void spit(const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string find_program(const std::vector<std::string>& candidates) {
    for (const auto& c : candidates)
        if (!c.empty() && ::access(c.c_str(), X_OK) == 0) return c;
    return {};
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// Runs a shell command; returns its stdout (nullopt when it failed).
std::optional<std::string> run(const std::string& cmd) {
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return std::nullopt;
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (::pclose(p) != 0) return std::nullopt;
    return out;
}

core::Permit permit(std::string_view cidr, core::Time granted, core::Time expires, std::string user = "alice") {
    core::Permit p;
    p.network = core::Cidr::parse(cidr).value();
    p.user = std::move(user);
    p.source = "test";
    p.granted = granted;
    p.expires = expires;
    return p;
}

const core::Time t0 = core::from_unix_seconds(1'700'000'000);

config::ExportConfig export_config(std::string type, std::string path, std::string static_path = "") {
    config::ExportConfig c;
    c.type = *config::from_string<config::ExportType>(type);
    c.path = std::move(path);
    c.static_path = std::move(static_path);
    return c;
}

// ---- keys ----

TEST(ExportKeys, Postfix) {
    auto key = [](const char* s) { return postfix_key(core::Cidr::parse(s).value()); };
    EXPECT_EQ(key("192.0.2.1"), "192.0.2.1");
    EXPECT_EQ(key("2001:db8::1"), "2001:db8::1");
    EXPECT_EQ(key("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
    EXPECT_EQ(key("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");  // inet_ntop: a lone 0 stays
    EXPECT_EQ(key("2001:db8::/64"), std::nullopt);
}

TEST(ExportKeys, Sendmail) {
    auto key = [](const char* s) { return sendmail_key(core::Cidr::parse(s).value()); };
    EXPECT_EQ(key("192.0.2.1"), "connect:192.0.2.1");
    EXPECT_EQ(key("::1"), "connect:ipv6:0:0:0:0:0:0:0:1");
    EXPECT_EQ(key("2001:db8::1"), "connect:ipv6:2001:db8:0:0:0:0:0:1");
    EXPECT_EQ(key("2001:db8:0:a::/64"), "connect:ipv6:2001:db8:0:a");
    EXPECT_EQ(key("2001:db8::/56"), std::nullopt);
    EXPECT_EQ(key("192.0.2.0/24"), "connect:192.0.2");
}

TEST(ExportKeys, Tcprules) {
    auto key = [](const char* s) { return tcprules_key(core::Cidr::parse(s).value()); };
    EXPECT_EQ(key("192.0.2.1"), "192.0.2.1");
    EXPECT_EQ(key("192.0.2.0/24"), "192.0.2.");
    EXPECT_EQ(key("2001:db8::1"), "2001:db8::1");
    EXPECT_EQ(key("2001:db8::/64"), std::nullopt);
    EXPECT_EQ(tcprules_relay_value(""), std::string("+RELAYCLIENT=\0", 14));
}

// ---- tcprules parser vs the real tcprules ----

const char* const k_rules =
    "# static rules\n"
    "127.:allow,RELAYCLIENT=\"\"\n"
    "192.0.2.7:deny\n"
    "198.51.100.:allow,RELAYCLIENT=\"@relay\",FOO='b \"q\" c'  \t\n"
    "\n"
    "no colon here\n"
    "10.1.2.3-6:allow\n"
    "10.9.250-300.:deny\n"
    "user@203.0.113.5:allow,X=//\n"
    "=host.example.org:deny\n"
    ":allow\n"
    "203.0.113.9:allow,A=\"1\",B=\"2\"";  // no final newline

TEST(ExportTcprules, ParsesLikeTcprules) {
    auto recs = parse_tcprules(k_rules);
    ASSERT_TRUE(recs) << recs.error().message;
    ASSERT_EQ(recs->size(), 3 + 4 + 6 + 4);
    EXPECT_EQ((*recs)[0], Record("127.", std::string("+RELAYCLIENT=\0", 14)));
    EXPECT_EQ((*recs)[1], Record("192.0.2.7", std::string("D\0", 2)));
    EXPECT_EQ((*recs)[2].second, std::string("+RELAYCLIENT=@relay\0+FOO=b \"q\" c\0", 33));
    EXPECT_EQ((*recs)[3].first, "10.1.2.3");
    EXPECT_EQ((*recs)[6].first, "10.1.2.6");
    EXPECT_EQ((*recs)[7].first, "10.9.250.");
    EXPECT_EQ((*recs)[12].first, "10.9.255.");
    EXPECT_FALSE(parse_tcprules("1.2.3.4: allow\n"));
    EXPECT_FALSE(parse_tcprules("1.2.3.4:allow,X\n"));
    EXPECT_FALSE(parse_tcprules("1.2.3.4:allow,X=\"open\n"));
    EXPECT_FALSE(parse_tcprules("1.2.3.x-5:allow\n"));
}

TEST(ExportTcprules, ByteIdenticalToRealTcprules) {
    const auto tcprules = find_program({"/usr/bin/tcprules"});
    if (tcprules.empty()) GTEST_SKIP() << "tcprules (ucspi-tcp) not installed";
    TempDir d;
    spit(d / "rules", k_rules);
    ASSERT_TRUE(run(tcprules + " " + d / "real.cdb " + d / "real.tmp < " + d / "rules"));
    auto recs = parse_tcprules(k_rules);
    ASSERT_TRUE(recs);
    auto ours = build_cdb(*recs);
    ASSERT_TRUE(ours);
    EXPECT_EQ(*ours, slurp(d / "real.cdb"));
    auto back = read_cdb(*ours);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, *recs);
}

TEST(ExportTcprules, ExporterMatchesTcprulesOnMergedText) {
    TempDir d;
    const std::string static_text = "127.:allow,RELAYCLIENT=\"\"\n192.0.2.7:deny\n:allow\n";
    spit(d / "tcp.smtp", static_text);
    auto e = open_exporter(export_config("tcprules-cdb", d / "sub/tcp.smtp.cdb", d / "tcp.smtp"));
    ASSERT_TRUE(e) << e.error().message;
    std::vector<core::Permit> live = {permit("203.0.113.20", t0, t0 + 30min), permit("192.0.2.7", t0, t0 + 30min),
                                      permit("198.51.100.1", t0 - 40min, t0 - 10min),  // expired
                                      permit("2001:db8::/64", t0, t0 + 30min)};        // not expressible
    ASSERT_TRUE((*e)->write(live, t0 + 1s));
    const std::string ours = slurp(d / "sub/tcp.smtp.cdb");
    auto recs = read_cdb(ours);
    ASSERT_TRUE(recs);
    ASSERT_EQ(recs->size(), 5);
    EXPECT_EQ((*recs)[3], Record("192.0.2.7", std::string("+RELAYCLIENT=\0", 14)));  // after the static deny
    EXPECT_EQ((*recs)[4], Record("203.0.113.20", std::string("+RELAYCLIENT=\0", 14)));

    const auto tcprules = find_program({"/usr/bin/tcprules"});
    if (tcprules.empty()) GTEST_SKIP() << "tcprules (ucspi-tcp) not installed";
    spit(d / "merged", static_text + "192.0.2.7:allow,RELAYCLIENT=\"\"\n203.0.113.20:allow,RELAYCLIENT=\"\"\n");
    ASSERT_TRUE(run(tcprules + " " + d / "real.cdb " + d / "real.tmp < " + d / "merged"));
    EXPECT_EQ(ours, slurp(d / "real.cdb"));
}

TEST(ExportTcprules, RelayclientValueAndBadStaticKeepsFile) {
    TempDir d;
    spit(d / "static", ":allow\n");
    auto e = open_exporter(export_config("tcprules-cdb", d / "t.cdb", d / "static"), "@example.org");
    ASSERT_TRUE(e);
    std::vector<core::Permit> live = {permit("203.0.113.20", t0, t0 + 30min)};
    ASSERT_TRUE((*e)->write(live, t0));
    const auto before = slurp(d / "t.cdb");
    auto recs = read_cdb(before);
    ASSERT_TRUE(recs);
    EXPECT_EQ(recs->back().second, std::string("+RELAYCLIENT=@example.org\0", 26));
    spit(d / "static", "1.2.3.4:maybe\n");
    auto s = (*e)->write({}, t0);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("unable to parse this line"), std::string::npos);
    EXPECT_EQ(slurp(d / "t.cdb"), before);
}

// tcpserver -x reads the exported file: 127.0.0.2 (permitted) gets RELAYCLIENT, 127.0.0.3 not.
std::optional<std::string> ask_tcpserver(const char* source, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &a.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

TEST(ExportTcprules, TcpserverReadsExportedRules) {
    const auto tcpserver = find_program({"/usr/bin/tcpserver"});
    if (tcpserver.empty()) GTEST_SKIP() << "tcpserver (ucspi-tcp) not installed";
    TempDir d;
    spit(d / "static", "127.0.0.4:deny\n:allow\n");
    auto e = open_exporter(export_config("tcprules-cdb", d / "tcp.smtp.cdb", d / "static"));
    ASSERT_TRUE(e);
    std::vector<core::Permit> live = {permit("127.0.0.2", t0, t0 + 30min)};
    ASSERT_TRUE((*e)->write(live, t0));

    const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(probe);
    const std::string port = std::to_string(ntohs(a.sin_port));
    const std::string cdb = d / "tcp.smtp.cdb";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl(tcpserver.c_str(), "tcpserver", "-q", "-R", "-H", "-l", "0", "-x", cdb.c_str(), "127.0.0.1",
                port.c_str(), "/bin/sh", "-c", "echo \"rc=${RELAYCLIENT-unset}\"", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::optional<std::string> r;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(r = ask_tcpserver("127.0.0.3", std::stoi(port))) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);  // polling for the listener, bounded by the deadline
    EXPECT_EQ(r, "rc=unset\n");
    EXPECT_EQ(ask_tcpserver("127.0.0.2", std::stoi(port)), "rc=\n");
    EXPECT_EQ(ask_tcpserver("127.0.0.4", std::stoi(port)), "");  // static deny: closed at once
    ASSERT_TRUE((*e)->write(live, t0 + 30min));                   // expired: gone
    EXPECT_EQ(ask_tcpserver("127.0.0.2", std::stoi(port)), "rc=unset\n");
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
}

// ---- postfix-cdb ----

TEST(ExportPostfix, WritesKeysWithoutNulLikePostmap) {
    TempDir d;
    auto e = open_exporter(export_config("postfix-cdb", d / "etc/postfix/relaypermit.cdb"));
    ASSERT_TRUE(e) << e.error().message;
    std::vector<core::Permit> live = {permit("203.0.113.20", t0, t0 + 30min), permit("2001:db8::5", t0, t0 + 30min),
                                      permit("192.0.2.1", t0, t0 + 30min), permit("198.51.100.1", t0, t0)};
    ASSERT_TRUE((*e)->write(live, t0));
    const std::string ours = slurp(d / "etc/postfix/relaypermit.cdb");
    auto recs = read_cdb(ours);
    ASSERT_TRUE(recs);
    EXPECT_EQ(*recs, (std::vector<Record>{{"192.0.2.1", "OK"}, {"2001:db8::5", "OK"}, {"203.0.113.20", "OK"}}));

    const auto postmap = find_program({"/usr/sbin/postmap"});
    if (postmap.empty() || !fs::exists("/usr/lib/postfix/postfix-cdb.so"))
        GTEST_SKIP() << "postmap with the cdb map type (postfix-cdb) not installed";
    spit(d / "text", "192.0.2.1 OK\n2001:db8::5 OK\n203.0.113.20 OK\n");
    ASSERT_TRUE(run(postmap + " cdb:" + d / "text"));
    EXPECT_EQ(ours, slurp(d / "text.cdb"));
    const std::string map = "cdb:" + d / "etc/postfix/relaypermit";
    EXPECT_EQ(run(postmap + " -q 192.0.2.1 " + map), "OK\n");
    EXPECT_EQ(run(postmap + " -q 2001:db8::5 " + map), "OK\n");
    EXPECT_EQ(run(postmap + " -q 198.51.100.1 " + map), std::nullopt);  // exit 1: not found
}

TEST(ExportPostfix, SkipsIdenticalRewrite) {
    TempDir d;
    auto e = open_exporter(export_config("postfix-cdb", d / "p.cdb"));
    ASSERT_TRUE(e);
    std::vector<core::Permit> live = {permit("203.0.113.20", t0, t0 + 30min)};
    ASSERT_TRUE((*e)->write(live, t0));
    struct stat a, b, c;
    ASSERT_EQ(::stat((d / "p.cdb").c_str(), &a), 0);
    ASSERT_TRUE((*e)->write(live, t0 + 1s));
    ASSERT_EQ(::stat((d / "p.cdb").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    ASSERT_TRUE((*e)->write(live, t0 + 30min));  // expired now: rewritten, empty
    ASSERT_EQ(::stat((d / "p.cdb").c_str(), &c), 0);
    EXPECT_NE(a.st_ino, c.st_ino);
    EXPECT_TRUE(read_cdb(slurp(d / "p.cdb"))->empty());
    // no temporary files left behind
    int n = 0;
    for ([[maybe_unused]] auto& ent : fs::directory_iterator(d.path())) ++n;
    EXPECT_EQ(n, 1);
}

TEST(ExportOpen, RejectsBadConfig) {
    TempDir d;
    // An unknown type cannot reach open_exporter: ExportType has no such value (the config parser
    // refuses the name; ExportAfterWrite.ConfigKeys covers that).
    EXPECT_FALSE(open_exporter(export_config("postfix-cdb", "")));
    EXPECT_FALSE(open_exporter(export_config("postfix-cdb", d / "relaypermit")));
    EXPECT_FALSE(open_exporter(export_config("sendmail-access", d / "access")));
    EXPECT_FALSE(open_exporter(export_config("tcprules-cdb", d / "x.cdb", d / "missing")));
    EXPECT_FALSE(open_exporter(export_config("relay-ctrl-dir", d / "rc", d / "static")));
}

// ---- sendmail-access ----

std::vector<Record> read_db(const std::string& path) {
    std::vector<Record> out;
    DB* db = nullptr;
    if (db_create(&db, nullptr, 0) != 0) return out;
    if (db->open(db, nullptr, path.c_str(), nullptr, DB_HASH, DB_RDONLY, 0) != 0) {
        db->close(db, 0);
        return out;
    }
    DBC* cur = nullptr;
    db->cursor(db, nullptr, &cur, 0);
    DBT k{}, v{};
    while (cur->get(cur, &k, &v, DB_NEXT) == 0)
        out.emplace_back(std::string(static_cast<char*>(k.data), k.size), std::string(static_cast<char*>(v.data), v.size));
    cur->close(cur);
    db->close(db, 0);
    std::sort(out.begin(), out.end());
    return out;
}

TEST(ExportSendmail, MakemapFormatMergedWithStatic) {
    auto recs = parse_makemap("# c\nConnect:10.1 REJECT\n\nFrom:Spam@Example.COM  ERROR:5.7.1:550 go away\n");
    ASSERT_TRUE(recs);
    EXPECT_EQ(*recs, (std::vector<Record>{{"connect:10.1", "REJECT"}, {"from:spam@example.com", "ERROR:5.7.1:550 go away"}}));
    EXPECT_FALSE(parse_makemap(" leading space\n"));
    EXPECT_FALSE(parse_makemap("keyonly\n"));
    EXPECT_FALSE(parse_makemap("a x\nA y\n"));

    TempDir d;
    spit(d / "access", "Connect:192.0.2.7 REJECT\nConnect:localhost RELAY\n");
    auto e = open_exporter(export_config("sendmail-access", d / "mail/access.db", d / "access"));
    ASSERT_TRUE(e) << e.error().message;
    std::vector<core::Permit> live = {permit("203.0.113.20", t0, t0 + 30min), permit("192.0.2.7", t0, t0 + 30min),
                                      permit("2001:db8::1", t0, t0 + 30min)};
    ASSERT_TRUE((*e)->write(live, t0));
    EXPECT_EQ(read_db(d / "mail/access.db"), (std::vector<Record>{{"connect:192.0.2.7", "REJECT"},
                                                                  {"connect:203.0.113.20", "RELAY"},
                                                                  {"connect:ipv6:2001:db8:0:0:0:0:0:1", "RELAY"},
                                                                  {"connect:localhost", "RELAY"}}));
    struct stat a, b;
    ASSERT_EQ(::stat((d / "mail/access.db").c_str(), &a), 0);
    ASSERT_TRUE((*e)->write(live, t0 + 1s));
    ASSERT_EQ(::stat((d / "mail/access.db").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);  // identical: not rewritten

    const char* env = std::getenv("RP_MAKEMAP");
    const auto makemap = find_program({env ? env : "", "/usr/sbin/makemap"});
    if (makemap.empty()) GTEST_SKIP() << "makemap (sendmail-bin) not found; set RP_MAKEMAP";
    auto dump = run(makemap + " -C /dev/null -u hash " + shell_quote(d / "mail/access.db") + " 2>/dev/null");
    ASSERT_TRUE(dump);
    std::vector<std::string> lines;
    std::stringstream ss(*dump);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    EXPECT_EQ(lines, (std::vector<std::string>{"connect:192.0.2.7\tREJECT", "connect:203.0.113.20\tRELAY",
                                               "connect:ipv6:2001:db8:0:0:0:0:0:1\tRELAY", "connect:localhost\tRELAY"}));
    // and what makemap itself writes from the same text reads back the same through libdb
    spit(d / "text", "Connect:192.0.2.7 REJECT\nConnect:localhost RELAY\nconnect:203.0.113.20 RELAY\n"
                     "connect:ipv6:2001:db8:0:0:0:0:0:1 RELAY\n");
    ASSERT_TRUE(run(makemap + " -C /dev/null hash " + shell_quote(d / "mm") + " < " + shell_quote(d / "text") + " 2>/dev/null"));
    EXPECT_EQ(read_db(d / "mm.db"), read_db(d / "mail/access.db"));
}

// ---- relay-ctrl-dir ----

TEST(ExportRelayCtrl, OneFilePerPermitWithGrantMtime) {
    TempDir d;
    const std::string dir = d / "spool/relay-ctrl/allow";
    auto e = open_exporter(export_config("relay-ctrl-dir", dir));
    ASSERT_TRUE(e) << e.error().message;
    ASSERT_TRUE(fs::is_directory(dir));
    spit(dir + "/README", "keep me");
    spit(dir + "/198.51.100.9", "");  // a stale permit file: removed
    const core::Time g = t0 + 123456us;
    std::vector<core::Permit> live = {permit("203.0.113.20", g, g + 30min, "bob@example.org"),
                                      permit("2001:db8::1", g, g + 30min, "evil\nname"),
                                      permit("192.0.2.3", t0 - 1h, t0 - 30min)};  // expired
    ASSERT_TRUE((*e)->write(live, t0 + 1s));
    EXPECT_EQ(slurp(dir + "/203.0.113.20"), std::string("USER=bob@example.org\0", 21));
    EXPECT_EQ(slurp(dir + "/2001:db8::1"), "");  // unsafe user name is not written
    EXPECT_FALSE(fs::exists(dir + "/192.0.2.3"));
    EXPECT_FALSE(fs::exists(dir + "/198.51.100.9"));
    EXPECT_EQ(slurp(dir + "/README"), "keep me");
    struct stat st;
    ASSERT_EQ(::stat((dir + "/203.0.113.20").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtim.tv_sec, 1'700'000'000);
    EXPECT_EQ(st.st_mtim.tv_nsec, 123456000);
    const auto ino = st.st_ino;
    ASSERT_TRUE((*e)->write(live, t0 + 2s));
    ASSERT_EQ(::stat((dir + "/203.0.113.20").c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, ino);  // unchanged
    ASSERT_TRUE((*e)->write({}, t0 + 3s));
    EXPECT_FALSE(fs::exists(dir + "/203.0.113.20"));
    EXPECT_TRUE(fs::exists(dir + "/README"));
}


// ---- opensmtpd-table ----

TEST(ExportKeys, Opensmtpd) {
    auto key = [](std::string_view c) { return opensmtpd_key(core::Cidr::parse(c).value()); };
    EXPECT_EQ(key("192.0.2.1"), "192.0.2.1");
    EXPECT_EQ(key("2001:db8:0:0:0:0:0:1"), "2001:db8::1");
    EXPECT_EQ(key("198.51.100.0/24"), "198.51.100.0/24");
    EXPECT_EQ(key("2001:db8:1::/64"), "2001:db8:1::/64");
    EXPECT_EQ(key("2001:db8::/33"), "2001:db8::/33");
    EXPECT_EQ(key("::/0"), std::nullopt);
}

TEST(ExportOpensmtpd, OneAddressPerLineWithPlaceholder) {
    TempDir d;
    auto e = open_exporter(export_config("opensmtpd-table", d / "sub/relaypermit"));
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_TRUE(fs::is_directory(d / "sub"));
    const std::string header =
        "# relaypermit: permitted relay clients, rewritten at every change; do not edit.\n"
        "# 0.0.0.0 keeps the table usable when no one is permitted (no client has that address).\n"
        "0.0.0.0\n";
    ASSERT_TRUE((*e)->write({}, t0));
    EXPECT_EQ(slurp(d / "sub/relaypermit"), header);  // smtpd refuses an empty list for `from src`
    EXPECT_EQ((*e)->replacements(), 1u);
    std::vector<core::Permit> live = {permit("198.51.100.7", t0, t0 + 30min), permit("2001:db8::/64", t0, t0 + 30min),
                                      permit("192.0.2.1", t0, t0 + 30min), permit("192.0.2.9", t0 - 1h, t0 - 1s)};
    ASSERT_TRUE((*e)->write(live, t0));
    EXPECT_EQ(slurp(d / "sub/relaypermit"), header + "192.0.2.1\n198.51.100.7\n2001:db8::/64\n");
    EXPECT_EQ((*e)->replacements(), 2u);
    ASSERT_TRUE((*e)->write(live, t0 + 1s));  // same content: not rewritten
    EXPECT_EQ((*e)->replacements(), 2u);
    ASSERT_TRUE((*e)->write(live, t0 + 31min));
    EXPECT_EQ(slurp(d / "sub/relaypermit"), header);
    EXPECT_FALSE(open_exporter(export_config("opensmtpd-table", d / "t", d / "static")));
}

// ---- after_write ----

// Runs the loop until `done` or 10 s pass.
template <typename Pred>
bool run_until(util::EventLoop& loop, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        loop.run_once(10ms);
    }
    return true;
}

std::size_t count_lines(const std::string& path) {
    const std::string s = slurp(path);
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST(ExportAfterWrite, RunsAfterChangedWritesAndTheFirst) {
    TempDir d;
    util::EventLoop loop;
    auto cfg = export_config("opensmtpd-table", d / "table");
    const std::string runs = d / "runs";
    cfg.after_write = {"/bin/sh", "-c", "cat \"$1\" | wc -l >> \"$2\"; echo noise; echo more >&2", "sh", d / "table", runs};
    EXPECT_FALSE(open_exporter(cfg));  // no loop: refused
    auto e = open_exporter(cfg, "", &loop);
    ASSERT_TRUE(e) << e.error().message;
    std::vector<core::Permit> live = {permit("192.0.2.1", t0, t0 + 30min)};
    ASSERT_TRUE((*e)->write(live, t0));
    ASSERT_TRUE(run_until(loop, [&] { return count_lines(runs) == 1; }));
    EXPECT_EQ(slurp(runs), "4\n");  // it ran after the file was complete
    ASSERT_TRUE((*e)->write(live, t0 + 1s));  // unchanged: no run
    ASSERT_TRUE((*e)->write({}, t0 + 2s));    // changed
    ASSERT_TRUE(run_until(loop, [&] { return count_lines(runs) == 2; }));
    for (int i = 0; i < 20; ++i) loop.run_once(5ms);
    EXPECT_EQ(slurp(runs), "4\n3\n");

    // A fresh exporter (daemon restart or reload) runs it after its first write even though
    // the file already holds that content: the MTA may still have an older table loaded.
    auto again = open_exporter(cfg, "", &loop);
    ASSERT_TRUE(again);
    ASSERT_TRUE((*again)->write({}, t0 + 3s));
    EXPECT_EQ((*again)->replacements(), 0u);
    ASSERT_TRUE(run_until(loop, [&] { return count_lines(runs) == 3; }));
}

TEST(ExportAfterWrite, NoShellAndRequestsWhileRunningCoalesce) {
    TempDir d;
    util::EventLoop loop;
    const std::string log = d / "log";
    // Arguments are passed as they are: nothing here is shell syntax.
    AfterWriteCommand cmd(loop, {"/bin/sh", "-c", "sleep 0.2; echo \"$1\" >> \"$2\"", "sh", "$(touch " + (d / "pwned") + ")", log},
                          5000ms, "test:x");
    cmd.request();
    EXPECT_TRUE(cmd.running());
    cmd.request();
    cmd.request();  // both coalesce into one more run after the first
    ASSERT_TRUE(run_until(loop, [&] { return cmd.runs() == 2 && !cmd.running(); }));
    for (int i = 0; i < 40; ++i) loop.run_once(10ms);
    EXPECT_EQ(cmd.runs(), 2u);
    EXPECT_EQ(cmd.failures(), 0u);
    EXPECT_EQ(count_lines(log), 2u);
    EXPECT_FALSE(fs::exists(d / "pwned"));
}

TEST(ExportAfterWrite, FailuresTimeoutsAndMissingProgramsAreCounted) {
    util::EventLoop loop;
    AfterWriteCommand fails(loop, {"/bin/sh", "-c", "echo 'cannot reach smtpd' >&2; exit 3"}, 5000ms, "test:fail");
    fails.request();
    ASSERT_TRUE(run_until(loop, [&] { return fails.runs() == 1; }));
    EXPECT_EQ(fails.failures(), 1u);

    AfterWriteCommand missing(loop, {"/nonexistent/smtpctl", "update"}, 5000ms, "test:missing");
    missing.request();
    EXPECT_FALSE(missing.running());
    EXPECT_EQ(missing.runs(), 1u);
    EXPECT_EQ(missing.failures(), 1u);

    const auto start = std::chrono::steady_clock::now();
    AfterWriteCommand hangs(loop, {"/bin/sh", "-c", "sleep 30 & sleep 30"}, 200ms, "test:hang");
    hangs.request();
    ASSERT_TRUE(run_until(loop, [&] { return hangs.runs() == 1; }));
    EXPECT_EQ(hangs.failures(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // the background child held the pipe: not waited for
}

TEST(ExportAfterWrite, ChildGetsDefaultSignals) {
    // The daemon blocks SIGTERM (signalfd) and ignores SIGPIPE; the command must not inherit that.
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old), 0);
    util::EventLoop loop;
    AfterWriteCommand self_kill(loop, {"/bin/sh", "-c", "kill -TERM $$; sleep 5"}, 4000ms, "test:sig");
    const auto start = std::chrono::steady_clock::now();
    self_kill.request();
    const bool done = run_until(loop, [&] { return self_kill.runs() == 1; });
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ASSERT_TRUE(done);
    EXPECT_EQ(self_kill.failures(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);  // died of SIGTERM, not of the timeout
}

TEST(ExportAfterWrite, DestructionKillsARunningCommand) {
    TempDir d;
    util::EventLoop loop;
    const auto start = std::chrono::steady_clock::now();
    {
        AfterWriteCommand cmd(loop, {"/bin/sleep", "30"}, 60000ms, "test:destroy");
        cmd.request();
        EXPECT_TRUE(cmd.running());
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    loop.run_once(1ms);  // nothing of it is left on the loop
}


TEST(ExportAfterWrite, ConfigKeys) {
    auto parse = [](std::string_view body) {
        return config::parse_config(std::string("[[export]]\ntype = \"opensmtpd-table\"\npath = \"/var/lib/rp/t\"\n") +
                                        std::string(body),
                                    "t.toml");
    };
    auto ok = parse("after_write = [\"/usr/sbin/smtpctl\", \"update\", \"table\", \"relaypermit\"]\n"
                    "after_write_timeout = \"500ms\"\n");
    ASSERT_TRUE(ok) << ok.error().message;
    ASSERT_EQ(ok->exports.size(), 1u);
    EXPECT_EQ(ok->exports[0].type, "opensmtpd-table");
    EXPECT_EQ(ok->exports[0].after_write,
              (std::vector<std::string>{"/usr/sbin/smtpctl", "update", "table", "relaypermit"}));
    EXPECT_EQ(ok->exports[0].after_write_timeout, std::chrono::milliseconds(500));
    auto plain = parse("");
    ASSERT_TRUE(plain);
    EXPECT_TRUE(plain->exports[0].after_write.empty());
    EXPECT_EQ(plain->exports[0].after_write_timeout, std::chrono::seconds(10));

    const std::pair<const char*, const char*> bad[] = {
        {"after_write = \"smtpctl update table relaypermit\"\n", "no shell"},  // a string: refused
        {"after_write = []\n", "at least the program"},
        {"after_write = [\"\"]\n", "program name is empty"},
        {"after_write = [\"smtpctl\", 3]\n", "expected a string"},
        {"after_write = [\"x\"]\nafter_write_timeout = \"0s\"\n", "at most 1h"},
        {"after_write = [\"x\"]\nafter_write_timeout = \"2h\"\n", "at most 1h"},
        {"after_write = [\"x\"]\nafter_write_timeout = \"soon\"\n", "after_write_timeout"},
    };
    for (const auto& [body, want] : bad) {
        auto r = parse(body);
        ASSERT_FALSE(r) << body;
        EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
        EXPECT_NE(r.error().message.find("t.toml:"), std::string::npos) << r.error().message;
    }
    auto unknown = config::parse_config("[[export]]\ntype = \"opensmtpd\"\npath = \"/x\"\n", "t.toml");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("opensmtpd-table"), std::string::npos);
}


// ---- ExportScheduler: off-loop writes, retries, the first write and the stop ----

// Short back-off so the retries happen within a test; the loop waits for conditions only.
ExportTiming fast_timing() {
    ExportTiming t;
    t.batch = 1ms;
    t.retry_first = 5ms;
    t.retry_max = 40ms;
    return t;
}

struct SchedulerFixture {
    TempDir d;
    util::EventLoop loop;
    core::ManualClock clock{t0};
    std::vector<core::Permit> live = {permit("192.0.2.1", t0, t0 + 30min), permit("192.0.2.2", t0, t0 + 30min)};
    ExportScheduler sched{loop, clock, [this](core::Time) { return live; }, fast_timing()};

    std::unique_ptr<Exporter> exporter(const config::ExportConfig& cfg) {
        auto e = open_exporter(cfg, "", &loop, StaticCheck::at_write);
        EXPECT_TRUE(e) << e.error().message;
        return e ? std::move(*e) : nullptr;
    }
    void use(std::unique_ptr<Exporter> e) {
        std::vector<std::unique_ptr<Exporter>> v;
        v.push_back(std::move(e));
        sched.set_exporters(std::move(v));
    }
    ExportStatus status() { return sched.status().at(0); }
};

TEST(ExportScheduler, FailedWriteIsRetriedWithoutAnyChangeUntilItSucceeds) {
    SchedulerFixture f;
    const std::string path = f.d / "table";
    fs::create_directories(path + "/in-the-way");  // a directory where the file should be
    f.use(f.exporter(export_config("opensmtpd-table", path)));
    f.sched.write_now();
    EXPECT_TRUE(f.status().failing);
    EXPECT_EQ(f.status().failures, 1u);
    EXPECT_NE(f.status().last_error.find(path), std::string::npos) << f.status().last_error;
    EXPECT_FALSE(f.status().last_success);
    // No changed(): the retries alone try again, several times.
    ASSERT_TRUE(run_until(f.loop, [&] { return f.status().failures >= 3; }));
    fs::remove_all(path);  // the admin fixes it
    ASSERT_TRUE(run_until(f.loop, [&] { return !f.status().failing; }));
    EXPECT_EQ(f.status().writes, 1u);
    EXPECT_EQ(f.status().last_success, t0);
    EXPECT_NE(slurp(path).find("\n192.0.2.2\n"), std::string::npos);
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sched.idle(); }));  // no retry left scheduled
}

TEST(ExportScheduler, MissingStaticFileIsRetriedAndPickedUpOnceItExists) {
    SchedulerFixture f;
    const std::string path = f.d / "tcp.smtp.cdb", rules = f.d / "tcp.smtp";
    EXPECT_FALSE(open_exporter(export_config("tcprules-cdb", path, rules)));  // the strict open refuses
    f.use(f.exporter(export_config("tcprules-cdb", path, rules)));
    f.sched.write_now();
    EXPECT_TRUE(f.status().failing);
    EXPECT_NE(f.status().last_error.find("does not exist"), std::string::npos) << f.status().last_error;
    EXPECT_FALSE(fs::exists(path));
    ASSERT_TRUE(run_until(f.loop, [&] { return f.status().failures >= 2; }));
    spit(rules, "127.0.0.4:deny\n");
    ASSERT_TRUE(run_until(f.loop, [&] { return !f.status().failing; }));
    auto recs = read_cdb(slurp(path));
    ASSERT_TRUE(recs);
    ASSERT_EQ(recs->size(), 3u);
    EXPECT_EQ((*recs)[0].first, "127.0.0.4");
    EXPECT_EQ((*recs)[1].first, "192.0.2.1");
}

TEST(ExportScheduler, StopWritesTheStaticPartOnlyAndNothingAfter) {
    SchedulerFixture f;
    const std::string rules = f.d / "tcp.smtp";
    spit(rules, "127.:allow\n");
    f.use(f.exporter(export_config("tcprules-cdb", f.d / "tcp.smtp.cdb", rules)));
    f.sched.write_now();
    ASSERT_EQ(read_cdb(slurp(f.d / "tcp.smtp.cdb"))->size(), 3u);
    // What the static part alone gives, written by a second exporter.
    auto reference = open_exporter(export_config("tcprules-cdb", f.d / "static-only.cdb", rules));
    ASSERT_TRUE(reference);
    ASSERT_TRUE((*reference)->write({}, t0));

    f.sched.changed();  // pending at the stop: must not be written after it
    f.sched.stop();
    EXPECT_EQ(slurp(f.d / "tcp.smtp.cdb"), slurp(f.d / "static-only.cdb"));
    EXPECT_EQ(f.status().writes, 2u);
    f.sched.changed();
    f.sched.write_now();
    for (int i = 0; i < 10; ++i) f.loop.run_once(2ms);
    EXPECT_EQ(f.status().writes, 2u);
    EXPECT_EQ(slurp(f.d / "tcp.smtp.cdb"), slurp(f.d / "static-only.cdb"));
}

TEST(ExportScheduler, StopRemovesRelayCtrlFilesAndRunsAfterWrite) {
    SchedulerFixture f;
    const std::string runs = f.d / "runs";
    auto cfg = export_config("opensmtpd-table", f.d / "table");
    cfg.after_write = {"/bin/sh", "-c", "grep -c . \"$1\" >> \"$2\"", "sh", f.d / "table", runs};
    std::vector<std::unique_ptr<Exporter>> v;
    v.push_back(f.exporter(cfg));
    v.push_back(f.exporter(export_config("relay-ctrl-dir", f.d / "rc")));
    f.sched.set_exporters(std::move(v));
    f.sched.write_now();
    EXPECT_TRUE(fs::exists(f.d / "rc/192.0.2.1"));
    ASSERT_TRUE(run_until(f.loop, [&] { return count_lines(runs) == 1; }));
    f.sched.stop();  // waits for the after_write of the emptied table
    EXPECT_FALSE(fs::exists(f.d / "rc/192.0.2.1"));
    EXPECT_EQ(slurp(f.d / "table").find("192.0.2"), std::string::npos);
    EXPECT_EQ(slurp(runs), "5\n3\n");  // 2 comments + 0.0.0.0 + 2 permits, then without them
}

// An exporter whose writes wait for the test: shows where and how often writes happen.
class GatedExporter final : public Exporter {
public:
    const std::string& describe() const override { return name_; }
    core::Status write_map(std::span<const core::Permit> live, core::Time) override {
        std::unique_lock lk(mu_);
        ++started_;
        sizes_.push_back(live.size());
        write_thread_ = std::this_thread::get_id();
        cv_.notify_all();
        cv_.wait(lk, [&] { return opened_ >= started_; });
        ++replacements_;
        return core::ok();
    }
    void map_written(bool replaced) override {
        std::lock_guard lk(mu_);
        if (replaced) written_thread_ = std::this_thread::get_id();
        ++written_;
    }
    void open_gate() {
        std::lock_guard lk(mu_);
        ++opened_;
        cv_.notify_all();
    }
    int started() {
        std::lock_guard lk(mu_);
        return started_;
    }
    int written() {
        std::lock_guard lk(mu_);
        return written_;
    }
    std::mutex mu_;
    std::condition_variable cv_;
    int started_ = 0, opened_ = 0, written_ = 0;
    std::vector<std::size_t> sizes_;
    std::thread::id write_thread_, written_thread_;
    std::string name_ = "gated:test";
};

// Installs a GatedExporter and lets its first write start (and wait) on the worker.
GatedExporter& first_write_blocked(SchedulerFixture& f) {
    auto owned = std::make_unique<GatedExporter>();
    GatedExporter& g = *owned;
    f.use(std::move(owned));
    f.sched.changed();
    EXPECT_TRUE(run_until(f.loop, [&] { return g.started() == 1; }));
    return g;
}

TEST(ExportScheduler, WritesOffTheLoopOneAtATimeAndCoalescesChanges) {
    SchedulerFixture f;
    GatedExporter& g = first_write_blocked(f);
    ASSERT_EQ(g.started(), 1);
    // The write is blocked on the worker while the loop goes on; changes meanwhile wait.
    f.live.push_back(permit("192.0.2.3", t0, t0 + 30min));
    for (int i = 0; i < 3; ++i) {
        f.sched.changed();
        for (int k = 0; k < 5; ++k) f.loop.run_once(2ms);
    }
    EXPECT_EQ(g.started(), 1);
    EXPECT_FALSE(f.sched.idle());
    g.open_gate();
    ASSERT_TRUE(run_until(f.loop, [&] { return g.started() == 2; }));  // one more for the three changes
    g.open_gate();
    ASSERT_TRUE(run_until(f.loop, [&] { return f.sched.idle(); }));
    for (int k = 0; k < 10; ++k) f.loop.run_once(2ms);
    EXPECT_EQ(g.started(), 2);
    EXPECT_EQ(g.written(), 2);
    EXPECT_EQ(g.sizes_, (std::vector<std::size_t>{2, 3}));
    EXPECT_NE(g.write_thread_, std::this_thread::get_id());
    EXPECT_EQ(g.written_thread_, std::this_thread::get_id());  // map_written (after_write) on the loop
    EXPECT_EQ(f.status().writes, 2u);
}

TEST(ExportScheduler, ReloadWhileAWriteIsInFlight) {
    SchedulerFixture f;
    GatedExporter& g = first_write_blocked(f);
    ASSERT_EQ(g.started(), 1);
    f.use(f.exporter(export_config("opensmtpd-table", f.d / "table")));  // the old one is still writing
    for (int k = 0; k < 5; ++k) f.loop.run_once(2ms);
    EXPECT_FALSE(fs::exists(f.d / "table"));  // at most one write in flight
    g.open_gate();
    ASSERT_TRUE(run_until(f.loop, [&] { return fs::exists(f.d / "table") && f.sched.idle(); }));
    EXPECT_EQ(f.status().name, "opensmtpd-table:" + (f.d / "table"));
    EXPECT_EQ(f.status().writes, 1u);
}

}  // namespace
}  // namespace rp::exports
