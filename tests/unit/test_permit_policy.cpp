// PermitPolicy: one table of logins and pushes with the decision each must get (issue 12 items 1
// and 2: a push of an ignored address, an untimed backlog line, an out-of-bounds ttl never grant).
#include <gtest/gtest.h>

#include <optional>

#include "daemon/permit_policy.hpp"

using namespace rp;
using namespace std::chrono;

namespace {

core::Address addr(const char* a) { return *core::Address::parse(a); }

daemon::PolicySettings settings() {
    daemon::PolicySettings s;
    s.ignore = {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1/128"),
                *core::Cidr::parse("198.51.100.0/24")};
    s.ttl = minutes(30);
    s.max_ttl = hours(24);
    s.ipv6_prefix = 64;
    return s;
}

struct Row {
    const char* name;
    const char* ip;
    core::Duration age;  // login time = now - age (negative: in the future)
    core::TimeOrigin origin;
    bool backlog;
    std::optional<core::Duration> ttl;
    std::optional<daemon::Refusal> refusal;  // nullopt: granted
    const char* network;                      // for a grant
    core::Duration expires_in;                // for a grant: expires - now
};

using O = core::TimeOrigin;
using R = daemon::Refusal;

const Row k_rows[] = {
    {"live line", "192.0.2.1", seconds(0), O::line, false, {}, {}, "192.0.2.1", minutes(30)},
    {"late line ages", "192.0.2.1", minutes(10), O::line, true, {}, {}, "192.0.2.1", minutes(20)},
    {"stale line", "192.0.2.1", minutes(30), O::line, true, {}, R::stale, "", {}},
    {"months-old line", "192.0.2.1", hours(24 * 90), O::line, true, {}, R::stale, "", {}},
    {"untimed live line grants", "192.0.2.1", seconds(0), O::reading, false, {}, {}, "192.0.2.1", minutes(30)},
    {"untimed backlog line", "192.0.2.1", seconds(0), O::reading, true, {}, R::untimed_backlog, "", {}},
    {"ignored line", "127.0.0.1", seconds(0), O::line, false, {}, R::ignored, "", {}},
    {"ignored push (allow --chain IP=127.0.0.1)", "127.0.0.1", seconds(0), O::push, false, {}, R::ignored, "", {}},
    {"ignored push, v6 loopback", "::1", seconds(0), O::push, false, {}, R::ignored, "", {}},
    {"ignored push, configured net", "198.51.100.7", seconds(0), O::push, false, hours(1), R::ignored, "", {}},
    {"push with ttl", "192.0.2.9", seconds(0), O::push, false, hours(2), {}, "192.0.2.9", hours(2)},
    {"push ttl = max_ttl", "192.0.2.9", seconds(0), O::push, false, hours(24), {}, "192.0.2.9", hours(24)},
    {"push ttl > max_ttl", "192.0.2.9", seconds(0), O::push, false, hours(24) + microseconds(1),
     R::ttl_out_of_bounds, "", {}},
    {"push ttl zero", "192.0.2.9", seconds(0), O::push, false, seconds(0), R::ttl_out_of_bounds, "", {}},
    {"push ttl negative", "192.0.2.9", seconds(0), O::push, false, -hours(1), R::ttl_out_of_bounds, "", {}},
    {"push ttl huge", "192.0.2.9", seconds(0), O::push, false, core::Duration::max(), R::ttl_out_of_bounds, "", {}},
    {"ttl checked before ignore", "127.0.0.1", seconds(0), O::push, false, -seconds(1), R::ttl_out_of_bounds, "", {}},
    {"spooled login within ttl", "192.0.2.3", minutes(29), O::push, false, {}, {}, "192.0.2.3", minutes(1)},
    {"spooled login past ttl", "192.0.2.3", minutes(31), O::push, false, {}, R::stale, "", {}},
    {"future time counts as now", "192.0.2.4", -hours(100), O::push, false, {}, {}, "192.0.2.4", minutes(30)},
    {"ipv6 prefix", "2001:db8:1:2:3:4:5:6", seconds(0), O::line, false, {}, {}, "2001:db8:1:2::/64", minutes(30)},
    {"v4-mapped is v4", "::ffff:192.0.2.5", seconds(0), O::line, false, {}, {}, "192.0.2.5", minutes(30)},
    {"v4-mapped loopback ignored", "::ffff:127.0.0.1", seconds(0), O::push, false, {}, R::ignored, "", {}},
};

}  // namespace

TEST(PermitPolicy, Table) {
    core::ManualClock clock(core::from_unix_seconds(1'800'000'000));
    const daemon::PermitPolicy policy(settings());
    for (const auto& r : k_rows) {
        SCOPED_TRACE(r.name);
        core::LoginEvent e{addr(r.ip), "alice", "dovecot", "test-source", clock.now() - r.age, r.origin, r.backlog};
        const auto d = policy.decide(e, r.ttl, clock.now());
        if (r.refusal) {
            ASSERT_FALSE(d.granted());
            EXPECT_EQ(d.refusal, *r.refusal);
            EXPECT_FALSE(d.reason.empty());
        } else {
            ASSERT_TRUE(d.granted()) << d.reason;
            EXPECT_EQ(d.permit->network, *core::Cidr::parse(r.network));
            EXPECT_EQ(d.permit->expires - clock.now(), r.expires_in);
            EXPECT_LE(d.permit->granted, clock.now());
            EXPECT_EQ(d.permit->user, "alice");
            EXPECT_EQ(d.permit->source, "test-source");
        }
    }
}

TEST(PermitPolicy, ExpiryFollowsTheClock) {
    core::ManualClock clock(core::from_unix_seconds(1'800'000'000));
    const daemon::PermitPolicy policy(settings());
    const core::LoginEvent e{addr("192.0.2.1"), "bob", "", "spool", clock.now(), O::push, false};
    EXPECT_TRUE(policy.decide(e, {}, clock.now()).granted());
    clock.advance(minutes(30) - microseconds(1));
    EXPECT_TRUE(policy.decide(e, {}, clock.now()).granted());
    clock.advance(microseconds(1));
    const auto d = policy.decide(e, {}, clock.now());
    EXPECT_FALSE(d.granted());
    EXPECT_EQ(d.refusal, R::stale);
}

TEST(PermitPolicy, IgnoredReasonNamesTheNetwork) {
    const daemon::PermitPolicy policy(settings());
    const auto now = core::from_unix_seconds(1'800'000'000);
    const auto d = policy.decide({addr("127.0.0.1"), "", "", "control", now, O::push, false}, {}, now);
    EXPECT_EQ(d.reason, "127.0.0.1 is in ignore (127.0.0.0/8)");
    EXPECT_EQ(daemon::refusal_name(d.refusal), "ignored");
}

TEST(PermitPolicy, RefusalCountersPerReason) {
    daemon::RefusalCounters c;
    c.count(R::ignored);
    c.count(R::ignored);
    c.count(R::untimed_backlog);
    EXPECT_EQ(c[R::ignored], 2u);
    EXPECT_EQ(c[R::untimed_backlog], 1u);
    EXPECT_EQ(c[R::stale], 0u);
    EXPECT_EQ(c[R::ttl_out_of_bounds], 0u);
}
