// The control socket server and its commands, moved here unchanged from daemon.cpp: a unix
// stream socket speaking one JSON object per line (control_protocol.hpp), with SO_PEERCRED
// authorization (root, the daemon's user, members of control_group).
// Security: requests are untrusted input from permitted local users.
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

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
    control_fd_ = std::move(*fd);
    loop_.add(control_fd_.get(), EPOLLIN, [this](std::uint32_t) { on_control_accept(); });
    return core::ok();
}

void Daemon::on_control_accept() {
    while (true) {
        int c = accept4(control_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) return;
        ControlConnection conn;
        conn.fd.reset(c);
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            conn.uid = cred.uid;
            conn.authorized = authorized(cred.uid, cred.gid);
        }
        if (!conn.authorized) {
            log(Level::warning, "control: refused uid {} (not root, not in control_group)", cred.uid);
            const std::string msg = R"({"ok":false,"error":"permission denied"})" "\n";
            [[maybe_unused]] auto n = ::send(c, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            continue;  // closes
        }
        if (control_conns_.size() >= 64) continue;  // admin tool traffic only; refuse floods
        control_conns_.emplace(c, std::move(conn));
        loop_.add(c, EPOLLIN, [this, c](std::uint32_t) { on_control_readable(c); });
    }
}

void Daemon::on_control_readable(int fd) {
    auto it = control_conns_.find(fd);
    if (it == control_conns_.end()) return;
    auto& conn = it->second;
    char buf[8192];
    bool closed = false;
    while (true) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            conn.in.append(buf, static_cast<std::size_t>(n));
            if (conn.in.size() > k_control_max_line) { closed = true; break; }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) closed = true;
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    std::size_t nl;
    while ((nl = conn.in.find('\n')) != std::string::npos) {
        auto req = nlohmann::json::parse(conn.in.substr(0, nl), nullptr, false);
        conn.in.erase(0, nl + 1);
        nlohmann::json reply;
        if (req.is_discarded() || !req.is_object()) reply = {{"ok", false}, {"error", "malformed request"}};
        else reply = handle_control(req, conn);
        conn.out += reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    // Replies are small; a blocking-ish best effort write is enough for an admin tool.
    while (!conn.out.empty()) {
        const auto n = ::send(fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) {
                pollfd p{fd, POLLOUT, 0};
                if (poll(&p, 1, 1000) > 0) continue;
            }
            closed = true;
            break;
        }
        conn.out.erase(0, static_cast<std::size_t>(n));
    }
    if (closed) {
        loop_.remove(fd);
        control_conns_.erase(it);
    }
}

nlohmann::json Daemon::handle_control(const nlohmann::json& req, const ControlConnection& conn) {
    const std::string cmd = req.value("cmd", "");
    auto address = [&]() -> core::Result<core::Address> {
        const std::string text = req.contains("ip") && req["ip"].is_string() ? req["ip"].get<std::string>() : "";
        auto a = core::Address::parse(text);
        if (!a) return core::make_error("not an IP address: '" + text + "'");
        return *a;
    };
    const auto now = clock_.now();
    if (cmd == "check") {
        auto a = address();
        if (!a) return {{"ok", false}, {"error", a.error().message}};
        auto v = check(*a);
        nlohmann::json r = {{"ok", true}, {"permitted", v.permitted()}};
        if (v.kind == frontends::Verdict::Kind::static_allow) r.update({{"kind", "allow"}, {"network", v.user}});
        if (v.kind == frontends::Verdict::Kind::permit)
            r.update({{"kind", "permit"}, {"user", v.user}, {"expires", core::format_time(*v.expires)}});
        return r;
    }
    if (cmd == "list") {
        auto arr = nlohmann::json::array();
        for (const auto& p : store_->list(now)) arr.push_back(permit_json(p));
        return {{"ok", true}, {"permits", arr}};
    }
    if (cmd == "allow") {
        auto a = address();
        if (!a) return {{"ok", false}, {"error", a.error().message}};
        core::Duration ttl = cfg_.ttl;
        if (req.contains("ttl_ms")) {
            if (!req["ttl_ms"].is_number_integer() || req["ttl_ms"].get<std::int64_t>() <= 0)
                return {{"ok", false}, {"error", "bad ttl"}};
            ttl = std::chrono::milliseconds(req["ttl_ms"].get<std::int64_t>());
        }
        const std::string user = req.contains("user") && req["user"].is_string() ? req["user"].get<std::string>() : "";
        std::vector<core::Permit> permits = {{network_for(*a), user, "control", now, now + ttl}};
        auto res = grant(std::move(permits), {}, {}, conn.uid);
        if (!res) return {{"ok", false}, {"error", res.error().message}};
        return {{"ok", true}, {"permit", permit_json(res->front().permit)},
                {"changed", res->front().change != store::GrantOutcome::Change::unchanged}};
    }
    if (cmd == "revoke") {
        core::Result<std::vector<core::Permit>> gone = std::vector<core::Permit>{};
        if (req.contains("user") && req["user"].is_string()) {
            gone = store_->revoke_user(req["user"].get<std::string>());
        } else {
            auto a = address();
            if (!a) return {{"ok", false}, {"error", a.error().message}};
            gone = store_->revoke(*a);
        }
        if (!gone) return {{"ok", false}, {"error", gone.error().message}};
        for (const auto& p : *gone) {
            ++revoked_;
            log(Level::info, "revoke ip={} user={} by=uid:{}", p.network.to_string(), util::esc(p.user.empty() ? "-" : p.user), conn.uid);
        }
        reschedule_expiry();
        return {{"ok", true}, {"removed", gone->size()}};
    }
    if (cmd == "status") {
        auto srcs = nlohmann::json::array();
        for (const auto& s : sources_) {
            auto c = s->counters();
            srcs.push_back({{"name", s->name()}, {"lines", c.lines}, {"matches", c.matches}, {"malformed", c.malformed},
                            {"untrusted", c.untrusted}, {"dropped", c.dropped},
                            {"grants", grants_by_source_[s->name()]}});
        }
        auto fes = nlohmann::json::array();
        for (const auto& fe : frontends_) {
            const auto c = fe->counters();
            fes.push_back({{"name", fe->name()}, {"connections", c.connections}, {"requests", c.requests},
                           {"permitted", c.permitted}, {"malformed", c.malformed}, {"active", c.active},
                           {"refused", c.refused}});
        }
        return {{"ok", true},
                {"version", RELAYPERMIT_VERSION},
                {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count()},
                {"store", store_->describe()},
                {"store_status", store_status_json()},
                {"permits", store_->list(now).size()},
                {"grants", grants_}, {"extends", extends_}, {"ignored", ignored_}, {"stale", stale_},
                {"expired", expired_}, {"revoked", revoked_},
                {"sources", srcs}, {"frontends", fes},
                {"exports", exports::export_status_json(exports_.status())}};
    }
    return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

}  // namespace rp::daemon
