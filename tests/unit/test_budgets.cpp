// [limits] budgets (issue 17): the pure BudgetBook over fixed and sliding windows with a
// ManualClock, the "N/period" syntax, the counter store on a real SQLite file (counts survive a
// restart), and the policy service's answer once a budget is spent.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "config/config.hpp"
#include "daemon/budget_book.hpp"
#include "frontends/policy_codec.hpp"
#include "store/counter_store.hpp"

using namespace rp;
using namespace std::chrono;
using daemon::BudgetBook;
using daemon::BudgetKind;

namespace {

// 2026-12-05T10:00:00Z: a whole hour, so "1h" windows start here.
const core::Time k_t0 = core::from_unix_seconds(1796464800);

daemon::BudgetSettings settings(const char* recipients, daemon::WindowKind w = daemon::WindowKind::sliding) {
    daemon::BudgetSettings s;
    s.recipients = *config::parse_rate(recipients);
    s.messages = *config::parse_rate("2/1h");
    s.window = w;
    return s;
}

}  // namespace

TEST(BudgetRate, ParsesCountsAndPeriods) {
    EXPECT_EQ(config::parse_rate("100/1h")->limit, 100u);
    EXPECT_EQ(config::parse_rate("100/1h")->period, hours(1));
    EXPECT_EQ(config::parse_rate("500/d")->period, hours(24));
    EXPECT_EQ(config::parse_rate("20/10m")->period, minutes(10));
    EXPECT_EQ(config::format_rate(*config::parse_rate("20/10m")), "20/10m");
    for (const char* bad : {"", "100", "0/1h", "-1/1h", "x/1h", "10/", "10/0s", "10/400d", "10/abc"})
        EXPECT_FALSE(config::parse_rate(bad)) << bad;
}

TEST(BudgetBook, FixedWindowRefusesPastTheBudgetAndStartsAfreshNextWindow) {
    core::ManualClock clock(k_t0 + minutes(10));
    BudgetBook b(settings("3/1h", daemon::WindowKind::fixed));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    EXPECT_FALSE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    EXPECT_FALSE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));  // a refusal is not counted
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 3u);
    EXPECT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.8", 1, clock.now()));  // per address
    EXPECT_TRUE(b.spend(BudgetKind::messages, "192.0.2.7", 1, clock.now()));    // per kind
    clock.set(k_t0 + minutes(60));  // the next window
    EXPECT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 1u);
}

TEST(BudgetBook, SlidingWindowWeighsThePreviousWindow) {
    core::ManualClock clock(k_t0 + minutes(50));
    BudgetBook b(settings("10/1h"));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    EXPECT_FALSE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    // 15 minutes into the next window 3/4 of the previous one still counts: 8 (rounded up) of 10.
    clock.set(k_t0 + minutes(75));
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 8u);
    EXPECT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 2, clock.now()));
    EXPECT_FALSE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    // A fixed window would have allowed 10 more at once: the burst across a boundary is bounded.
    clock.set(k_t0 + minutes(180) + minutes(10));  // two windows on: everything old is gone
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 0u);
}

TEST(BudgetBook, NoBudgetMeansNoLimitAndNoUse) {
    daemon::BudgetSettings s;
    s.messages = *config::parse_rate("1/1h");
    BudgetBook b(s);
    EXPECT_TRUE(b.enabled());
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, k_t0));
    EXPECT_FALSE(b.use(BudgetKind::recipients, "192.0.2.7", k_t0));
    EXPECT_FALSE(BudgetBook().enabled());
}

TEST(BudgetBook, DeltasGoOutOnceAndTotalsFromTheStoreRaiseTheCount) {
    core::ManualClock clock(k_t0 + minutes(5));
    BudgetBook b(settings("10/1h", daemon::WindowKind::fixed));
    ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    auto d = b.take_deltas();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].key, "r|192.0.2.7");
    EXPECT_EQ(d[0].count, 2u);
    EXPECT_EQ(d[0].expires, k_t0 + hours(2));  // the end of the next window
    EXPECT_TRUE(b.take_deltas().empty());
    // Another host spent 5 meanwhile: the store's total is 7; one more of ours is not sent yet.
    ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    b.merge({"r|192.0.2.7", d[0].window, 7, d[0].expires}, clock.now());
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 8u);
    // A total lower than what we know (an older answer) never lowers the count.
    b.merge({"r|192.0.2.7", d[0].window, 1, d[0].expires}, clock.now());
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.7", clock.now())->used, 8u);
    // Totals of windows that are over, or of unknown kinds, are ignored.
    b.merge({"r|192.0.2.9", d[0].window - 5, 100, d[0].expires}, clock.now());
    b.merge({"x|192.0.2.9", d[0].window, 100, d[0].expires}, clock.now());
    EXPECT_EQ(b.use(BudgetKind::recipients, "192.0.2.9", clock.now())->used, 0u);
}

