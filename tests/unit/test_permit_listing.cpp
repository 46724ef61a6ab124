// `list` streaming (issue 14): PermitTable's resumable cursor under changes between pieces,
// PermitListStream's reply and filters, and the client's ReplySplitter fed in pieces of any size.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "daemon/control_protocol.hpp"
#include "daemon/permit_listing.hpp"
#include "store/permit_table.hpp"

using namespace rp;
using namespace std::chrono;

namespace {

const core::Time k_t0 = core::from_unix_micros(1'800'000'000'000'000);

core::Permit numbered(std::uint32_t n, const std::string& user = "u", core::Duration ttl = minutes(30)) {
    return {core::Cidr::host(core::Address::v4(0x0A000000u + n)), user, "test", k_t0, k_t0 + ttl};
}

// Visits a piece of at most `budget` records; returns false when the walk is complete.
bool piece(const store::PermitTable& t, store::PermitTable::Cursor& c, std::size_t budget,
           std::multiset<core::Cidr>& seen, core::Time now = k_t0) {
    return t.scan(c, now, budget, [&](const core::Permit& p) { seen.insert(p.network); });
}

}  // namespace

TEST(PermitCursor, VisitsEveryLivePermitOnceAndNoExpiredOne) {
    store::PermitTable t;
    for (std::uint32_t i = 0; i < 1000; ++i) t.merge(numbered(i, "u", i % 10 == 0 ? seconds(1) : minutes(30)), k_t0);
    auto c = t.open_cursor();
    std::multiset<core::Cidr> seen;
    int pieces = 0;
    while (piece(t, *c, 64, seen, k_t0 + seconds(2))) ++pieces;
    EXPECT_GE(pieces, 1000 / 64);
    EXPECT_EQ(seen.size(), 900u);
    for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(seen.count(numbered(i).network), i % 10 == 0 ? 0u : 1u) << i;
}

// Permits removed (each removal moves the last record into the hole) and added between pieces:
// no crash, no permit twice, and every permit live from start to end exactly once.
TEST(PermitCursor, ChangesBetweenPiecesNeverRepeatAndNeverLoseAStablePermit) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        std::mt19937 rng(seed);
        store::PermitTable t;
        std::set<std::uint32_t> present;
        for (std::uint32_t i = 0; i < 2000; ++i) {
            t.merge(numbered(i), k_t0);
            present.insert(i);
        }
        std::set<std::uint32_t> touched;  // removed or added at some point during the walk
        auto c = t.open_cursor();
        std::multiset<core::Cidr> seen;
        std::uint32_t next_new = 2000;
        while (piece(t, *c, 1 + rng() % 50, seen)) {
            for (int k = 0; k < 20; ++k) {
                if (rng() % 3 == 0) {
                    t.merge(numbered(next_new), k_t0);
                    present.insert(next_new);
                    touched.insert(next_new++);
                } else if (!present.empty()) {
                    auto it = present.begin();
                    std::advance(it, rng() % present.size());
                    t.remove_exact(numbered(*it).network);
                    touched.insert(*it);
                    present.erase(it);
                }
            }
        }
        for (const auto& net : seen) ASSERT_EQ(seen.count(net), 1u) << net.to_string() << " seed " << seed;
        for (const auto n : present) {
            if (touched.count(n) == 0) {
                ASSERT_EQ(seen.count(numbered(n).network), 1u) << n << " seed " << seed;
            }
        }
        EXPECT_EQ(c->missed, 0u);
    }
}

// A mass expiry during a walk (the earliest records go first, from the front of the table).
TEST(PermitCursor, MassExpiryDuringAWalk) {
    store::PermitTable t;
    for (std::uint32_t i = 0; i < 5000; ++i) t.merge(numbered(i, "u", i < 2500 ? seconds(1) : minutes(30)), k_t0);
    auto c = t.open_cursor();
    std::multiset<core::Cidr> seen;
    ASSERT_TRUE(piece(t, *c, 3000, seen));
    while (!t.remove_expired(k_t0 + seconds(2), 256).empty()) piece(t, *c, 10, seen, k_t0 + seconds(2));
    while (piece(t, *c, 100, seen, k_t0 + seconds(2))) {
    }
    for (std::uint32_t i = 2500; i < 5000; ++i) ASSERT_EQ(seen.count(numbered(i).network), 1u) << i;
}

TEST(PermitCursor, ClearEndsTheWalk) {
    store::PermitTable t;
    for (std::uint32_t i = 0; i < 100; ++i) t.merge(numbered(i), k_t0);
    auto c = t.open_cursor();
    std::multiset<core::Cidr> seen;
    ASSERT_TRUE(piece(t, *c, 10, seen));
    t.clear();
    for (std::uint32_t i = 0; i < 100; ++i) t.merge(numbered(i), k_t0);
    EXPECT_FALSE(piece(t, *c, 1000, seen));
    EXPECT_EQ(seen.size(), 10u);  // nothing twice
}

