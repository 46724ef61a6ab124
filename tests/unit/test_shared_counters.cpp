// Budget counters in the shared engines: the counter half of the contract in
// src/store/shared_backend.hpp (add_counters, counter_snapshot, purge_counters, connect_counters)
// and CounterStore on top of it, against REAL servers named by the same variables as the
// conformance suite (test_shared_backend.cpp):
//   RP_TEST_REDIS_URL  (redis)   RP_TEST_PGSQL_URL  (pgsql)   RP_TEST_MYSQL_URL  (mysql)
// Unset means skipped. tests/integration/test_store_redis.py and test_store_sql.py start private
// servers and run Engines/SharedCounters.*/<engine>. Two backends on one URL stand for two
// daemons. Every test uses keys of its own (a random tag per run), so leftovers of an earlier run
// do no harm. Waiting is for a condition with a generous deadline, never a fixed sleep. An
// unreachable server is SharedBackendConformance.UnreachableServerIsAnErrorNotAHang's case.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/counter_store.hpp"
#include "store/shared_backend.hpp"

using namespace rp;
using namespace std::chrono;
using store::CounterRow;
using store::SharedBackend;

namespace {

core::Time now() { return core::SystemClock().now(); }

struct Engine {
    const char* name;
    const char* env;
};

class SharedCounters : public testing::TestWithParam<Engine> {
protected:
    void SetUp() override {
        const char* url = std::getenv(GetParam().env);
        if (!url || !*url) GTEST_SKIP() << GetParam().env << " is not set (no " << GetParam().name << " server)";
        auto parsed = store::parse_store_url(url);
        ASSERT_TRUE(parsed) << parsed.error().message;
        url_ = *parsed;
        tag_ = "t" + std::to_string(std::random_device{}()) + "|";
        a_ = counters();
        ASSERT_TRUE(a_);
        b_ = counters();
        ASSERT_TRUE(b_);
    }

    std::unique_ptr<SharedBackend> counters() {
        auto b = store::make_backend(url_);
        EXPECT_TRUE(b) << b.error().message;
        if (!b) return nullptr;
        auto s = (*b)->connect_counters();
        EXPECT_TRUE(s) << s.error().message;
        return s ? std::move(*b) : nullptr;
    }

    // A key of this test run: "r|<tag>192.0.2.7" (the daemon's keys are "r|192.0.2.7").
    std::string key(const std::string& name) const { return "r|" + tag_ + name; }

    std::vector<CounterRow> add(SharedBackend& b, std::vector<CounterRow> deltas) {
        auto r = b.add_counters(deltas);
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : std::vector<CounterRow>{};
    }

    // This run's rows of a snapshot at `t`, by (key, window).
    std::map<std::pair<std::string, std::int64_t>, std::uint64_t> snap(SharedBackend& b, core::Time t) {
        auto s = b.counter_snapshot(t);
        EXPECT_TRUE(s) << s.error().message;
        std::map<std::pair<std::string, std::int64_t>, std::uint64_t> out;
        if (s)
            for (const auto& r : *s)
                if (r.key.find(tag_) != std::string::npos) out[{r.key, r.window}] = r.count;
        return out;
    }

    store::StoreUrl url_;
    std::string tag_;
    std::unique_ptr<SharedBackend> a_, b_;
};

TEST_P(SharedCounters, AddReturnsTheTotalsInTheDeltasOrder) {
    const auto exp = now() + 2h;
    auto t = add(*a_, {{key("192.0.2.7"), 42, 3, exp}, {key("192.0.2.8"), 42, 1, exp}, {key("192.0.2.7"), 43, 2, exp}});
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0], (CounterRow{key("192.0.2.7"), 42, 3, exp}));
    EXPECT_EQ(t[1], (CounterRow{key("192.0.2.8"), 42, 1, exp}));
    EXPECT_EQ(t[2], (CounterRow{key("192.0.2.7"), 43, 2, exp})) << "windows are separate rows";
    t = add(*a_, {{key("192.0.2.8"), 42, 4, exp}, {key("192.0.2.7"), 42, 1, exp}});
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t[0].count, 5u);
    EXPECT_EQ(t[1].count, 4u);
    EXPECT_TRUE(add(*a_, {}).empty());
}

TEST_P(SharedCounters, TwoDaemonsAddToOneCount) {
    const auto exp = now() + 2h;
    EXPECT_EQ(add(*a_, {{key("198.51.100.1"), 7, 3, exp}}).at(0).count, 3u);
    EXPECT_EQ(add(*b_, {{key("198.51.100.1"), 7, 2, exp}}).at(0).count, 5u) << "b's total includes a's count";
    EXPECT_EQ(add(*a_, {{key("198.51.100.1"), 7, 1, exp}}).at(0).count, 6u);
    EXPECT_EQ((snap(*b_, now())[{key("198.51.100.1"), 7}]), 6u);
}

