// The Daemon's `[limits]` (docs/limits.md): budgets answered to the policy service
// (PermitOracle::spend), the caps every grant passes (Daemon::grant calls apply_caps), the
// address alert, `limit` log lines, on_limit, and the budget counters' store.
// Security: user names and addresses in log lines go through util::esc; on_limit gets them in
// its environment only (limit_command.hpp).
#include <sys/epoll.h>

#include <algorithm>

#include "daemon/daemon_impl.hpp"
#include "daemon/limits_state.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

BudgetSettings budget_settings(const config::LimitsConfig& c) {
    BudgetSettings s;
    s.recipients = c.recipients;
    s.messages = c.messages;
    s.window = c.window == config::LimitWindow::fixed ? WindowKind::fixed : WindowKind::sliding;
    return s;
}

CapSettings cap_settings(const config::LimitsConfig& c) {
    return CapSettings{c.addresses_per_user, c.replace_oldest, c.permits_per_prefix};
}

}  // namespace

void Daemon::apply_limits(const config::LimitsConfig& c) {
    if (!limits_) limits_ = std::make_unique<LimitsState>();
    auto& l = *limits_;
    l.loop = &loop_;
    const bool caps_changed = !(cap_settings(c) == l.caps);
    l.cfg = c;
    l.book.set_settings(budget_settings(c));
    l.caps = cap_settings(c);
    if (caps_changed) l.index_dirty = true;
    if (c.alert_addresses) l.alert.emplace(c.alert_addresses->limit, c.alert_addresses->period);
    else l.alert.reset();
    if (c.on_limit.empty()) l.on_limit.reset();
    else if (!l.on_limit || l.on_limit_argv != c.on_limit) l.on_limit = std::make_unique<LimitCommand>(loop_, c.on_limit);
    l.on_limit_argv = c.on_limit;
    if (store_ && l.book.enabled() && !l.counters)  // budgets switched on by a reload
        if (auto st = open_counters(); !st) log(Level::error, "{}", st.error().message);
}

// Start-up step after open_store: the counters of the same store (their snapshot is merged as
// soon as the worker has read it).
core::Status Daemon::open_limits() {
    apply_limits(cfg_.limits);
    if (limits_->book.enabled() && !limits_->counters) return core::make_error("[limits]: cannot keep budget counters");
    return core::ok();
}

core::Status Daemon::open_counters() {
    auto backend = store::open_counter_backend(
        {cfg_.state_dir, cfg_.store, cfg_.store_password_file, false, static_cast<std::size_t>(cfg_.max_permits)});
    if (!backend) return core::make_error("[limits] budget counters: " + backend.error().message);
    auto cs = store::CounterStore::start(std::move(*backend));
    if (!cs) return core::make_error("[limits] budget counters: " + cs.error().message);
    limits_->counters = std::move(*cs);
    loop_.add(limits_->counters->event_fd(), EPOLLIN, [this](std::uint32_t) {
        const auto now = clock_.now();
        for (const auto& row : limits_->counters->take_totals()) limits_->book.merge(row, now);
    });
    return core::ok();
}

void Daemon::close_limits() {
    if (!limits_ || !limits_->counters) return;
    limits_->counters->push(limits_->book.take_deltas());
    loop_.remove(limits_->counters->event_fd());
    limits_->counters.reset();  // writes what is pending once, then stops its worker
}

