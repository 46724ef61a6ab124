// [limits] caps and alerts (issue 17): addresses_per_user with and without replace_oldest,
// permits_per_prefix for IPv4 and IPv6, the cap index, the address alert (ManualClock), and
// on_limit run without a shell.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "daemon/limit_command.hpp"
#include "daemon/permit_caps.hpp"
#include "util/event_loop.hpp"

using namespace rp;
using namespace std::chrono;
using daemon::CapDecision;

namespace {

const core::Time k_t0 = core::from_unix_seconds(1796464800);

core::Cidr net(const char* s) { return *core::Cidr::parse(s); }
core::Permit permit(const char* n, const char* user, core::Duration age = {}) {
    return core::Permit{net(n), user, "test", k_t0 - age, k_t0 + hours(1)};
}

daemon::CapSettings caps(std::size_t per_user, bool replace, std::vector<const char*> prefixes = {}) {
    daemon::CapSettings s;
    s.addresses_per_user = per_user;
    s.replace_oldest = replace;
    for (auto p : prefixes) s.prefix_caps.push_back(*config::parse_prefix_cap(p));
    return s;
}

}  // namespace

TEST(PrefixCapSyntax, FamilyFollowsTheLengthUnlessNamed) {
    auto c = config::parse_prefix_cap("/24:8");
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->v6);
    EXPECT_EQ(c->length, 24);
    EXPECT_EQ(c->max, 8u);
    EXPECT_TRUE(config::parse_prefix_cap("/64:4")->v6);
    EXPECT_TRUE(config::parse_prefix_cap("ipv6/32:100")->v6);
    EXPECT_FALSE(config::parse_prefix_cap("ipv4/16:100")->v6);
    EXPECT_EQ(config::format_prefix_cap(*config::parse_prefix_cap("/64:4")), "ipv6/64:4");
    for (const char* bad : {"24:8", "/24", "/24:0", "/0:5", "/129:5", "ipv4/33:5", "/24:x", "/x:4", ""})
        EXPECT_FALSE(config::parse_prefix_cap(bad)) << bad;
}

TEST(PermitCaps, AUserAtTheCapGetsNoFurtherAddressButKeepsExtending) {
    const auto s = caps(2, false);
    const std::vector<daemon::HeldPermit> held = {{net("192.0.2.1"), k_t0 - minutes(20)}, {net("192.0.2.2"), k_t0}};
    auto d = daemon::check_caps(s, permit("192.0.2.3", "alice"), held, {}, false);
    EXPECT_EQ(d.kind, CapDecision::Kind::refuse_user);
    EXPECT_NE(d.reason.find("addresses_per_user = 2"), std::string::npos) << d.reason;
    // A login again from an address already held extends it.
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.2", "alice"), held, {}, true).granted());
    // Below the cap; and a push without a user name is never capped per user.
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.3", "alice"), std::span(held).first(1), {}, false).granted());
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.3", ""), held, {}, false).granted());
    // No cap configured.
    EXPECT_TRUE(daemon::check_caps(caps(0, false), permit("192.0.2.3", "alice"), held, {}, false).granted());
}

TEST(PermitCaps, ReplaceOldestRevokesTheEarliestGrantedInstead) {
    const auto s = caps(2, true);
    const std::vector<daemon::HeldPermit> held = {
        {net("192.0.2.2"), k_t0 - minutes(5)}, {net("192.0.2.1"), k_t0 - minutes(20)}};
    auto d = daemon::check_caps(s, permit("192.0.2.3", "alice"), held, {}, false);
    ASSERT_TRUE(d.granted());
    ASSERT_EQ(d.replace.size(), 1u);
    EXPECT_EQ(d.replace[0], net("192.0.2.1"));
    // Lowered cap (a reload): as many of the oldest go as needed.
    d = daemon::check_caps(caps(1, true), permit("192.0.2.3", "alice"), held, {}, false);
    EXPECT_EQ(d.replace.size(), 2u);
}

TEST(PermitCaps, PrefixCapsCountPermitsInTheSharedNetworkPerFamily) {
    const auto s = caps(0, false, {"/24:3", "/64:2"});
    const std::size_t full[] = {3, 0}, room[] = {2, 2};
    auto d = daemon::check_caps(s, permit("192.0.2.77", "bob"), {}, full, false);
    EXPECT_EQ(d.kind, CapDecision::Kind::refuse_prefix);
    EXPECT_NE(d.reason.find("192.0.2.0/24"), std::string::npos) << d.reason;
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.77", "bob"), {}, room, false).granted());
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.77", "bob"), {}, full, true).granted());  // extension
    // The IPv6 cap applies to IPv6 permits (a /128, or a /64 with ipv6_prefix = 64) only.
    const std::size_t v6_full[] = {0, 2};
    EXPECT_EQ(daemon::check_caps(s, permit("2001:db8:1:2::5", "bob"), {}, v6_full, false).kind,
              CapDecision::Kind::refuse_prefix);
    EXPECT_TRUE(daemon::check_caps(s, permit("192.0.2.77", "bob"), {}, v6_full, false).granted());
    EXPECT_FALSE(daemon::cap_prefix(*config::parse_prefix_cap("/64:2"), net("192.0.2.1")));
    EXPECT_FALSE(daemon::cap_prefix(*config::parse_prefix_cap("/24:2"), net("2001:db8::/64")));
    EXPECT_EQ(daemon::cap_prefix(*config::parse_prefix_cap("/48:2"), net("2001:db8:1:2::/64"))->to_string(), "2001:db8:1::/48");
}

