// What the daemon shows the outside: DaemonStats (one collection for `status`, /metrics, /health,
// STATUS= and the hourly stats line), the [metrics] HTTP listener, the systemd watchdog and
// STATUS= lines, and the closing of passed sockets nothing took.
#include <algorithm>

#include "daemon/daemon_impl.hpp"
#include "daemon/metrics_text.hpp"
#include "util/log.hpp"
#include "util/systemd_fds.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

}  // namespace

DaemonStats Daemon::collect_stats() const {
    DaemonStats s;
    s.version = RELAYPERMIT_VERSION;
    s.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
    s.store_name = store_->describe();
    s.store = store_->status();
    s.outage_answers = outage_answers_;
    s.permits = store_->size();
    s.grants = grants_;
    s.extends = extends_;
    s.expired = expired_;
    s.revoked = revoked_;
    for (auto r : {Refusal::ignored, Refusal::stale, Refusal::untimed_backlog, Refusal::ttl_out_of_bounds})
        s.refused[static_cast<std::size_t>(r)] = refused_[r];
    s.grants_by_server = grants_by_server_;
    for (const auto& src : sources_) {
        SourceStats ss{src->name(), src->counters(), 0, std::nullopt, src->problem()};
        for (auto it = grants_by_server_.lower_bound({ss.name, ""}); it != grants_by_server_.end() && it->first.first == ss.name; ++it)
            ss.grants += it->second;
        if (auto lag = lag_by_source_.find(ss.name); lag != lag_by_source_.end()) ss.lag_seconds = lag->second;
        s.sources.push_back(std::move(ss));
    }
    for (const auto& fe : frontends_) s.frontends.push_back({std::string(fe->name()), fe->counters(), !fe->local_endpoints().empty()});
    for (const auto& kind : frontend_kinds())
        if (!kind.listen(cfg_).empty() && find_frontend(kind.name) == nullptr) s.missing_frontends.emplace_back(kind.name);
    s.exports = exports_.status();
    return s;
}

MetricsReply Daemon::metrics_reply(MetricsRoute route) const {
    const auto stats = collect_stats();
    if (route == MetricsRoute::metrics) return {200, std::string(k_metrics_content_type), format_metrics(stats)};
    const auto health = assess_health(stats);
    return {health.ok ? 200 : 503, "application/json", health_json(health)};
}

// Bound with the other listeners, before privileges are dropped. A reload does not change it
// (reload.cpp warns): [metrics] is read at start.
core::Status Daemon::open_metrics() {
    if (cfg_.metrics.listen.empty()) return core::ok();
    metrics_ = std::make_unique<MetricsServer>(loop_, cfg_.metrics.allow_from,
                                               [this](MetricsRoute r) { return metrics_reply(r); });
    if (auto st = metrics_->listen(cfg_.metrics.listen); !st) return st;
    return core::ok();
}

core::Status Daemon::close_passed_fds() {
    util::ListenFds::process().close_unclaimed();
    return core::ok();
}

void Daemon::start_notifications() {
    if (const auto interval = watchdog_from_environment()) {
        watchdog_ = std::make_unique<SdWatchdog>(loop_, *interval);
        log(Level::info, "systemd watchdog: pinging every {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(*interval / 2).count());
    }
    notify_status();
    struct Tick {
        Daemon* d;
        void operator()() const {
            d->notify_status();
            d->loop_.call_after(std::chrono::seconds(30), Tick{d});
        }
    };
    loop_.call_after(std::chrono::seconds(30), Tick{this});
}

void Daemon::notify_status() {
    const auto stats = collect_stats();
    const auto health = assess_health(stats);
    auto text = fmt::format("{}: {} permits, {} source(s), {} frontend(s)", health.ok ? "serving" : "degraded", stats.permits,
                            stats.sources.size(), stats.frontends.size());
    if (!health.ok) text += "; " + health.reasons.front();
    std::replace(text.begin(), text.end(), '\n', ' ');  // one datagram line per assignment: no injected READY=1
    if (text != last_status_) {
        sd_notify("STATUS=" + text);
        last_status_ = std::move(text);
    }
}

}  // namespace rp::daemon
