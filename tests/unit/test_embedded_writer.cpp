// The embedded store's writer thread (issue 12 item 10): grants never wait for the disk, the
// permit is visible at once, the durable write lands once the database is free again, and a
// checkpoint is never on disk before the permits of its batch. A second SQLite connection
// holding `BEGIN IMMEDIATE` plays the other process that write-locks permits.db.
// Also: max_permits (issue 14) and the sliced expiry, with fixed times (no clock is read).
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>

#include "config/config.hpp"
#include "store/embedded_store.hpp"
#include "store/permit_table.hpp"

using namespace rp;
using namespace std::chrono;

namespace {

const core::Time k_now = core::from_unix_seconds(1'800'000'000);

core::Permit permit(const char* net, const char* user, core::Duration ttl = minutes(30)) {
    return {*core::Cidr::parse(net), user, "test", k_now, k_now + ttl};
}
core::Address addr(const char* a) { return *core::Address::parse(a); }

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rp-writer-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

// Another process's connection to permits.db.
struct OtherConnection {
    sqlite3* db = nullptr;
    explicit OtherConnection(const std::string& path) {
        EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 10'000);
    }
    ~OtherConnection() { sqlite3_close(db); }
    bool exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
    std::int64_t count(const char* sql) {
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
        std::int64_t n = -1;
        if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return n;
    }
};

// Waits (on the store's event fd, 30 s limit) until `pred` holds, as the daemon's loop would.
template <typename Pred>
bool wait_for(store::EmbeddedStore& s, Pred pred) {
    const auto deadline = steady_clock::now() + seconds(30);
    while (!pred()) {
        if (steady_clock::now() > deadline) return false;
        pollfd p{s.event_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        s.process_events(k_now);
    }
    return true;
}

std::unique_ptr<store::EmbeddedStore> open(const std::string& path, store::EmbeddedOptions o = {}) {
    auto s = store::EmbeddedStore::open(path, false, std::move(o));
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

}  // namespace

TEST(EmbeddedWriter, GrantDoesNotWaitForAWriteLockedDatabase) {
    TempDir dir;
    const std::string db = dir.path + "/permits.db";
    auto s = open(db);
    OtherConnection other(db);
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));  // another process holds the write lock

    std::vector<core::Permit> ps = {permit("192.0.2.1", "alice")};
    std::vector<core::Checkpoint> cps = {{"file:/x", R"({"offset":42})"}};
    const auto t0 = steady_clock::now();
    auto r = s->grant(ps, cps, k_now);
    const auto took = duration_cast<microseconds>(steady_clock::now() - t0);
    std::printf("grant() with permits.db write-locked by another connection: %.3f ms\n", static_cast<double>(took.count()) / 1000.0);
    ASSERT_TRUE(r) << r.error().message;
    // Before: one busy_timeout (2000 ms) per grant. Generous bound: a 10x slower host meets it.
    EXPECT_LT(took, milliseconds(500));
    EXPECT_TRUE(s->find(addr("192.0.2.1"), k_now)) << "a lookup sees the grant at once";
    EXPECT_EQ(s->find_checkpoint("file:/x").value_or(""), R"({"offset":42})");

    ASSERT_TRUE(wait_for(*s, [&] { return s->status().write_failures >= 1; }));
    EXPECT_EQ(s->status().queued, 1u);
    EXPECT_FALSE(s->status().last_error.empty());
    EXPECT_EQ(other.count("SELECT count(*) FROM permits"), 0);

    ASSERT_TRUE(other.exec("COMMIT"));  // the lock is released: the writer's retry goes through
    ASSERT_TRUE(wait_for(*s, [&] { return s->status().queued == 0; }));
    EXPECT_TRUE(s->status().last_error.empty());
    s.reset();

    auto again = open(db);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->find(addr("192.0.2.1"), k_now)) << "durable after the lock was released";
    EXPECT_EQ(again->find_checkpoint("file:/x").value_or(""), R"({"offset":42})");
}

TEST(EmbeddedWriter, CrashBeforeCommitNeverLeavesACheckpointAheadOfItsPermits) {
    TempDir dir;
    const std::string db = dir.path + "/permits.db";
    std::atomic<int> commits{0};
    store::EmbeddedOptions o;
    o.before_commit = [&] { return commits++ < 1; };  // the second commit "crashes" before COMMIT
    auto s = open(db, o);
    ASSERT_TRUE(s->grant(std::vector{permit("192.0.2.1", "alice")}, std::vector<core::Checkpoint>{{"file:/x", "1"}}, k_now));
    ASSERT_TRUE(wait_for(*s, [&] { return s->status().written == 1; }));
    ASSERT_TRUE(s->grant(std::vector{permit("192.0.2.2", "bob")}, std::vector<core::Checkpoint>{{"file:/x", "2"}}, k_now));
    ASSERT_TRUE(wait_for(*s, [&] { return commits.load() >= 2; }));
    EXPECT_TRUE(s->find(addr("192.0.2.2"), k_now));
    s.reset();  // the writer is gone: closing writes nothing more, as after kill -9

    auto again = open(db);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->find(addr("192.0.2.1"), k_now));
    EXPECT_FALSE(again->find(addr("192.0.2.2"), k_now));
    EXPECT_EQ(again->find_checkpoint("file:/x").value_or(""), "1")
        << "the checkpoint of the lost batch is lost with it: the source re-reads those lines";
}