TEST(CapIndex, CountsWhatTheStoreStillHoldsAndDropsTheRest) {
    const auto s = caps(3, false, {"/24:10"});
    std::map<std::string, core::Permit> store;
    for (auto p : {permit("192.0.2.1", "alice"), permit("192.0.2.2", "alice"), permit("192.0.2.3", "bob")})
        store[p.network.to_string()] = p;
    daemon::CapIndex idx;
    for (const auto& [k, p] : store) idx.add(p, s);
    const daemon::CapIndex::Live live = [&](const core::Cidr& n) -> std::optional<core::Permit> {
        auto it = store.find(n.to_string());
        return it == store.end() ? std::nullopt : std::optional(it->second);
    };
    EXPECT_EQ(idx.user_held("alice", live).size(), 2u);
    EXPECT_EQ(idx.in_prefix(net("192.0.2.9"), s, live)[0], 3u);
    EXPECT_EQ(idx.in_prefix(net("192.0.2.1"), s, live)[0], 2u);  // its own network is not counted
    store.erase("192.0.2.1");                                   // expired or revoked
    store["192.0.2.2"].user = "carol";                          // now someone else's
    EXPECT_EQ(idx.user_held("alice", live).size(), 0u);
    EXPECT_EQ(idx.in_prefix(net("192.0.2.9"), s, live)[0], 2u);
}

TEST(AddressAlert, MoreThanKAddressesWithinMRaisesOneAlertPerPeriod) {
    core::ManualClock clock(k_t0);
    daemon::AddressAlert a(3, minutes(10));
    EXPECT_FALSE(a.observe("alice", "192.0.2.1", clock.now()));
    EXPECT_FALSE(a.observe("alice", "192.0.2.2", clock.now()));
    EXPECT_FALSE(a.observe("alice", "192.0.2.2", clock.now()));  // the same address again
    EXPECT_FALSE(a.observe("alice", "192.0.2.3", clock.now()));
    EXPECT_FALSE(a.observe("bob", "192.0.2.4", clock.now()));
    EXPECT_TRUE(a.observe("alice", "192.0.2.4", clock.now()));  // the 4th distinct one
    EXPECT_FALSE(a.observe("alice", "192.0.2.5", clock.now()));  // once per period
    clock.advance(minutes(11));
    EXPECT_FALSE(a.observe("alice", "192.0.2.6", clock.now()));  // the old ones left the window
    EXPECT_EQ(a.distinct("alice"), 1u);
    EXPECT_FALSE(a.observe("", "192.0.2.6", clock.now()));
}

namespace {

// Runs the loop until `done` holds (generous deadline; never a fixed sleep).
bool run_until(util::EventLoop& loop, const std::function<bool()>& done) {
    const auto deadline = steady_clock::now() + seconds(30);
    while (!done() && steady_clock::now() < deadline) loop.run_once(milliseconds(50));
    return done();
}

}  // namespace

TEST(LimitCommand, RunsTheArgvWithoutAShellAndPassesValuesInTheEnvironment) {
    char tmpl[] = "/tmp/rp-onlimit-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    const std::string out = dir + "/env";
    util::EventLoop loop;
    {
        // /usr/bin/env as the program: it prints its environment; the redirect is done by the
        // test's own sh -c (argv[0..] fixed, the values only in the environment).
        daemon::LimitCommand cmd(loop, {"/bin/sh", "-c", "env > " + out + ".tmp && mv " + out + ".tmp " + out}, 1);
        cmd.run({"recipients", "192.0.2.7", "al'ice; rm -rf /", "spent"});
        cmd.run({"recipients", "192.0.2.8", "bob", "spent"});  // one at a time: dropped
        EXPECT_EQ(cmd.dropped(), 1u);
        ASSERT_TRUE(run_until(loop, [&] { return cmd.running() == 0 && std::filesystem::exists(out); }));
        EXPECT_EQ(cmd.started(), 1u);
        EXPECT_EQ(cmd.failures(), 0u);
    }
    std::ifstream in(out);
    const std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(env.find("RELAYPERMIT_USER=al'ice; rm -rf /\n"), std::string::npos) << env;
    EXPECT_NE(env.find("RELAYPERMIT_LIMIT=recipients\n"), std::string::npos);
    EXPECT_NE(env.find("RELAYPERMIT_IP=192.0.2.7\n"), std::string::npos);
    EXPECT_EQ(env.find("HOME="), std::string::npos);  // nothing else of the daemon's environment
    std::filesystem::remove_all(dir);
}

TEST(LimitCommand, AFailingOrMissingProgramIsCountedNotFatal) {
    util::EventLoop loop;
    daemon::LimitCommand missing(loop, {"/nonexistent/program"});
    missing.run({"messages", "192.0.2.7", "", ""});
    daemon::LimitCommand failing(loop, {"/bin/false"});
    failing.run({"messages", "192.0.2.7", "", ""});
    ASSERT_TRUE(run_until(loop, [&] { return failing.running() == 0 && missing.running() == 0; }));
    EXPECT_EQ(failing.failures(), 1u);
    EXPECT_GE(missing.failures() + missing.started(), 1u);  // posix_spawnp may fail at once or the child exits 127
}
