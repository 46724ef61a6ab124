// The Daemon object behind run_daemon(): private to src/daemon (not a public contract).
//
// One object, split by role over several files:
//   daemon.cpp          run() as its start-up steps, reload, signals, shutdown
//   grant_core.cpp      LoginSink + PermitOracle: the grant policy, expiry timer, export timer, stats
//   wiring.cpp          config -> objects at start-up: matcher, sources, frontends, exporters
//   reload.cpp          SIGHUP: the new set built beside the running one, swapped all or nothing
//   control_commands.cpp  the control socket (util::ConnServer + ControlSession) and its command table
//   observe.cpp         DaemonStats for status/metrics/health, the [metrics] listener, systemd
//                       watchdog and STATUS=, closing unclaimed passed sockets
//   sessions.cpp        session-aware lifetime: open/end sessions, refresh timer, saved table
// Thread-safety: single-threaded; everything runs on the loop thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/time.hpp"
#include "daemon/control_codec.hpp"
#include "daemon/control_session.hpp"
#include "daemon/daemon_stats.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/sd_notify.hpp"
#include "daemon/limits_state.hpp"
#include "daemon/daemon.hpp"
#include "daemon/permit_policy.hpp"
#include "daemon/privileges.hpp"
#include "daemon/session_file.hpp"
#include "daemon/session_table.hpp"
#include "exports/export_scheduler.hpp"
#include "exports/exporter.hpp"
#include "frontends/frontend.hpp"
#include "frontends/netstring_codec.hpp"
#include "frontends/permit_oracle.hpp"
#include "matching/matcher.hpp"
#include "sources/permit_access.hpp"
#include "sources/source.hpp"
#include "store/permit_store.hpp"
#include "util/conn_server.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::daemon {

// How the daemon runs one MTA frontend kind (one row per config::FrontendType, wiring.cpp; its
// keys are config/keys_frontends.cpp's row): its table's endpoints, whether two configs agree on
// it (struct equality), and how to build it. frontend_kinds() lists them in FrontendType order,
// the order `status` shows them.
struct FrontendKind {
    config::FrontendType type;
    std::string name() const { return std::string(config::to_string(type)); }
    const std::vector<std::string>& (*listen)(const config::Config&);
    bool (*same)(const config::Config& a, const config::Config& b);
    std::unique_ptr<frontends::Frontend> (*make)(util::EventLoop&, const frontends::PermitOracle&, const config::Config&);
};
std::span<const FrontendKind> frontend_kinds();

// The identity of the files a source reads only when it opens (its TLS files and `allow_file`,
// DRAC's dracd.allow; stat: device, inode, size, times); "" when it names none.
std::string source_files_stamp(const config::SourceConfig& sc);

class Daemon final : public sources::LoginSink, public frontends::PermitOracle, public sources::PermitAccess {
public:
    explicit Daemon(RunOptions opts) : opts_(std::move(opts)) {}

    int run();

    // LoginSink
    core::Status deliver(std::span<const core::LoginEvent> events, const core::Checkpoint& checkpoint) override;
    std::optional<std::string> find_checkpoint(const std::string& key) const override {
        return store_->find_checkpoint(key);
    }
    // PermitOracle
    frontends::Verdict check(const core::Address& client) const override;
    // PermitAccess (the whoson source's LOGOUT and QUERY; grant_core.cpp)
    core::Result<std::size_t> revoke(const core::Address& a, std::string_view source) override;
    std::optional<core::Permit> find(const core::Address& a) const override { return store_->find(a, clock_.now()); }
    // Budgets: counts a permit's RCPT / END-OF-MESSAGE request (limits.cpp).
    std::string_view spend(const core::Address& client, const frontends::Verdict& v, std::string_view state,
                           std::uint64_t recipient_count) const override;

private:
    // Start-up steps, in the order run() calls them (daemon.cpp).
    core::Status find_user();
    core::Status make_state_dir();
    core::Status open_control();
    core::Status bind_frontends();
    core::Status bind_sources();
    core::Status drop_privileges() { return daemon::drop_privileges(run_as_); }
    core::Status open_store();
    core::Status open_exports();
    core::Status restore_sessions();  // sessions.cpp
    core::Status take_spool();
    core::Status purge_expired();
    core::Status start_sources() { return start_new_sources(); }
    core::Status watch_signals();
    void serve();
    void shut_down();
    void block_signals();