TEST(EmbeddedWriter, FullQueueRefusesTheBatchAndKeepsMemoryUnchanged) {
    TempDir dir;
    const std::string db = dir.path + "/permits.db";
    store::EmbeddedOptions o;
    o.max_queued = 2;
    auto s = open(db, o);
    OtherConnection other(db);
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));
    ASSERT_TRUE(s->grant(std::vector{permit("192.0.2.1", "alice")}, {}, k_now));
    auto r = s->grant(std::vector{permit("192.0.2.2", "bob"), permit("192.0.2.3", "carol")},
                      std::vector<core::Checkpoint>{{"file:/x", "9"}}, k_now);
    ASSERT_FALSE(r) << "past the bound a batch is refused, so its source offers it again later";
    EXPECT_NE(r.error().message.find("write queue full"), std::string::npos) << r.error().message;
    EXPECT_FALSE(s->find(addr("192.0.2.2"), k_now));
    EXPECT_FALSE(s->find_checkpoint("file:/x"));
    EXPECT_EQ(s->status().queue_full, 1u);
    ASSERT_TRUE(other.exec("COMMIT"));
    ASSERT_TRUE(wait_for(*s, [&] { return s->status().queued == 0; }));
    EXPECT_TRUE(s->grant(std::vector{permit("192.0.2.2", "bob"), permit("192.0.2.3", "carol")}, {}, k_now));
}

TEST(EmbeddedWriter, RevokeAndExpiryReachTheDiskInOrder) {
    TempDir dir;
    const std::string db = dir.path + "/permits.db";
    auto s = open(db);
    ASSERT_TRUE(s->grant(std::vector{permit("192.0.2.1", "alice"), permit("192.0.2.2", "bob", minutes(5))}, {}, k_now));
    ASSERT_TRUE(s->revoke(addr("192.0.2.1")));
    ASSERT_TRUE(s->grant(std::vector{permit("192.0.2.1", "carol")}, {}, k_now));  // after the revoke
    auto gone = s->expire(k_now + minutes(6));
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->size(), 1u);
    s.reset();  // closing writes the queue and the purge
    OtherConnection other(db);
    EXPECT_EQ(other.count("SELECT count(*) FROM permits"), 1);
    EXPECT_EQ(other.count("SELECT count(*) FROM permits WHERE user = 'carol'"), 1);
}

TEST(MaxPermits, RefusesNewNetworksButExtendsExistingOnes) {
    store::PermitTable t;
    t.set_limit(2);
    using C = store::PermitTable::Change;
    EXPECT_EQ(t.merge(permit("192.0.2.1", "a"), k_now).first, C::created);
    EXPECT_EQ(t.merge(permit("2001:db8::/64", "b"), k_now).first, C::created);
    EXPECT_EQ(t.merge(permit("192.0.2.3", "c"), k_now).first, C::refused);
    EXPECT_FALSE(t.find(addr("192.0.2.3"), k_now));
    EXPECT_EQ(t.refused(), 1u);
    auto later = permit("192.0.2.1", "a", minutes(60));
    EXPECT_EQ(t.merge(later, k_now).first, C::extended) << "an extension is no new permit";
    EXPECT_EQ(t.size(), 2u);
    t.remove_covering(addr("192.0.2.1"));
    EXPECT_EQ(t.merge(permit("192.0.2.3", "c"), k_now).first, C::created) << "room again";
}

TEST(MaxPermits, ConfigKeyHasADefaultAndBounds) {
    auto c = config::parse_config("\n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->max_permits, 1'000'000);
    c = config::parse_config("max_permits = 5000\n", "x.toml");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->max_permits, 5000);
    for (const char* bad : {"max_permits = 0", "max_permits = -1", "max_permits = \"many\""}) {
        auto e = config::parse_config(bad, "x.toml");
        ASSERT_FALSE(e) << bad;
        EXPECT_NE(e.error().message.find("max_permits"), std::string::npos) << e.error().message;
    }
}

