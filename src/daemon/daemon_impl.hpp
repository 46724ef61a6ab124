// The Daemon object behind run_daemon(): private to src/daemon (not a public contract).
//
// One object, split by role over several files:
//   daemon.cpp          run() as its start-up steps, reload, signals, shutdown
//   grant_core.cpp      LoginSink + PermitOracle: the grant policy, expiry timer, export timer, stats
//   wiring.cpp          config -> objects: matcher, sources, frontends, exporters
//   control_legacy.cpp  the control socket server and its commands (to be replaced)
// Thread-safety: single-threaded; everything runs on the loop thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/time.hpp"
#include "daemon/daemon.hpp"
#include "daemon/privileges.hpp"
#include "exports/exporter.hpp"
#include "frontends/frontend.hpp"
#include "frontends/permit_oracle.hpp"
#include "matching/matcher.hpp"
#include "sources/source.hpp"
#include "store/permit_store.hpp"
#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace rp::daemon {

struct ControlConnection {
    util::UniqueFd fd;
    std::string in, out;
    bool authorized = false;
    uid_t uid = 0;
};

class Daemon final : public sources::LoginSink, public frontends::PermitOracle {
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

private:
    // Start-up steps, in the order run() calls them (daemon.cpp).
    core::Status find_user();
    core::Status make_state_dir();
    core::Status open_control();
    core::Status bind_frontends() { return start_from(cfg_, false); }
    core::Status bind_sources() { return build_matcher_and_sources(cfg_); }
    core::Status drop_privileges() { return daemon::drop_privileges(run_as_); }
    core::Status open_store();
    core::Status open_exports() { return open_exporters(cfg_); }
    core::Status purge_expired();
    core::Status start_sources() { return start_new_sources(); }
    core::Status watch_signals();
    void serve();
    void shut_down();
    void block_signals();
    void reload();

    // wiring.cpp
    // Applies the settings (log level, mynetworks) and (re)binds frontends whose settings changed.
    core::Status start_from(const config::Config& cfg, bool reload);
    // Builds the matcher and opens the configured sources (network listeners are bound here,
    // so before privileges are dropped); start_new_sources() then starts the new ones, which
    // needs the store (checkpoints).
    core::Status build_matcher_and_sources(const config::Config& cfg);
    core::Status start_new_sources();
    core::Result<std::unique_ptr<sources::Source>> open_source(const config::SourceConfig& sc, sources::LineParser parser);
    sources::LineParser parser_for(const config::SourceConfig& sc) const;
    sources::LineParser untrusted_parser(const config::SourceConfig& sc) const;
    core::Status open_exporters(const config::Config& cfg);

    // control_legacy.cpp
    core::Status open_control_socket();
    void on_control_accept();
    void on_control_readable(int fd);
    nlohmann::json handle_control(const nlohmann::json& req, const ControlConnection& conn);
    nlohmann::json store_status_json() const;
    bool authorized(uid_t uid, gid_t gid) const;

    // grant_core.cpp
    void reschedule_expiry();
    void run_expiry();
    // Rewrites every [[export]] within 100 ms of a change (grants, revokes, expiry), batching
    // what happens meanwhile; a failed write is retried with the next change or expiry check.
    void schedule_exports();
    // One line per source and frontend with its counters: hourly and at shutdown.
    void log_stats();
    void schedule_stats();
    // `servers[i]` names the pattern set behind permits[i] (for the audit line); may be empty.
    // `by_uid`: the control-socket peer behind a direct grant (for the audit line), or -1.
    core::Result<std::vector<store::GrantOutcome>> grant(std::vector<core::Permit> permits,
                                                         std::span<const core::Checkpoint> cps,
                                                         const std::vector<std::string>& servers = {},
                                                         long by_uid = -1);
    core::Cidr network_for(const core::Address& a) const {
        return a.is_v4() ? core::Cidr::host(a) : core::Cidr(a, cfg_.ipv6_prefix);
    }

    RunOptions opts_;
    config::Config cfg_;
    RunAs run_as_;
    core::SystemClock clock_;
    util::EventLoop loop_;
    std::unique_ptr<store::PermitStore> store_;
    std::shared_ptr<const matching::Matcher> matcher_;
    std::vector<std::unique_ptr<sources::Source>> sources_;
    std::vector<config::SourceConfig> source_cfgs_;  // sources_[i] was built from source_cfgs_[i]
    std::vector<sources::Source*> unstarted_;
    // The MTA frontends that listen, in the order of the frontend kinds (status, stats).
    std::vector<std::unique_ptr<frontends::Frontend>> frontends_;
    util::UniqueFd control_fd_;
    std::map<int, ControlConnection> control_conns_;
    gid_t control_gid_ = static_cast<gid_t>(-1);
    util::EventLoop::TimerId expiry_timer_ = 0;
    std::vector<std::unique_ptr<exports::Exporter>> exporters_;
    util::EventLoop::TimerId export_timer_ = 0;
    util::UniqueFd signal_fd_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    mutable std::uint64_t outage_answers_ = 0;  // lookups answered "no permit" because the store was down
    std::uint64_t grants_ = 0, extends_ = 0, ignored_ = 0, stale_ = 0, expired_ = 0, revoked_ = 0;
    std::map<std::string, std::uint64_t> grants_by_source_;  // created or extended, per source name
};

}  // namespace rp::daemon
