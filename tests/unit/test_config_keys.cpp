// Keys other rooms added, now registry rows (drop-in sources, allow_file, [metrics], [limits],
// the postfix-lmdb and postfix-hash exports), max_lifetime, [socketmap] static, and `config
// show` output that parses back to the same configuration.
#include <gtest/gtest.h>

#include <string>

#include "config/registry.hpp"

using namespace rp::config;

namespace {

std::vector<std::string> messages(const ConfigReport& r) {
    std::vector<std::string> out;
    for (const auto& d : r.errors) out.push_back(d.message);
    return out;
}

bool has(const std::vector<std::string>& all, const std::string& part) {
    for (const auto& m : all)
        if (m.find(part) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST(ConfigKeys, MaxLifetimeMustLieBetweenTtlAndMaxTtl) {
    auto unset = parse_config("ttl = \"30m\"\n", "t.toml");
    ASSERT_TRUE(unset) << unset.error().message;
    EXPECT_EQ(unset->max_lifetime, rp::core::Duration(0));
    auto ok = parse_config("ttl = \"30m\"\nmax_ttl = \"24h\"\nmax_lifetime = \"8h\"\n", "t.toml");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->max_lifetime, std::chrono::hours(8));
    EXPECT_TRUE(parse_config("ttl = \"30m\"\nmax_lifetime = \"30m\"\n", "t.toml"));   // = ttl
    EXPECT_TRUE(parse_config("max_ttl = \"2h\"\nmax_lifetime = \"2h\"\n", "t.toml"));  // = max_ttl
    EXPECT_TRUE(parse_config("max_lifetime = \"0s\"\n", "t.toml"));                   // unset
    auto low = parse_config("ttl = \"30m\"\nmax_lifetime = \"10m\"\n", "t.toml");
    ASSERT_FALSE(low);
    EXPECT_EQ(low.error().message, "t.toml:2: max_lifetime = \"10m\" must lie between ttl (30m) and max_ttl (1d)");
    auto high = parse_config("max_ttl = \"2h\"\nmax_lifetime = \"3h\"\n", "t.toml");
    ASSERT_FALSE(high);
    EXPECT_EQ(high.error().message, "t.toml:2: max_lifetime = \"3h\" must lie between ttl (30m) and max_ttl (2h)");
    EXPECT_FALSE(parse_config("max_lifetime = \"soon\"\n", "t.toml"));
}

TEST(ConfigKeys, DropinSourcesCheckTheirEndpoints) {
    auto ok = parse_config("[[source]]\ntype = \"drac\"\nallow_file = \"/etc/mail/dracd.allow\"\n"
                           "[[source]]\ntype = \"whoson\"\nlisten = [\"tcp:127.0.0.1:0\", \"udp:127.0.0.1:0\"]\n"
                           "[[source]]\ntype = \"relay-ctrl-udp\"\nlisten = \"udp:127.0.0.1:0\"\nallow_from = \"192.0.2.0/24\"\n",
                           "t.toml");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->sources[0].type, SourceType::drac);
    EXPECT_EQ(ok->sources[0].allow_file, "/etc/mail/dracd.allow");
    EXPECT_EQ(ok->sources[1].name, "whoson:tcp:127.0.0.1:0");
    EXPECT_EQ(ok->sources[2].type, "relay-ctrl-udp");
    const auto r = messages(check_config_text(
        "[[source]]\ntype = \"whoson\"\nlisten = \"unix:/run/w\"\n"
        "[[source]]\ntype = \"relay-ctrl-udp\"\nlisten = \"tcp:127.0.0.1:1\"\n"
        "[[source]]\ntype = \"drac\"\nallow_file = \"dracd.allow\"\n"
        "[[source]]\ntype = \"whoson\"\n"
        "[[source]]\ntype = \"relay-ctrl-udp\"\napi_header = \"X: y\"\n"
        "[[source]]\ntype = \"tcp\"\n",
        "t.toml"));
    ASSERT_EQ(r.size(), 6u) << testing::PrintToString(r);
    EXPECT_TRUE(has(r, "a whoson source listens on tcp or udp, not unix:/run/w"));
    EXPECT_TRUE(has(r, "relay-ctrl-udp listens on udp endpoints only, not tcp:127.0.0.1:1"));
    EXPECT_TRUE(has(r, "source.allow_file = \"dracd.allow\": must be an absolute path"));
    EXPECT_TRUE(has(r, "a whoson source needs `listen`"));
    EXPECT_TRUE(has(r, "unknown key for a relay-ctrl-udp source"));
    EXPECT_TRUE(has(r, "use file, fifo, syslog, journald, dovecot-auth-policy, drac, whoson or relay-ctrl-udp"));
}

TEST(ConfigKeys, AllowFileMetricsLimitsAndExportsAreRows) {
    auto ok = parse_config("allow_file = [\"/etc/relaypermit/static.allow\"]\n"
                           "[metrics]\nlisten = \"127.0.0.1:9310\"\nallow_from = [\"192.0.2.0/24\"]\n"
                           "[limits]\nrecipients = \"100/1h\"\nwindow = \"fixed\"\npermits_per_prefix = \"/24:8\"\n"
                           "[[export]]\ntype = \"postfix-lmdb\"\npath = \"/var/lib/rp/relay.lmdb\"\n"
                           "[[export]]\ntype = \"postfix-hash\"\npath = \"/var/lib/rp/relay.db\"\n",
                           "t.toml");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->allow_file, std::vector<std::string>{"/etc/relaypermit/static.allow"});
    EXPECT_EQ(ok->metrics.listen, std::vector<std::string>{"127.0.0.1:9310"});
    EXPECT_EQ(ok->limits.recipients->limit, 100u);
    EXPECT_EQ(ok->limits.window, LimitWindow::fixed);
    EXPECT_EQ(ok->limits.permits_per_prefix.at(0).length, 24);
    EXPECT_EQ(ok->exports[0].type, ExportType::postfix_lmdb);
    EXPECT_EQ(ok->exports[1].type, "postfix-hash");
    // Every error of these tables in one run.
    const auto r = messages(check_config_text("allow_file = [\"rel\"]\n[metrics]\nlisten = \"udp:127.0.0.1:1\"\nport = 1\n"
                                              "[limits]\nrecipients = \"many\"\nwindow = \"rolling\"\n"
                                              "action = \"OK\\nREJECT\"\nbogus = 1\n[[export]]\ntype = \"postfix-btree\"\n"
                                              "path = \"/x\"\n",
                                              "t.toml"));
    ASSERT_EQ(r.size(), 8u) << testing::PrintToString(r);
    EXPECT_TRUE(has(r, "t.toml:1: allow_file = [...]: every file must be an absolute path"));
    EXPECT_TRUE(has(r, "t.toml:4: metrics.port = 1: unknown key"));
    EXPECT_TRUE(has(r, "t.toml:6: limits.recipients = \"many\": expected \"N/period\""));
    EXPECT_TRUE(has(r, "t.toml:7: limits.window = \"rolling\": expected \"sliding\" or \"fixed\""));
    EXPECT_TRUE(has(r, "limits.action"));
    EXPECT_TRUE(has(r, "t.toml:9: limits.bogus = 1: unknown key"));
    EXPECT_TRUE(has(r, "use postfix-cdb, postfix-lmdb, postfix-hash, sendmail-access, tcprules-cdb, relay-ctrl-dir or "
                       "opensmtpd-table"));
    // [metrics] shares the endpoint check of every listener.
    auto clash = check_config_text("[metrics]\nlisten = \"127.0.0.1:9310\"\n[socketmap]\nlisten = \"127.0.0.1:9310\"\n"
                                   "[[source]]\ntype = \"file\"\npath = \"/x\"\n",
                                   "t.toml");
    ASSERT_TRUE(clash.errors.empty());
    const auto f = lint_config(clash);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_NE(f[0].message.find("[metrics]"), std::string::npos) << f[0].message;
}