std::string_view Daemon::spend(const core::Address& client, const frontends::Verdict& v, std::string_view state,
                               std::uint64_t recipient_count) const {
    if (!limits_ || !limits_->book.enabled()) return {};
    BudgetKind kind;
    if (state == "RCPT") kind = BudgetKind::recipients;
    else if (state == "END-OF-MESSAGE") kind = BudgetKind::messages;
    else return {};
    const auto now = clock_.now();
    const auto p = store_->find(client, now);
    if (!p) return {};
    const auto net = p->network.to_string();
    auto& l = *limits_;
    if (l.book.spend(kind, net, 1, now)) {
        if (l.counters && !l.flush_timer)  // batch what one loop iteration counted
            l.flush_timer = l.loop->call_after(std::chrono::milliseconds(0), [this] {
                limits_->flush_timer = 0;
                if (limits_->counters) limits_->counters->push(limits_->book.take_deltas());
            });
        return {};
    }
    ++(kind == BudgetKind::recipients ? l.n.recipients : l.n.messages);
    const auto use = l.book.use(kind, net, now);
    const auto& rate = kind == BudgetKind::recipients ? l.cfg.recipients : l.cfg.messages;
    const std::string detail = fmt::format("{} budget {} spent ({} used){}", budget_kind_name(kind), config::format_rate(*rate),
                                           use ? use->used : 0,
                                           kind == BudgetKind::messages ? fmt::format(", message of {} recipient(s)", recipient_count) : "");
    l.refusal_log.log(Level::warning, "limit kind={} ip={} user={} client={}: {}; answered {}", budget_kind_name(kind), net,
                      util::esc(v.user.empty() ? "-" : v.user), client.to_string(), detail, util::esc(l.cfg.action));
    const auto key = BudgetBook::key_for(kind, net);
    if (auto it = l.announced.find(key); it == l.announced.end() || it->second + rate->period <= now) {
        if (l.announced.size() > 100'000) l.announced.clear();
        l.announced[key] = now;
        if (l.on_limit) l.on_limit->run({std::string(budget_kind_name(kind)), net, v.user, detail});
    }
    return l.cfg.action;
}

// A refusal or alert of the grant side: one `limit` line, a count, on_limit.
void Daemon::limit_event(std::string_view kind, const core::Permit& p, const std::string& detail) {
    log(Level::warning, "limit kind={} ip={} user={} source={}: {}", kind, p.network.to_string(),
        util::esc(p.user.empty() ? "-" : p.user), util::esc(p.source), detail);
    if (limits_->on_limit) limits_->on_limit->run({std::string(kind), p.network.to_string(), p.user, detail});
}

// The caps of the grant policy (permit_caps.hpp) over one batch, in order: refused permits are
// taken out (and listed in `refused`; kept[i] = false for them), replace_oldest revokes the
// user's oldest permits.
void Daemon::apply_caps(std::vector<core::Permit>& permits, std::vector<std::string>& servers,
                        std::vector<core::Permit>& refused, std::vector<bool>& kept) {
    if (!limits_ || !limits_->caps.enabled() || permits.empty()) return;
    auto& l = *limits_;
    const auto now = clock_.now();
    if (l.index_dirty || (store_->status().shared && std::chrono::steady_clock::now() - l.index_built > std::chrono::seconds(10))) {
        l.index.clear();  // other daemons' grants reach the index within 10 s
        for (const auto& p : store_->list(now)) l.index.add(p, l.caps);
        l.index_dirty = false;
        l.index_built = std::chrono::steady_clock::now();
    }
    std::vector<core::Cidr> batch;  // accepted earlier in this batch: not in the store yet
    std::vector<core::Permit> keep;
    const CapIndex::Live live = [&](const core::Cidr& net) -> std::optional<core::Permit> {
        for (std::size_t i = 0; i < batch.size(); ++i)  // batch[i] is keep[i]'s network
            if (batch[i] == net) return keep[i];
        auto p = store_->find(net.network(), now);
        if (p && p->network == net) return p;
        return std::nullopt;
    };
    std::vector<std::string> keep_servers;
    l.last_cap_refusal.clear();
    for (std::size_t i = 0; i < permits.size(); ++i) {
        auto& p = permits[i];
        const bool held = live(p.network).has_value();
        const auto user_held = l.caps.addresses_per_user && !p.user.empty() ? l.index.user_held(p.user, live) : std::vector<HeldPermit>{};
        const auto in_prefix = l.index.in_prefix(p.network, l.caps, live);
        auto d = check_caps(l.caps, p, user_held, in_prefix, held);
        if (!d.granted()) {
            const bool user_cap = d.kind == CapDecision::Kind::refuse_user;
            ++(user_cap ? l.n.addresses_per_user : l.n.permits_per_prefix);
            limit_event(user_cap ? "addresses_per_user" : "permits_per_prefix", p, d.reason + "; no permit granted");
            l.last_cap_refusal = d.reason;
            refused.push_back(std::move(p));
            kept[i] = false;
            continue;
        }
        for (const auto& net : d.replace) {
            auto gone = store_->revoke(net.network());
            if (!gone) continue;
            for (const auto& g : *gone) {
                ++revoked_, ++l.n.replaced;
                l.index.remove(g.network);
                log(Level::info, "revoke ip={} user={} by=replace_oldest", g.network.to_string(),
                    util::esc(g.user.empty() ? "-" : g.user));
            }
        }
        l.index.add(p, l.caps);
        keep.push_back(std::move(p));
        keep_servers.push_back(i < servers.size() ? servers[i] : std::string());
        batch.push_back(keep.back().network);
    }
    permits = std::move(keep);
    servers = std::move(keep_servers);
}

// After a grant: the alert rule sees every login that made or extended a permit.
void Daemon::observe_grant(const core::Permit& p) {
    if (!limits_ || !limits_->alert) return;
    auto& l = *limits_;
    if (!l.alert->observe(p.user, p.network.to_string(), clock_.now())) return;
    ++l.n.alerts;
    limit_event("alert_addresses", p,
                fmt::format("the user logged in from {} addresses within {} (alert_addresses = {})",
                            l.alert->distinct(p.user), core::format_duration(l.cfg.alert_addresses->period),
                            config::format_rate(*l.cfg.alert_addresses)));
}

nlohmann::json Daemon::limits_status_json() const {
    if (!limits_) return nlohmann::json::object();
    const auto& n = limits_->n;
    nlohmann::json j = {{"recipients", n.recipients},           {"messages", n.messages},
                        {"addresses_per_user", n.addresses_per_user}, {"permits_per_prefix", n.permits_per_prefix},
                        {"replaced", n.replaced},               {"alerts", n.alerts},
                        {"budget_keys", limits_->book.size()}};
    if (const auto& c = limits_->on_limit)
        j["on_limit"] = {{"started", c->started()}, {"dropped", c->dropped()}, {"failures", c->failures()}, {"running", c->running()}};
    if (const auto& cs = limits_->counters) {
        const auto s = cs->status();
        j["counters"] = {{"store", cs->describe()}, {"available", s.available}, {"pushed", s.pushed}, {"pending", s.pending},
                         {"failures", s.failures}, {"dropped", s.dropped}, {"last_error", s.last_error}};
    }
    return j;
}

// `list`: the permit's budget use, e.g. {"recipients": "12/100", "messages": "2/20"}.
nlohmann::json Daemon::budget_json(const core::Permit& p) const {
    nlohmann::json j = nlohmann::json::object();
    if (!limits_ || !limits_->book.enabled()) return j;
    const auto now = clock_.now();
    for (auto kind : {BudgetKind::recipients, BudgetKind::messages})
        if (const auto u = limits_->book.use(kind, p.network.to_string(), now))
            j[std::string(budget_kind_name(kind))] = std::to_string(u->used) + "/" + std::to_string(u->limit);
    return j;
}

}  // namespace rp::daemon