TEST(BudgetBook, UnsentCountsOfAWindowThatEndedAreStillHandedOut) {
    core::ManualClock clock(k_t0 + minutes(59));
    BudgetBook b(settings("10/1h", daemon::WindowKind::fixed));
    ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    clock.advance(minutes(2));
    ASSERT_TRUE(b.spend(BudgetKind::recipients, "192.0.2.7", 1, clock.now()));
    EXPECT_EQ(b.take_deltas().size(), 2u);
}

TEST(BudgetBook, MemoryIsBoundedByMaxKeys) {
    auto s = settings("10/1h");
    s.max_keys = 3;
    BudgetBook b(s);
    for (int i = 0; i < 10; ++i) b.spend(BudgetKind::recipients, "192.0.2." + std::to_string(i), 1, k_t0);
    EXPECT_LE(b.size(), 3u);
    EXPECT_EQ(b.take_deltas().size(), 10u);  // nothing counted is lost on its way to the store
}

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rp-budgets-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

// Waits (generous deadline, no fixed sleep) until the store has posted `n` totals.
std::vector<store::CounterRow> wait_totals(store::CounterStore& cs, std::size_t n) {
    std::vector<store::CounterRow> got;
    const auto deadline = steady_clock::now() + seconds(30);
    while (got.size() < n && steady_clock::now() < deadline) {
        auto more = cs.take_totals();
        got.insert(got.end(), more.begin(), more.end());
        if (got.size() < n) std::this_thread::yield();
    }
    return got;
}

std::unique_ptr<store::CounterBackend> sqlite_backend(const std::string& path) {
    auto b = store::make_sqlite_counters(path);
    return std::move(b.value());
}

}  // namespace

