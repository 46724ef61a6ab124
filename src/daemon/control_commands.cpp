// The control socket: a ControlServer (non-blocking, never waits for a client) on a unix stream
// socket speaking one JSON object per line (control_protocol.hpp), with SO_PEERCRED authorization
// (root, the daemon's user, members of control_group), and the command table: each request is
// parsed and type-checked by the control codec, then answered by its handler.
// Security: requests are untrusted input from permitted local users; `allow` goes through the
// same PermitPolicy as every other grant.
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "daemon/control_codec.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/daemon_impl.hpp"
#include "exports/export_status_json.hpp"
#include "util/endpoint.hpp"
#include "util/fs_safe.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

nlohmann::json store_status_json(const store::StoreStatus& s, std::uint64_t outage_answers) {
    nlohmann::json j = {{"shared", s.shared}, {"available", s.available}};
    if (s.shared)
        j.update({{"queued", s.queued}, {"pushed", s.pushed}, {"remote_changes", s.remote_changes},
                  {"connects", s.connects}, {"outages", s.outages}, {"outage_answers", outage_answers},
                  {"last_error", s.last_error}});
    else  // the embedded store's writer thread
        j.update({{"queued", s.queued}, {"written", s.written}, {"write_failures", s.write_failures},
                  {"queue_full", s.queue_full}, {"last_error", s.last_error}});
    j["refused"] = s.refused;  // max_permits
    return j;
}

nlohmann::json permit_json(const core::Permit& p) {
    return {{"ip", p.network.to_string()}, {"user", p.user}, {"source", p.source},
            {"granted", core::format_time(p.granted)}, {"expires", core::format_time(p.expires)}};
}

}  // namespace

nlohmann::json Daemon::store_status_json() const {
    return daemon::store_status_json(store_->status(), outage_answers_);
}

bool Daemon::authorized(uid_t uid, gid_t gid) const {
    if (uid == 0 || uid == geteuid()) return true;
    if (control_gid_ == static_cast<gid_t>(-1)) return false;
    if (gid == control_gid_) return true;
    if (const passwd* pw = getpwuid(uid)) {
        int n = 64;
        std::vector<gid_t> groups(static_cast<std::size_t>(n));
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
            groups.resize(static_cast<std::size_t>(n));
            getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n);
        }
        groups.resize(static_cast<std::size_t>(std::max(n, 0)));
        return std::find(groups.begin(), groups.end(), control_gid_) != groups.end();
    }
    return false;
}

core::Status Daemon::open_control_socket() {
    const auto dir = std::filesystem::path(cfg_.control_socket).parent_path().string();
    control_gid_ = static_cast<gid_t>(-1);
    if (!cfg_.control_group.empty()) {
        const group* g = getgrnam(cfg_.control_group.c_str());
        if (!g) return core::make_error("control_group '" + cfg_.control_group + "' does not exist");
        control_gid_ = g->gr_gid;
    }
    // The directory must be searchable by the control group: 0755 unless we create it for a group.
    if (auto st = make_dirs(dir, control_gid_ == static_cast<gid_t>(-1) ? 0755 : 0750, static_cast<uid_t>(-1), control_gid_); !st)
        return st;
    util::Endpoint ep;
    ep.kind = util::Endpoint::Kind::unix_stream;
    ep.path = cfg_.control_socket;
    auto fd = util::listen_endpoint(ep, {128, 0660});
    if (!fd) return core::make_error("control socket: " + fd.error().message);
    if (control_gid_ != static_cast<gid_t>(-1))
        if (auto own = util::chown_socket(cfg_.control_socket, util::k_no_uid, control_gid_); !own)
            log(Level::warning, "cannot give {} to group {} ({}); only root and the daemon's user can use it "
                "(run the daemon with that group as a supplementary group)", cfg_.control_socket, cfg_.control_group,
                own.error().message);
    control_ = std::make_unique<ControlServer>(
        loop_, std::move(*fd), [this](const ControlPeer& p) { return authorized(p.uid, p.gid); },
        [this](std::string_view line, const ControlPeer& p) { return answer_control(line, p); });
    return core::ok();
}

std::string Daemon::answer_control(std::string_view line, const ControlPeer& peer) {
    using Handler = nlohmann::json (Daemon::*)(const ControlRequest&, const ControlPeer&);
    static constexpr std::pair<ControlCmd, Handler> k_handlers[] = {
        {ControlCmd::check, &Daemon::control_check},   {ControlCmd::list, &Daemon::control_list},
        {ControlCmd::allow, &Daemon::control_allow},   {ControlCmd::revoke, &Daemon::control_revoke},
        {ControlCmd::status, &Daemon::control_status},
    };
    auto req = parse_control_request(line);
    if (!req) return control_error_reply(req.error().message);
    try {
        for (const auto& [cmd, handler] : k_handlers)
            if (cmd == req->cmd) return encode_control_reply((this->*handler)(*req, peer));
        return control_error_reply("command not served");
    } catch (const std::exception& e) {  // a broken invariant in a handler must not end the loop
        log(Level::error, "control: {}", e.what());
        return control_error_reply("internal error");
    }
}

