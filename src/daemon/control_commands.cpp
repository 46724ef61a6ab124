// The control socket: a util::ConnServer (non-blocking, never waits for a client; the same
// accepting, idle and output-cap code as the frontends) on a unix stream socket speaking one JSON
// object per line (control_protocol.hpp) through ControlSession (control_session.hpp), with
// SO_PEERCRED authorization in its check hook (root, the daemon's user, members of
// control_group), and the command table: each request is parsed and type-checked by the control
// codec, then answered by the handler of its row, if the peer holds the row's privilege.
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
#include "daemon/daemon_stats.hpp"
#include "daemon/permit_listing.hpp"
#include "exports/export_status_json.hpp"
#include "util/endpoint.hpp"
#include "util/fs_safe.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

ControlReply reply(const nlohmann::json& j) { return {encode_control_reply(j), nullptr}; }

// The command table: one row per ControlCmd (control_codec.cpp has the same rows with their
// fields), the privilege it needs and its handler.
struct CommandRow {
    ControlCmd cmd;
    ControlPrivilege needs;
    ControlReply (Daemon::*handler)(const ControlRequest&, const ControlPeer&);
};

}  // namespace

struct Daemon::ControlTable {
    static constexpr CommandRow k_rows[] = {
        {ControlCmd::check, ControlPrivilege::read, &Daemon::control_check},
        {ControlCmd::list, ControlPrivilege::read, &Daemon::control_list},
        {ControlCmd::allow, ControlPrivilege::write, &Daemon::control_allow},
        {ControlCmd::revoke, ControlPrivilege::write, &Daemon::control_revoke},
        {ControlCmd::status, ControlPrivilege::read, &Daemon::control_status},
        {ControlCmd::import_permits, ControlPrivilege::write, &Daemon::control_import},
    };
};

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
    auto bound = util::bind_listener(ep, {128, 0660});
    if (!bound) return core::make_error("control socket: " + bound.error().message);
    if (control_gid_ != static_cast<gid_t>(-1))
        if (auto own = util::chown_socket(cfg_.control_socket, util::k_no_uid, control_gid_); !own)
            log(Level::warning, "cannot give {} to group {} ({}); only root and the daemon's user can use it "
                "(run the daemon with that group as a supplementary group)", cfg_.control_socket, cfg_.control_group,
                own.error().message);
    control_answer_ = [this](std::string_view line, const ControlPeer& p) { return answer_control(line, p); };
    control_ = std::make_unique<util::ConnServer>(
        loop_, "control", control_server_limits(), util::PeerFilter::any(),
        [this](const util::Peer& peer) {
            auto p = ControlSession::peer_of(peer);
            p.privilege = ControlPrivilege::write;  // every peer the check hook lets in
            return std::make_unique<ControlSession>(p, control_answer_, ControlSessionLimits{}, control_counters_);
        },
        [this](int fd, const util::Peer& peer) { return admit_control_peer(fd, peer); });
    control_->adopt(std::move(*bound));
    return core::ok();
}

bool Daemon::admit_control_peer(int fd, const util::Peer& peer) {
    const auto p = ControlSession::peer_of(peer);
    if (authorized(p.uid, p.gid)) return true;
    control_log_.log(Level::warning, "control: refused uid {} (not root, not in control_group)", static_cast<long>(p.uid));
    const std::string msg = control_error_reply("permission denied");
    [[maybe_unused]] const auto n = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return false;
}

ControlReply Daemon::answer_control(std::string_view line, const ControlPeer& peer) {
    auto req = parse_control_request(line);
    if (!req) return {control_error_reply(req.error().message), nullptr};
    try {
        for (const auto& row : ControlTable::k_rows) {
            if (row.cmd != req->cmd) continue;
            if (static_cast<unsigned>(peer.privilege) < static_cast<unsigned>(row.needs))
                return {control_error_reply("permission denied"), nullptr};
            return (this->*row.handler)(*req, peer);
        }
        return {control_error_reply("command not served"), nullptr};
    } catch (const std::exception& e) {  // a broken invariant in a handler must not end the loop
        log(Level::error, "control: {}", e.what());
        return {control_error_reply("internal error"), nullptr};
    }
}