TEST(ConfigKeys, SocketmapStaticIsAnAbsolutePath) {
    auto ok = parse_config("[socketmap]\nlisten = \"127.0.0.1:10032\"\nstatic = \"/etc/mail/relaypermit-static\"\n", "t.toml");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->socketmap.static_path, "/etc/mail/relaypermit-static");
    auto bad = parse_config("[socketmap]\nstatic = \"static\"\n", "t.toml");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "t.toml:2: socketmap.static = \"static\": must be an absolute path");
    EXPECT_FALSE(parse_config("[readsocket]\nstatic = \"/x\"\n", "t.toml"));  // socketmap's alone
}

// `config show` prints TOML that parses back to the same configuration: showing the re-parsed
// configuration gives the same text, and the values survive (unset keys are comments).
TEST(ConfigShow, OutputParsesBackToTheSameConfig) {
    const std::string text =
        "ttl = \"45m\"\nmax_ttl = \"12h\"\nmax_lifetime = \"6h\"\nstore = \"redis://127.0.0.1:6379/0\"\n"
        "allow = [\"192.0.2.0/24\"]\nallow_file = [\"/etc/relaypermit/static.allow\"]\nipv6_prefix = 64\n"
        "log_level = \"notice\"\nservers = [\"dovecot\"]\nrelayclient = \"\"\n"
        "[policy]\nlisten = [\"127.0.0.1:0\"]\nmax_clients = 10\n"
        "[socketmap]\nlisten = [\"127.0.0.1:0\"]\nstatic = \"/etc/mail/relaypermit-static\"\n"
        "[opensmtpd]\nlisten = [\"unix:/run/rp/o.sock\"]\n"
        "[metrics]\nlisten = [\"127.0.0.1:0\"]\n"
        "[limits]\nmessages = \"20/1h\"\npermits_per_prefix = [\"/24:8\", \"ipv6/48:4\"]\non_limit = [\"/bin/true\"]\n"
        "[[source]]\ntype = \"file\"\npath = \"/var/log/mail.log\"\n"
        "[[source]]\ntype = \"fifo\"\npath = \"/run/rp/fifo\"\nmode = 0o640\ngroup = \"adm\"\n"
        "[[source]]\ntype = \"syslog\"\nlisten = [\"udp:127.0.0.1:0\"]\nallow_from = [\"192.0.2.1/32\"]\n"
        "[[source]]\ntype = \"journald\"\nunits = [\"dovecot.service\"]\nuids = [0, 8]\n"
        "[[source]]\ntype = \"drac\"\nallow_file = \"/etc/mail/dracd.allow\"\n"
        "[[source]]\ntype = \"whoson\"\nlisten = [\"tcp:127.0.0.1:0\"]\n"
        "[[pattern]]\nname = \"mine\"\nregex = \"login: (?<ip>\\\\S+)\"\n"
        "[[export]]\ntype = \"sendmail-access\"\npath = \"/etc/mail/relaypermit.db\"\nstatic = \"/etc/mail/access\"\n"
        "[[export]]\ntype = \"postfix-cdb\"\npath = \"/var/lib/rp/relay.cdb\"\nafter_write = [\"/usr/sbin/postfix\", \"reload\"]\n";
    auto first = check_config_text(text, "t.toml");
    ASSERT_TRUE(first.errors.empty()) << first.errors.front().message;
    const auto shown = show_config(first.config);
    auto again = check_config_text(shown, "t.toml");
    ASSERT_TRUE(again.errors.empty()) << again.errors.front().message << "\n" << shown;
    EXPECT_EQ(show_config(again.config), shown);
    const auto& c = again.config;
    EXPECT_EQ(c.max_lifetime, std::chrono::hours(6));
    EXPECT_EQ(c.socketmap.static_path, "/etc/mail/relaypermit-static");
    EXPECT_EQ(c.limits.messages->limit, 20u);
    EXPECT_EQ(c.limits.permits_per_prefix.size(), 2u);
    EXPECT_FALSE(c.limits.recipients);
    EXPECT_EQ(c.sources.size(), 6u);
    EXPECT_EQ(c.sources[1].mode, 0640u);
    EXPECT_EQ(c.sources[4].allow_file, "/etc/mail/dracd.allow");
    EXPECT_EQ(c.sources[3].uids, (std::vector<std::int64_t>{0, 8}));
    EXPECT_EQ(c.exports[1].after_write.size(), 2u);
    EXPECT_EQ(c.patterns.at(0).regex, "login: (?<ip>\\S+)");
    for (std::size_t i = 0; i < c.sources.size(); ++i) EXPECT_TRUE(c.sources[i].same_as(first.config.sources[i])) << i;
    EXPECT_EQ(c.policy, first.config.policy);
    EXPECT_EQ(c.socketmap, first.config.socketmap);
    EXPECT_EQ(c.metrics, first.config.metrics);
    EXPECT_EQ(c.limits, first.config.limits);
    // The built-in defaults too.
    const auto defaults = show_config(Config{});
    auto parsed = check_config_text(defaults, "d.toml");
    ASSERT_TRUE(parsed.errors.empty()) << parsed.errors.front().message << "\n" << defaults;
    EXPECT_EQ(show_config(parsed.config), defaults);
}