TEST(PermitCursor, ClosedCursorIsForgotten) {
    store::PermitTable t;
    for (std::uint32_t i = 0; i < 10; ++i) t.merge(numbered(i), k_t0);
    { auto c = t.open_cursor(); }
    t.remove_exact(numbered(0).network);  // must not touch the gone cursor
    EXPECT_EQ(t.size(), 9u);
}

namespace {

std::string run_list(const store::PermitTable& t, const core::Clock& clock, daemon::PermitFilter f) {
    daemon::PermitListStream s(t, clock, std::move(f));
    std::string out;
    int pieces = 0;
    while (s.next(out)) ++pieces;
    EXPECT_GT(pieces, 0);
    return out;
}

std::vector<std::string> ips_of(const std::string& reply) {
    const auto j = nlohmann::json::parse(reply);
    std::vector<std::string> ips;
    for (const auto& p : j.at("permits")) ips.push_back(p.at("ip"));
    std::sort(ips.begin(), ips.end());
    return ips;
}

}  // namespace

TEST(PermitListStream, ReplyIsTheUnstreamedLineAndFiltersApply) {
    store::PermitTable t;
    core::ManualClock clock(k_t0);
    auto v6 = numbered(0, "carol");
    v6.network = *core::Cidr::parse("2001:db8:1:2::/64");
    t.merge(v6, k_t0);
    t.merge(numbered(1, "alice"), k_t0);
    t.merge(numbered(2, "bob"), k_t0);
    auto other = numbered(300, "alice");
    other.source = "control";
    t.merge(other, k_t0);
    for (std::uint32_t i = 1000; i < 1600; ++i) t.merge(numbered(i, "many"), k_t0);

    const auto all = run_list(t, clock, {});
    ASSERT_EQ(all.back(), '\n');
    EXPECT_EQ(all.find('\n'), all.size() - 1);  // one line
    EXPECT_EQ(ips_of(all).size(), 604u);
    EXPECT_EQ(all.substr(0, 22), R"({"ok":true,"permits":[)");

    const auto one = run_list(t, clock, {"alice", std::nullopt, std::nullopt});
    const auto j = nlohmann::json::parse(one);
    ASSERT_EQ(j.at("permits").size(), 2u);
    // Byte for byte what encode_control_reply would have written for the same permits.
    EXPECT_EQ(one, j.dump() + "\n");
    EXPECT_EQ(ips_of(run_list(t, clock, {"alice", std::nullopt, "control"})), std::vector<std::string>{"10.0.1.44"});
    EXPECT_EQ(ips_of(run_list(t, clock, {std::nullopt, *core::Cidr::parse("10.0.0.0/30"), std::nullopt})),
              (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
    // A host inside a permit's prefix finds that permit; a wider network finds what is inside.
    EXPECT_EQ(ips_of(run_list(t, clock, {std::nullopt, *core::Cidr::parse("2001:db8:1:2::99"), std::nullopt})),
              std::vector<std::string>{"2001:db8:1:2::/64"});
    EXPECT_EQ(ips_of(run_list(t, clock, {std::nullopt, *core::Cidr::parse("2001:db8::/32"), std::nullopt})).size(), 1u);
    EXPECT_EQ(run_list(t, clock, {"nobody", std::nullopt, std::nullopt}), "{\"ok\":true,\"permits\":[]}\n");

    clock.advance(hours(1));  // everything expired, nothing purged: nothing listed
    EXPECT_EQ(run_list(t, clock, {}), "{\"ok\":true,\"permits\":[]}\n");
}

// The client side: any cut of the reply into pieces gives the same elements and the same rest.
TEST(ReplySplitter, ElementsAndRestWhateverThePieces) {
    const nlohmann::json reply = {
        {"ok", true},
        {"permits", {{{"ip", "192.0.2.1"}, {"user", "a}],{\"b\\"}}, {{"ip", "192.0.2.2"}, {"user", "[x"}}}}};
    const std::string line = reply.dump() + "\n";
    for (std::size_t size : {1u, 2u, 3u, 7u, 64u, 4096u}) {
        daemon::ReplySplitter s;
        std::vector<nlohmann::json> got;
        for (std::size_t i = 0; i < line.size(); i += size)
            ASSERT_TRUE(s.feed(std::string_view(line).substr(i, size), [&](const nlohmann::json& e) { got.push_back(e); }))
                << s.error();
        ASSERT_TRUE(s.complete());
        EXPECT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0], reply["permits"][0]);
        EXPECT_EQ(got[1], reply["permits"][1]);
        EXPECT_EQ(nlohmann::json::parse(s.rest()), (nlohmann::json{{"ok", true}, {"permits", nlohmann::json::array()}}));
    }
    daemon::ReplySplitter err;
    EXPECT_TRUE(err.feed("{\"error\":\"no\",\"ok\":false}\n", [](const nlohmann::json&) { FAIL(); }));
    EXPECT_EQ(nlohmann::json::parse(err.rest())["error"], "no");
    daemon::ReplySplitter bad;
    EXPECT_FALSE(bad.feed("{\"a\":]}\n", [](const nlohmann::json&) {}));
}