nlohmann::json Daemon::control_check(const ControlRequest& req, const ControlPeer&) {
    auto v = check(*req.ip);
    nlohmann::json r = {{"ok", true}, {"permitted", v.permitted()}};
    if (v.kind == frontends::Verdict::Kind::static_allow) r.update({{"kind", "allow"}, {"network", v.user}});
    if (v.kind == frontends::Verdict::Kind::permit)
        r.update({{"kind", "permit"}, {"user", v.user}, {"expires", core::format_time(*v.expires)}});
    return r;
}

nlohmann::json Daemon::control_list(const ControlRequest&, const ControlPeer&) {
    auto arr = nlohmann::json::array();
    const auto now = clock_.now();
    for (const auto& p : store_->list(now)) {
        auto j = permit_json(p);
        j["session"] = session_state_name(sessions_.state(p.network, now));  // open, closed or none
        arr.push_back(std::move(j));
    }
    return {{"ok", true}, {"permits", arr}};
}

nlohmann::json Daemon::control_allow(const ControlRequest& req, const ControlPeer& peer) {
    const auto now = clock_.now();
    const core::LoginEvent e{*req.ip, req.user.value_or(""), "control", "control", now, core::TimeOrigin::push, false};
    auto d = grant_policy_.decide(e, req.ttl, now);
    if (!d.granted()) {
        count_refusal(e, d);
        return {{"ok", false}, {"error", "refused: " + d.reason + "; no permit granted"},
                {"refused", std::string(refusal_name(d.refusal))}};
    }
    auto res = grant({std::move(*d.permit)}, {}, {}, static_cast<long>(peer.uid));
    if (!res) return {{"ok", false}, {"error", res.error().message}};
    if (res->front().change == store::GrantOutcome::Change::refused)
        return {{"ok", false}, {"error", "max_permits reached: no new permits until some expire"}};
    return {{"ok", true}, {"permit", permit_json(res->front().permit)},
            {"changed", res->front().change != store::GrantOutcome::Change::unchanged}};
}

nlohmann::json Daemon::control_revoke(const ControlRequest& req, const ControlPeer& peer) {
    auto gone = req.user ? store_->revoke_user(*req.user) : store_->revoke(*req.ip);
    if (!gone) return {{"ok", false}, {"error", gone.error().message}};
    for (const auto& p : *gone) {
        ++revoked_;
        log(Level::info, "revoke ip={} user={} by=uid:{}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user),
            static_cast<long>(peer.uid));
    }
    const auto ended = end_revoked_sessions(*gone, req.user);  // and the sessions behind them
    reschedule_expiry();
    return {{"ok", true}, {"removed", gone->size()}, {"sessions_ended", ended}};
}

nlohmann::json Daemon::control_status(const ControlRequest&, const ControlPeer&) {
    auto srcs = nlohmann::json::array();
    for (const auto& s : sources_) {
        auto c = s->counters();
        srcs.push_back({{"name", s->name()}, {"lines", c.lines}, {"matches", c.matches}, {"malformed", c.malformed},
                        {"untrusted", c.untrusted}, {"dropped", c.dropped}, {"filtered", c.filtered}, {"grants", grants_by_source_[s->name()]}});
    }
    auto fes = nlohmann::json::array();
    for (const auto& fe : frontends_) {
        const auto c = fe->counters();
        fes.push_back({{"name", fe->name()}, {"connections", c.connections}, {"requests", c.requests},
                       {"permitted", c.permitted}, {"malformed", c.malformed}, {"active", c.active},
                       {"refused", c.refused}});
    }
    auto refused = nlohmann::json::object();
    for (auto r : {Refusal::ignored, Refusal::stale, Refusal::untimed_backlog, Refusal::ttl_out_of_bounds})
        refused[std::string(refusal_name(r))] = refused_[r];
    return {{"ok", true},
            {"version", RELAYPERMIT_VERSION},
            {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count()},
            {"store", store_->describe()},
            {"sessions", sessions_status_json()},
            {"store_status", store_status_json()},
            {"permits", store_->size()},
            {"grants", grants_}, {"extends", extends_}, {"ignored", refused_[Refusal::ignored]},
            {"stale", refused_[Refusal::stale]}, {"untimed", refused_[Refusal::untimed_backlog]},
            {"refused", refused},
            {"expired", expired_}, {"revoked", revoked_},
            {"sources", srcs}, {"frontends", fes},
            {"exports", exports::export_status_json(exports_.status())}};
}

}  // namespace rp::daemon