TEST(CounterStore, SqliteCountersAddUpAndSurviveARestart) {
    TempDir dir;
    const auto path = dir.path + "/budgets.db";
    const auto expires = core::SystemClock().now() + hours(2);
    {
        auto cs = store::CounterStore::start(sqlite_backend(path));
        ASSERT_TRUE(cs);
        (*cs)->push({{"r|192.0.2.7", 42, 3, expires}});
        auto t = wait_totals(**cs, 1);
        ASSERT_EQ(t.size(), 1u);
        EXPECT_EQ(t[0].count, 3u);
        (*cs)->push({{"r|192.0.2.7", 42, 2, expires}, {"m|192.0.2.7", 42, 1, expires}});
        t = wait_totals(**cs, 2);
        ASSERT_EQ(t.size(), 2u);
        std::sort(t.begin(), t.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
        EXPECT_EQ(t[0].count, 1u);  // m|
        EXPECT_EQ(t[1].count, 5u);  // r|
        (*cs)->push({{"r|192.0.2.7", 42, 1, expires}});  // pending at close: written by the destructor
    }
    auto cs = store::CounterStore::start(sqlite_backend(path));
    ASSERT_TRUE(cs);
    auto snap = wait_totals(**cs, 2);  // the snapshot read at start
    ASSERT_EQ(snap.size(), 2u);
    std::sort(snap.begin(), snap.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
    EXPECT_EQ(snap[0].key, "m|192.0.2.7");
    EXPECT_EQ(snap[1].count, 6u);
    EXPECT_TRUE((*cs)->status().available);
}

TEST(BudgetConfig, LimitsTableParsesEveryKeyAndRejectsBadValues) {
    auto cfg = config::parse_config(R"(
[limits]
recipients = "100/1h"
messages = "20/1h"
window = "fixed"
action = "REJECT 5.7.1 relay budget spent"
addresses_per_user = 3
replace_oldest = true
permits_per_prefix = ["/24:10", "/64:4"]
alert_addresses = "5/10m"
on_limit = ["/usr/local/bin/notify", "--limit"]
)", "t.toml");
    ASSERT_TRUE(cfg) << cfg.error().message;
    const auto& l = cfg->limits;
    EXPECT_EQ(l.recipients->limit, 100u);
    EXPECT_EQ(l.messages->period, hours(1));
    EXPECT_EQ(l.window, "fixed");
    EXPECT_EQ(l.action, "REJECT 5.7.1 relay budget spent");
    EXPECT_EQ(l.addresses_per_user, 3u);
    EXPECT_TRUE(l.replace_oldest);
    ASSERT_EQ(l.permits_per_prefix.size(), 2u);
    EXPECT_FALSE(l.permits_per_prefix[0].v6);
    EXPECT_TRUE(l.permits_per_prefix[1].v6);
    EXPECT_EQ(l.alert_addresses->limit, 5u);
    EXPECT_EQ(l.on_limit.size(), 2u);
    EXPECT_EQ(config::parse_config("", "t.toml")->limits.action, "DEFER_IF_PERMIT 4.7.1 relay permit limit reached");
    for (const char* bad : {"[limits]\nrecipients = \"many\"\n", "[limits]\nwindow = \"rolling\"\n",
                            "[limits]\naction = \"OK\\nREJECT\"\n", "[limits]\naddresses_per_user = -1\n",
                            "[limits]\npermits_per_prefix = \"/33:4x\"\n", "[limits]\nbogus = 1\n",
                            "[limits]\non_limit = []\nrecipients = 5\n"}) {
        auto r = config::parse_config(bad, "t.toml");
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("t.toml:"), std::string::npos) << r.error().message;
    }
}

namespace {

// An oracle with one permit and a budget of `left` RCPTs, recording what it was asked.
struct BudgetOracle final : frontends::PermitOracle {
    mutable int left = 2;
    mutable std::string states;
    mutable std::uint64_t last_count = 0;
    frontends::Verdict check(const core::Address& a) const override {
        frontends::Verdict v;
        if (a == *core::Address::parse("192.0.2.7")) v.kind = frontends::Verdict::Kind::permit, v.user = "alice";
        if (a == *core::Address::parse("192.0.2.8")) v.kind = frontends::Verdict::Kind::static_allow;
        return v;
    }
    std::string_view spend(const core::Address&, const frontends::Verdict&, std::string_view state,
                           std::uint64_t count) const override {
        states += std::string(state) + ";";
        last_count = count;
        if (state != "RCPT") return {};
        return left-- > 0 ? std::string_view() : std::string_view("DEFER_IF_PERMIT 4.7.1 relay permit limit reached");
    }
};

std::string answer(const BudgetOracle& o, std::string_view request) {
    frontends::PolicyParser p;
    auto step = p.feed(request);
    EXPECT_EQ(step.kind, frontends::PolicyParser::Step::Kind::request);
    std::string out;
    frontends::policy_answer(p.request(), o, out);
    return out;
}

}  // namespace

TEST(BudgetPolicyAnswer, APermitPastItsBudgetGetsTheActionOthersAreNotCounted) {
    BudgetOracle o;
    const std::string rcpt = "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.7\n\n";
    EXPECT_EQ(answer(o, rcpt), "action=OK\n\n");
    EXPECT_EQ(answer(o, rcpt), "action=OK\n\n");
    EXPECT_EQ(answer(o, rcpt), "action=DEFER_IF_PERMIT 4.7.1 relay permit limit reached\n\n");
    // Static allow and unknown clients never reach spend().
    o.states.clear();
    EXPECT_EQ(answer(o, "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.8\n\n"), "action=OK\n\n");
    EXPECT_EQ(answer(o, "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.9\n\n"),
              "action=DUNNO\n\n");
    EXPECT_EQ(o.states, "");
    // END-OF-MESSAGE carries recipient_count.
    EXPECT_EQ(answer(o, "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nrecipient_count=4\r\n"
                        "client_address=192.0.2.7\n\n"),
              "action=OK\n\n");
    EXPECT_EQ(o.states, "END-OF-MESSAGE;");
    EXPECT_EQ(o.last_count, 4u);
}