// Four daemons add to two shared rows at once, in batches that name the rows in different
// orders: no increment is lost, no batch fails (no deadlock), and each daemon sees its totals
// grow.
TEST_P(SharedCounters, ConcurrentAddsLoseNoIncrement) {
    constexpr int kDaemons = 4, kRounds = 40;
    const auto exp = now() + 2h;
    const std::string k1 = key("203.0.113.1"), k2 = key("203.0.113.2");
    std::vector<std::unique_ptr<SharedBackend>> daemons;
    for (int i = 0; i < kDaemons; ++i) daemons.push_back(counters());
    for (const auto& d : daemons) ASSERT_TRUE(d);
    std::vector<std::string> errors(kDaemons);
    std::vector<int> not_growing(kDaemons, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < kDaemons; ++i) {
        threads.emplace_back([&, i] {
            std::uint64_t last = 0;
            for (int r = 0; r < kRounds && errors[i].empty(); ++r) {
                std::vector<CounterRow> batch{{k1, 1, 1, exp}, {k2, 1, 1, exp}, {key("own" + std::to_string(i)), 1, 1, exp}};
                if ((i + r) % 2) std::reverse(batch.begin(), batch.end());
                auto t = daemons[static_cast<std::size_t>(i)]->add_counters(batch);
                if (!t) {
                    errors[i] = t.error().message;
                    break;
                }
                const auto& row1 = *std::find_if(t->begin(), t->end(), [&](const CounterRow& c) { return c.key == k1; });
                if (row1.count <= last) ++not_growing[i];
                last = row1.count;
            }
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kDaemons; ++i) {
        EXPECT_EQ(errors[i], "") << "daemon " << i;
        EXPECT_EQ(not_growing[i], 0) << "daemon " << i;
    }
    auto s = snap(*a_, now());
    EXPECT_EQ((s[{k1, 1}]), static_cast<std::uint64_t>(kDaemons * kRounds));
    EXPECT_EQ((s[{k2, 1}]), static_cast<std::uint64_t>(kDaemons * kRounds));
    EXPECT_EQ((s[{key("own0"), 1}]), static_cast<std::uint64_t>(kRounds));
}

TEST_P(SharedCounters, SnapshotHasLiveRowsOnly) {
    const auto t = now();
    add(*a_, {{key("192.0.2.20"), 5, 4, t + 1h}, {key("192.0.2.21"), 5, 9, t - 1s}});
    auto s = snap(*b_, now());
    EXPECT_EQ((s[{key("192.0.2.20"), 5}]), 4u);
    EXPECT_EQ(s.count({key("192.0.2.21"), 5}), 0u) << "expired";
}

TEST_P(SharedCounters, PurgeDeletesExpiredRowsOnly) {
    const auto t = now();
    add(*a_, {{key("192.0.2.30"), 5, 4, t + 1h}, {key("192.0.2.31"), 5, 9, t - 1s}});
    auto p = a_->purge_counters(now());
    ASSERT_TRUE(p) << p.error().message;
    auto s = snap(*b_, t - 1h);  // would still show the expired row had it not been deleted
    EXPECT_EQ((s[{key("192.0.2.30"), 5}]), 4u);
    EXPECT_EQ(s.count({key("192.0.2.31"), 5}), 0u);
}

TEST_P(SharedCounters, CountsSurviveAReconnect) {
    const auto exp = now() + 2h;
    add(*a_, {{key("192.0.2.40"), 9, 7, exp}});
    a_->disconnect();
    EXPECT_FALSE(a_->add_counters(std::vector<CounterRow>{{key("192.0.2.40"), 9, 1, exp}})) << "not connected";
    auto s = a_->connect_counters();
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ((snap(*a_, now())[{key("192.0.2.40"), 9}]), 7u);
    EXPECT_EQ(add(*a_, {{key("192.0.2.40"), 9, 1, exp}}).at(0).count, 8u);
}

// Waits (generous deadline, no fixed sleep) until the store posts the total `want` for `k`;
// returns the totals it posted for `k` (its start-up snapshot may post an earlier one first).
std::vector<std::uint64_t> wait_total(store::CounterStore& cs, const std::string& k, std::uint64_t want) {
    std::vector<std::uint64_t> got;
    const auto deadline = steady_clock::now() + seconds(30);
    while (steady_clock::now() < deadline && std::find(got.begin(), got.end(), want) == got.end()) {
        for (auto& r : cs.take_totals())
            if (r.key == k) got.push_back(r.count);
        std::this_thread::yield();
    }
    return got;
}

std::unique_ptr<store::CounterStore> counter_store(const store::StoreUrl& url) {
    auto b = store::make_shared_counters(url);
    EXPECT_TRUE(b) << b.error().message;
    if (!b) return nullptr;
    auto cs = store::CounterStore::start(std::move(*b));
    EXPECT_TRUE(cs) << cs.error().message;
    return cs ? std::move(*cs) : nullptr;
}

// As two daemons use it: each CounterStore on its own connection; b learns a's count from the
// total of its own next push; a count pending at a's stop is written, and a restarted store
// reads every live row back.
TEST_P(SharedCounters, CounterStoresOfTwoDaemonsShareOneBudgetAndSurviveARestart) {
    const auto exp = now() + 2h;
    const std::string k = key("192.0.2.60");
    auto a = counter_store(url_);
    auto b = counter_store(url_);
    ASSERT_TRUE(a && b);
    a->push({{k, 3, 4, exp}});
    EXPECT_EQ(wait_total(*a, k, 4), std::vector<std::uint64_t>{4});
    b->push({{k, 3, 1, exp}});
    const auto b_totals = wait_total(*b, k, 5);  // after b's start-up snapshot (0 or 4)
    EXPECT_TRUE(!b_totals.empty() && b_totals.back() == 5u) << "b's total includes a's count";
    a->push({{k, 3, 2, exp}});  // pending at the stop: written by the destructor
    a.reset();
    auto c = counter_store(url_);
    ASSERT_TRUE(c);
    EXPECT_EQ(wait_total(*c, k, 7), std::vector<std::uint64_t>{7}) << "the snapshot read at start";
    EXPECT_TRUE(c->status().available);
    EXPECT_EQ(b->status().failures, 0u) << b->status().last_error;
}

INSTANTIATE_TEST_SUITE_P(Engines, SharedCounters,
                         testing::Values(Engine{"redis", "RP_TEST_REDIS_URL"}, Engine{"pgsql", "RP_TEST_PGSQL_URL"},
                                         Engine{"mysql", "RP_TEST_MYSQL_URL"}),
                         [](const testing::TestParamInfo<Engine>& i) { return std::string(i.param.name); });

}  // namespace