    // wiring.cpp
    using MatcherPtr = std::shared_ptr<const matching::Matcher>;
    // The settings that need no object: cfg_, log level, mynetworks added to ignore.
    void apply_settings(const config::Config& cfg);
    // Starts the sources opened since the last call (needs the store: checkpoints).
    core::Status start_new_sources();
    core::Result<std::unique_ptr<sources::Source>> open_source(const config::SourceConfig& sc, sources::LineParser parser,
                                                               const MatcherPtr& m);
    // open_source with parsers from `m`; the error names FILE:LINE and the source.
    core::Result<std::unique_ptr<sources::Source>> open_source_for(const config::SourceConfig& sc,
                                                                   const std::string& file, const MatcherPtr& m);
    sources::LineParser parser_for(const config::SourceConfig& sc, const MatcherPtr& m) const;
    sources::LineParser untrusted_parser(const config::SourceConfig& sc, const MatcherPtr& m) const;
    core::Result<std::unique_ptr<frontends::Frontend>> open_frontend(const FrontendKind& kind, const config::Config& cfg);
    const frontends::Frontend* find_frontend(config::FrontendType type) const;
    std::unique_ptr<frontends::Frontend> take_frontend(config::FrontendType type);
    void add_frontend(config::FrontendType type, std::unique_ptr<frontends::Frontend> fe);
    // [socketmap] static (socketmap_static.hpp): read at start (an error stops it) and on every
    // reload (an error is logged, the running entries stay); handed to the running socketmap.
    core::Status load_socketmap_static();
    void reload_socketmap_static();
    void hand_socketmap_static();

    // limits.cpp: [limits] budgets, caps, alerts (docs/limits.md)
    core::Status open_limits();  // start-up step after open_store
    void apply_limits(const config::LimitsConfig& c);
    core::Status open_counters();
    void close_limits();
    void apply_caps(std::vector<core::Permit>& permits, std::vector<std::string>& servers,
                    std::vector<core::Permit>& refused, std::vector<bool>& kept);
    void observe_grant(const core::Permit& p);
    void limit_event(std::string_view kind, const core::Permit& p, const std::string& detail);
    nlohmann::json limits_status_json() const;
    nlohmann::json budget_json(const core::Permit& p) const;

    // reload.cpp
    static constexpr std::size_t k_none = static_cast<std::size_t>(-1);
    enum class FrontendStep { keep, open, replace, drop };
    // The new set, built beside the running one.
    struct ReloadPlan {
        config::Config cfg;
        MatcherPtr matcher;
        std::vector<std::size_t> source_from;                   // per new source: the kept old one, or k_none
        std::vector<std::unique_ptr<sources::Source>> sources;  // per new source: opened (null: kept/deferred)
        std::vector<std::size_t> deferred_sources;              // opened only after their old one closed
        std::vector<std::size_t> closed_sources;                // old ones that share an endpoint or path
        std::vector<FrontendStep> frontend_state;               // per frontend kind
        std::vector<std::unique_ptr<frontends::Frontend>> frontends;
        std::vector<std::unique_ptr<exports::Exporter>> exporters;
    };
    void reload();
    core::Status prepare_reload(ReloadPlan& plan);
    core::Status plan_sources(ReloadPlan& plan);
    core::Status probe_source(const config::SourceConfig& sc, const config::SourceConfig& old, ReloadPlan& plan);
    core::Status plan_frontends(ReloadPlan& plan);
    core::Status commit_reload(ReloadPlan& plan);
    core::Status open_deferred(ReloadPlan& plan);
    void restore_closed(ReloadPlan& plan, std::vector<std::unique_ptr<frontends::Frontend>>& closed_fe);
    void swap_in(ReloadPlan& plan);