ControlReply Daemon::control_check(const ControlRequest& req, const ControlPeer&) {
    auto v = check(*req.ip);
    nlohmann::json r = {{"ok", true}, {"permitted", v.permitted()}};
    if (v.kind == frontends::Verdict::Kind::static_allow) r.update({{"kind", "allow"}, {"network", v.user}});
    if (v.kind == frontends::Verdict::Kind::permit)
        r.update({{"kind", "permit"}, {"user", v.user}, {"expires", core::format_time(*v.expires)}});
    return reply(r);
}

// Streamed: the table is walked as the client reads (permit_listing.hpp), never copied.
ControlReply Daemon::control_list(const ControlRequest& req, const ControlPeer&) {
    if (req.static_list) return reply(static_allow_json());
    PermitFilter filter{req.user, req.network, req.source};
    return {"", std::make_unique<PermitListStream>(store_->table(), clock_, std::move(filter),
        [this](const core::Permit& p, nlohmann::json& j) {
            if (auto b = budget_json(p); !b.empty()) j["budget"] = std::move(b);  // [limits] budgets
            j["session"] = session_state_name(sessions_.state(p.network, clock_.now()));  // open, closed or none
        })};
}

ControlReply Daemon::control_allow(const ControlRequest& req, const ControlPeer& peer) {
    const auto now = clock_.now();
    const core::LoginEvent e{*req.ip, req.user.value_or(""), "control", "control", now, core::TimeOrigin::push, false};
    auto d = grant_policy_.decide(e, req.ttl, now);
    if (!d.granted()) {
        count_refusal(e, d);
        return reply({{"ok", false}, {"error", "refused: " + d.reason + "; no permit granted"},
                {"refused", std::string(refusal_name(d.refusal))}});
    }
    auto res = grant({std::move(*d.permit)}, {}, {}, static_cast<long>(peer.uid));
    if (!res) return reply({{"ok", false}, {"error", res.error().message}});
    if (res->front().change == store::GrantOutcome::Change::refused && limits_ && !limits_->last_cap_refusal.empty())
        return reply({{"ok", false}, {"error", "refused: " + limits_->last_cap_refusal + "; no permit granted"},
                {"refused", "limit"}});
    if (res->front().change == store::GrantOutcome::Change::refused)
        return reply({{"ok", false}, {"error", "max_permits reached: no new permits until some expire"}});
    return reply({{"ok", true}, {"permit", permit_json(res->front().permit)},
            {"changed", res->front().change != store::GrantOutcome::Change::unchanged}});
}

ControlReply Daemon::control_revoke(const ControlRequest& req, const ControlPeer& peer) {
    auto gone = req.user ? store_->revoke_user(*req.user) : store_->revoke(*req.ip);
    if (!gone) return reply({{"ok", false}, {"error", gone.error().message}});
    for (const auto& p : *gone) {
        ++revoked_;
        log(Level::info, "revoke ip={} user={} by=uid:{}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user),
            static_cast<long>(peer.uid));
    }
    const auto ended = end_revoked_sessions(*gone, req.user);  // and the sessions behind them
    reschedule_expiry();
    return reply({{"ok", true}, {"removed", gone->size()}, {"sessions_ended", ended}});
}

// The reply is rendered from the same DaemonStats as /metrics and /health (daemon_stats.hpp).
ControlReply Daemon::control_status(const ControlRequest&, const ControlPeer&) {
    auto j = status_json(collect_stats());
    j["limits"] = limits_status_json();
    j["sessions"] = sessions_status_json();
    return reply(j);
}

}  // namespace rp::daemon
