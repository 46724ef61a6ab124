// PermitTable and EmbeddedStore: expiry with an injected clock, durability across reopen.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "store/embedded_store.hpp"
#include "store/permit_table.hpp"

using namespace rp;
using namespace std::chrono;

namespace {

core::Permit permit(const char* net, const char* user, core::Time granted, core::Duration ttl) {
    return {*core::Cidr::parse(net), user, "test", granted, granted + ttl};
}
core::Address addr(const char* a) { return *core::Address::parse(a); }

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rp-store-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(PermitTable, ExpiresExactlyAndNeverShortens) {
    core::ManualClock clock(core::from_unix_seconds(1'800'000'000));
    store::PermitTable t;
    auto p = permit("192.0.2.1", "alice", clock.now(), minutes(30));
    EXPECT_EQ(t.merge(p, clock.now()).first, store::PermitTable::Change::created);
    EXPECT_TRUE(t.find(addr("192.0.2.1"), clock.now()));
    EXPECT_FALSE(t.find(addr("192.0.2.2"), clock.now()));
    // an older login does not shorten
    auto older = permit("192.0.2.1", "mallory", clock.now() - minutes(10), minutes(30));
    EXPECT_EQ(t.merge(older, clock.now()).first, store::PermitTable::Change::unchanged);
    EXPECT_EQ(t.find(addr("192.0.2.1"), clock.now())->user, "alice");
    // a later login extends
    clock.advance(minutes(10));
    auto later = permit("192.0.2.1", "bob", clock.now(), minutes(30));
    EXPECT_EQ(t.merge(later, clock.now()).first, store::PermitTable::Change::extended);
    clock.advance(minutes(30) - microseconds(1));
    EXPECT_TRUE(t.find(addr("192.0.2.1"), clock.now()));
    clock.advance(microseconds(1));
    EXPECT_FALSE(t.find(addr("192.0.2.1"), clock.now())) << "expired permits are never served, purged or not";
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.remove_expired(clock.now()).size(), 1u);
    EXPECT_EQ(t.size(), 0u);
}

TEST(PermitTable, Ipv6PrefixesAndRevoke) {
    const auto now = core::from_unix_seconds(1'800'000'000);
    store::PermitTable t;
    t.merge(permit("2001:db8:1:2::/64", "alice", now, minutes(30)), now);
    t.merge(permit("2001:db8:9::5", "bob", now, minutes(30)), now);
    EXPECT_EQ(t.find(addr("2001:db8:1:2:aaaa::1"), now)->user, "alice");
    EXPECT_FALSE(t.find(addr("2001:db8:1:3::1"), now));
    EXPECT_EQ(t.find(addr("2001:db8:9::5"), now)->user, "bob");
    EXPECT_FALSE(t.find(addr("2001:db8:9::6"), now));
    EXPECT_EQ(t.remove_covering(addr("2001:db8:1:2::77")).size(), 1u);
    EXPECT_FALSE(t.find(addr("2001:db8:1:2:aaaa::1"), now));
    EXPECT_EQ(t.remove_user("bob").size(), 1u);
    EXPECT_EQ(t.size(), 0u);
}

// Start-up loading: a duplicate network keeps the later permit; the heap built once at
// end_load() yields expiries earliest first, as one sift per permit did.
TEST(PermitTable, BulkLoadOrdersExpiryAndKeepsTheLaterDuplicate) {
    const auto now = core::from_unix_seconds(1'800'000'000);
    const auto us = [&](int minutes_from_now) { return core::to_unix_micros(now + minutes(minutes_from_now)); };
    store::PermitTable t;
    t.begin_load(300);
    for (int i = 0; i < 200; ++i) {  // expiries in a scrambled order
        const auto net = *core::Cidr::parse("192.0.2." + std::to_string(i));
        t.load(net, "user" + std::to_string(i), "test", us(0), us((i * 37) % 200 + 1));
    }
    t.load(*core::Cidr::parse("2001:db8::/64"), "late", "test", us(0), us(500));
    t.load(*core::Cidr::parse("2001:db8::/64"), "early", "test", us(0), us(400));  // shorter: ignored
    t.end_load();
    EXPECT_EQ(t.size(), 201u);
    EXPECT_EQ(t.find(addr("2001:db8::9"), now)->user, "late");
    EXPECT_EQ(t.find(addr("192.0.2.5"), now)->user, "user5");
    const auto gone = t.remove_expired(now + minutes(200));
    ASSERT_EQ(gone.size(), 200u);
    for (std::size_t i = 1; i < gone.size(); ++i) EXPECT_LE(gone[i - 1].expires, gone[i].expires);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_TRUE(t.merge(permit("192.0.2.1", "again", now, minutes(1)), now).first ==
                store::PermitTable::Change::created);  // the table works normally after a load
}

TEST(EmbeddedStore, SurvivesReopenWithoutExtending) {
    TempDir dir;
    const auto now = core::from_unix_seconds(1'800'000'000);
    const std::string db = dir.path + "/permits.db";
    {
        auto s = store::EmbeddedStore::open(db, false);
        ASSERT_TRUE(s) << s.error().message;
        std::vector<core::Permit> ps = {permit("192.0.2.1", "alice", now, minutes(30)),
                                        permit("2001:db8::/64", "bob", now, minutes(5))};
        std::vector<core::Checkpoint> cps = {{"file:/x", R"({"offset":42})"}};
        auto r = (*s)->grant(ps, cps, now);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->size(), 2u);
    }
    auto s = store::EmbeddedStore::open(db, false);
    ASSERT_TRUE(s);
    auto p = (*s)->find(addr("192.0.2.1"), now + minutes(29));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->expires, now + minutes(30)) << "a reopen never extends a permit";
    EXPECT_FALSE((*s)->find(addr("192.0.2.1"), now + minutes(30)));
    EXPECT_TRUE((*s)->find(addr("2001:db8::99"), now));
    EXPECT_EQ((*s)->find_checkpoint("file:/x").value_or(""), R"({"offset":42})");
    // expiry purges from disk too
    auto gone = (*s)->expire(now + minutes(6));
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->size(), 1u);
    auto revoked = (*s)->revoke(addr("192.0.2.1"));
    ASSERT_TRUE(revoked);
    EXPECT_EQ(revoked->size(), 1u);
    s->reset();
    auto again = store::EmbeddedStore::open(db, false);
    ASSERT_TRUE(again);
    EXPECT_TRUE((*again)->list(now).empty());
    // a read-only opener sees the data and refuses writes
    auto ro = store::EmbeddedStore::open(db, true);
    ASSERT_TRUE(ro);
    EXPECT_FALSE((*ro)->grant(std::vector<core::Permit>{permit("192.0.2.9", "x", now, minutes(1))}, {}, now));
}

TEST(EmbeddedStore, ReportsUnwritableLocation) {
    auto s = store::EmbeddedStore::open("/nonexistent-dir/permits.db", false);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("/nonexistent-dir/permits.db"), std::string::npos);
}