    // control_commands.cpp
    struct ControlTable;  // the command table: command, privilege needed, handler
    core::Status open_control_socket();
    // The check hook: SO_PEERCRED against root, our user and control_group; a refused peer gets
    // {"ok":false,"error":"permission denied"} (best effort) and is closed.
    bool admit_control_peer(int fd, const util::Peer& peer);
    // One request line to its reply through the command table; never throws.
    ControlReply answer_control(std::string_view line, const ControlPeer& peer);
    ControlReply control_check(const ControlRequest& req, const ControlPeer& peer);
    ControlReply control_list(const ControlRequest& req, const ControlPeer& peer);
    ControlReply control_allow(const ControlRequest& req, const ControlPeer& peer);
    ControlReply control_revoke(const ControlRequest& req, const ControlPeer& peer);
    ControlReply control_status(const ControlRequest& req, const ControlPeer& peer);
    ControlReply control_import(const ControlRequest& req, const ControlPeer& peer);  // control_import.cpp
    nlohmann::json import_json(const ControlRequest& req, const ControlPeer& peer);
    nlohmann::json static_allow_json() const;                                        // control_import.cpp
    bool authorized(uid_t uid, gid_t gid) const;

    // observe.cpp: what the daemon shows the outside (status, [metrics], systemd)
    // Every counter and state, collected once for `status`, /metrics, /health and STATUS=.
    DaemonStats collect_stats() const;
    core::Status open_metrics();
    MetricsReply metrics_reply(MetricsRoute route) const;
    // Closes the descriptors systemd passed that no listener or FIFO took (logged).
    core::Status close_passed_fds();
    // WATCHDOG=1 from the loop when the unit sets WatchdogSec=; STATUS= now and every 30 s.
    void start_notifications();
    void notify_status();  // STATUS= when its text changed (also after a reload)

    // grant_core.cpp
    // Counts a refusal of the grant policy and logs it at debug level.
    void count_refusal(const core::LoginEvent& e, const PolicyDecision& d);
    // Grants what was spooled while the daemon was stopped (login_spool.hpp), then removes it.
    void drain_spool();
    void schedule_spool_drain();
    void reschedule_expiry();
    void run_expiry();
    // Rewrites every [[export]] within 100 ms of a change (grants, revokes, expiry), batching
    // what happens meanwhile; a failed write is retried with the next change or expiry check.
    void schedule_exports();
    // The permits live at `now`, copied k_export_piece at a time over loop turns (unsorted).
    exports::ExportScheduler::PieceCopy export_copy(core::Time now) const;
    // One line per source and frontend with its counters: hourly and at shutdown.
    void log_stats();
    void schedule_stats();
    // sessions.cpp (session_table.hpp, docs/limits.md)
    // Logins that name a session open it on their permit's network, once the store took the
    // permit (outcomes[i] is logins[i]'s); a refused permit opens none.
    void open_sessions(std::span<const std::pair<core::LoginEvent, core::Permit>> logins,
                       std::span<const store::GrantOutcome> outcomes);
    // A session_end event (a server's end line, a push's logout): ends the session (or, with
    // no session id, every session on e.ip's network) and adds the permit for ttl after it.
    void end_session(const core::LoginEvent& e, core::Time now, std::vector<core::Permit>& permits,
                     std::vector<std::string>& servers);
    // Ends the sessions behind revoked permits (and of `user`, for revoke --user).
    std::size_t end_revoked_sessions(const std::vector<core::Permit>& gone, const std::optional<std::string>& user);
    // Another host revoked these networks (the shared store's removals): the sessions whose
    // login is before now end, and a network that had any is removed once more, in case one of
    // our refreshes crossed the revoke (docs/limits.md, "Revokes are final").
    void end_removed_sessions(const std::vector<core::Permit>& removed);
    // The store read more removals than it could keep (store::PermitStore::take_removed_overflow):
    // every session whose network the store no longer holds is ended as if revoked elsewhere.
    void end_sessions_without_permit();
    // A reload's or a restore's max_lifetime: caps tightened (SessionTable::tighten_caps).
    void tighten_session_caps();
    void refresh_sessions();
    void schedule_session_refresh();
    void save_sessions_soon();
    void save_sessions_now();
    nlohmann::json sessions_status_json() const;