TEST(MaxPermits, StoreReportsRefusedGrantsAndCountsThem) {
    TempDir dir;
    store::EmbeddedOptions o;
    o.max_permits = 1;
    auto s = open(dir.path + "/permits.db", o);
    auto r = s->grant(std::vector{permit("192.0.2.1", "a"), permit("192.0.2.2", "b")}, {}, k_now);
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)[0].change, store::GrantOutcome::Change::created);
    EXPECT_EQ((*r)[1].change, store::GrantOutcome::Change::refused);
    EXPECT_EQ(s->status().refused, 1u);
    EXPECT_EQ(s->size(), 1u);
    EXPECT_FALSE(s->find(addr("192.0.2.2"), k_now));
}

TEST(SlicedExpiry, AMassExpiryIsSpreadOverCallsAndNothingIsServedMeanwhile) {
    TempDir dir;
    auto s = open(dir.path + "/permits.db");
    std::vector<core::Permit> ps;
    for (int i = 0; i < 1000; ++i) {
        const std::string ip = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        ps.push_back({core::Cidr::host(addr(ip.c_str())), "u", "test", k_now, k_now + minutes(30)});
    }
    ASSERT_TRUE(s->grant(ps, {}, k_now));
    const auto later = k_now + minutes(30);
    EXPECT_FALSE(s->find(addr("10.0.3.200"), later)) << "expired permits are never served, purged or not";
    std::size_t total = 0, calls = 0;
    while (s->size() > 0) {
        auto gone = s->expire(later);
        ASSERT_TRUE(gone);
        EXPECT_LE(gone->size(), store::PermitTable::k_expire_slice);
        total += gone->size();
        ASSERT_LT(++calls, 100u);
        if (s->size() > 0) {
            ASSERT_TRUE(s->next_expiry());
            EXPECT_LE(*s->next_expiry(), later) << "more is due: the daemon calls expire() again at once";
        }
    }
    EXPECT_EQ(total, 1000u);
    EXPECT_GT(calls, 1u);
    EXPECT_FALSE(s->next_expiry());
}

// The compact table (dense records, flat index, expiry heap, interned strings) against a plain
// std::map model, over a fixed pseudo-random sequence of merges, revokes and expiries.
TEST(PermitTable, CompactLayoutAgreesWithASimpleModel) {
    store::PermitTable t;
    std::map<core::Cidr, core::Permit> model;
    std::uint64_t x = 88172645463325252ULL;
    auto next = [&] {  // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    auto net_of = [](std::uint64_t r) {
        const int n = static_cast<int>(r % 500);
        return n % 3 == 0 ? *core::Cidr::parse("2001:db8:" + std::to_string(n) + "::/64")
                          : core::Cidr::host(core::Address::v4(0x0a000000u + static_cast<std::uint32_t>(n)));
    };
    core::Time now = k_now;
    for (int step = 0; step < 20000; ++step) {
        const auto r = next();
        const auto net = net_of(r >> 8);
        switch (r % 8) {
        case 0: {  // revoke
            t.remove_exact(net);
            model.erase(net);
            break;
        }
        case 1: {  // expiry, in slices
            now += seconds(static_cast<int>(r >> 40) % 30);
            std::size_t gone = 0;
            for (;;) {
                auto slice = t.remove_expired(now, 7);
                for (const auto& p : slice) {
                    ASSERT_LE(p.expires, now);
                    ASSERT_TRUE(model.count(p.network));
                    model.erase(p.network);
                }
                gone += slice.size();
                if (slice.size() < 7) break;
            }
            for (const auto& [n, p] : model) ASSERT_GT(p.expires, now) << "every due permit was removed";
            (void)gone;
            break;
        }
        default: {  // a login
            // some names past CompactString's 22 inline bytes
            const std::string user = std::string(r % 5 == 0 ? 30 : 0, 'x') + "user" + std::to_string(r % 97);
            const core::Permit p{net, user, (r & 1) ? "mail" : "auth", now,
                                 now + seconds(60 + static_cast<int>((r >> 20) % 600))};
            const auto [change, stored] = t.merge(p, now);
            auto it = model.find(net);
            if (it == model.end() || it->second.expires <= now || p.expires > it->second.expires) {
                ASSERT_NE(change, store::PermitTable::Change::unchanged);
                model[net] = p;
            } else {
                ASSERT_EQ(change, store::PermitTable::Change::unchanged);
            }
        }
        }
        ASSERT_EQ(t.size(), model.size());
        const auto probe = net_of(next());
        const auto found = t.find_exact(probe);
        const auto m = model.find(probe);
        ASSERT_EQ(found.has_value(), m != model.end());
        if (found) {
            EXPECT_EQ(found->user, m->second.user);
            EXPECT_EQ(found->source, m->second.source);
            EXPECT_EQ(found->expires, m->second.expires);
        }
        if (!model.empty()) {
            auto earliest = std::min_element(model.begin(), model.end(),
                                             [](auto& a, auto& b) { return a.second.expires < b.second.expires; });
            ASSERT_EQ(t.next_expiry(), earliest->second.expires);
        }
    }
}