    // `servers[i]` names the pattern set behind permits[i] (for the audit line); may be empty.
    // `by_uid`: the control-socket peer behind a direct grant (for the audit line), or -1.
    core::Result<std::vector<store::GrantOutcome>> grant(std::vector<core::Permit> permits,
                                                         std::span<const core::Checkpoint> cps,
                                                         const std::vector<std::string>& servers = {},
                                                         long by_uid = -1);

    RunOptions opts_;
    config::Config cfg_;
    RunAs run_as_;
    core::SystemClock clock_;
    util::EventLoop loop_;
    std::unique_ptr<store::PermitStore> store_;
    std::shared_ptr<const matching::Matcher> matcher_;
    std::vector<std::unique_ptr<sources::Source>> sources_;
    std::vector<config::SourceConfig> source_cfgs_;  // sources_[i] was built from source_cfgs_[i]
    std::vector<std::string> source_file_stamps_;  // source_files_stamp(source_cfgs_[i]) when it was opened
    std::vector<sources::Source*> unstarted_;
    // The MTA frontends that listen, in FrontendType order (status, stats); `fe->` reaches the
    // frontend itself.
    struct RunningFrontend {
        config::FrontendType type;
        std::unique_ptr<frontends::Frontend> fe;
        frontends::Frontend* operator->() const { return fe.get(); }
    };
    std::vector<RunningFrontend> frontends_;
    std::shared_ptr<const frontends::StaticAnswers> socketmap_static_;  // null: no static entries
    ControlSession::Answer control_answer_;
    ControlSessionCounters control_counters_;
    util::RateLimitedLog control_log_;
    std::unique_ptr<util::ConnServer> control_;  // after what its sessions use: destroyed first
    PermitPolicy grant_policy_;  // every grant path asks it (permit_policy.hpp); set by apply_settings
    RefusalCounters refused_;
    gid_t control_gid_ = static_cast<gid_t>(-1);
    util::EventLoop::TimerId expiry_timer_ = 0;
    // [[export]] files: written off the loop after each change, retried until they succeed,
    // first written before anything is served, emptied of permits at a graceful stop.
    // The loop copies the permits in pieces (a table cursor), the worker sorts and writes them.
    exports::ExportScheduler exports_{loop_, clock_, [this](core::Time now) { return export_copy(now); }};
    util::UniqueFd signal_fd_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    mutable std::uint64_t outage_answers_ = 0;  // lookups answered "no permit" because the store was down
    std::uint64_t grants_ = 0, extends_ = 0, expired_ = 0, revoked_ = 0;
    // Permits created or extended, by (source, server) (DaemonStats::grants_by_server).
    std::map<std::pair<std::string, std::string>, std::uint64_t> grants_by_server_;
    std::map<std::string, double> lag_by_source_;  // DaemonStats' SourceStats::lag_seconds
    std::unique_ptr<MetricsServer> metrics_;
    std::unique_ptr<SdWatchdog> watchdog_;
    std::string last_status_;  // the STATUS= text last sent
    std::unique_ptr<LimitsState> limits_;  // [limits]; set by apply_settings (limits.cpp)
    SessionTable sessions_;
    SessionFileWriter session_writer_;
    util::EventLoop::TimerId session_timer_ = 0, session_save_timer_ = 0;
    std::uint64_t sessions_opened_ = 0, sessions_ended_ = 0, sessions_capped_ = 0;
};

}  // namespace rp::daemon
