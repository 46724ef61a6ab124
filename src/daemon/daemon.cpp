#include "daemon/daemon.hpp"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/time.hpp"
#include "daemon/control_protocol.hpp"
#include "exports/exporter.hpp"
#include "frontends/permit_oracle.hpp"
#include "frontends/opensmtpd_frontend.hpp"
#include "frontends/policy_frontend.hpp"
#include "frontends/readsocket_frontend.hpp"
#include "frontends/socketmap_frontend.hpp"
#include "matching/matcher.hpp"
#include "sources/auth_policy_source.hpp"
#include "sources/fifo_source.hpp"
#include "sources/file_tail_source.hpp"
#include "sources/journald_source.hpp"
#include "sources/source.hpp"
#include "sources/syslog_source.hpp"
#include "store/permit_store.hpp"
#include "util/endpoint.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

util::Level parse_level(const std::string& s) {
    if (s == "debug") return Level::debug;
    if (s == "notice") return Level::notice;
    if (s == "warning") return Level::warning;
    if (s == "error") return Level::error;
    return Level::info;
}

// Tells systemd (Type=notify) about state changes; a no-op elsewhere. The protocol is one
// datagram to $NOTIFY_SOCKET, so libsystemd is not needed for it.
void sd_notify(const char* state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(path);
    if (len >= sizeof sun.sun_path) return;
    std::memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';
    util::UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sun),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
}

core::Status make_dirs(const std::string& dir, mode_t mode, uid_t uid, gid_t gid) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return core::make_error("cannot create directory " + dir + ": " + ec.message());
        chmod(dir.c_str(), mode);
        if (uid != static_cast<uid_t>(-1) && chown(dir.c_str(), uid, gid) != 0)
            return core::make_error("cannot chown " + dir + ": " + std::strerror(errno));
    } else if (uid != static_cast<uid_t>(-1)) {
        struct stat st {};
        if (stat(dir.c_str(), &st) == 0 && st.st_uid != uid && chown(dir.c_str(), uid, gid) != 0)
            return core::make_error("cannot chown " + dir + ": " + std::strerror(errno));
    }
    return core::ok();
}

// The audit line's fields: "ip=... user=... [server=...] source=... expires=...".
// Postfix's mynetworks as CIDRs, read with `postconf -h mynetworks` (ignore_mynetworks).
// Entries that are not networks (type:table lookups, hostnames) are skipped with a warning.
std::vector<core::Cidr> postfix_mynetworks() {
    std::vector<core::Cidr> out;
    FILE* p = popen("postconf -h mynetworks 2>/dev/null", "r");
    if (!p) {
        log(Level::warning, "ignore_mynetworks: cannot run postconf: {}", std::strerror(errno));
        return out;
    }
    std::string text;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (pclose(p) != 0) {
        log(Level::warning, "ignore_mynetworks: postconf -h mynetworks failed; nothing added to ignore");
        return out;
    }
    std::string item;
    auto flush = [&] {
        if (item.empty()) return;
        std::string_view v = item;
        // Postfix writes IPv6 networks as [2001:db8::]/32.
        std::string plain;
        if (v.starts_with("[")) {
            const auto close = v.find(']');
            if (close != std::string_view::npos) plain = std::string(v.substr(1, close - 1)) + std::string(v.substr(close + 1));
        } else {
            plain = item;
        }
        if (auto c = core::Cidr::parse(plain)) out.push_back(*c);
        else if (auto c2 = core::Cidr::parse(plain.substr(0, plain.find('/'))); c2 && plain.find('/') != std::string::npos) {
            // host bits set ("10.1.2.3/8"): Postfix accepts it; use the network
            auto len = std::stoi(plain.substr(plain.find('/') + 1));
            if (len >= 0 && len <= c2->network().bits()) out.emplace_back(c2->network(), len);
        } else log(Level::warning, "ignore_mynetworks: skipping '{}' (not a network)", item);
        item.clear();
    };
    for (char ch : text) {
        if (ch == ' ' || ch == ',' || ch == '\n' || ch == '\t') flush();
        else item += ch;
    }
    flush();
    return out;
}

std::string permit_text(const core::Permit& p, std::string_view server) {
    return fmt::format("ip={} user={}{}{} source={} expires={}", p.network.to_string(), p.user.empty() ? "-" : p.user,
                       server.empty() ? "" : " server=", server, p.source, core::format_time(p.expires));
}

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
    core::Status start_from(const config::Config& cfg, bool reload);
    nlohmann::json store_status_json() const { return daemon::store_status_json(store_->status(), outage_answers_); }
    // Builds the matcher and opens the configured sources (network listeners are bound here,
    // so before privileges are dropped); start_new_sources() then starts the new ones, which
    // needs the store (checkpoints).
    core::Status build_matcher_and_sources(const config::Config& cfg);
    core::Status start_new_sources();
    std::vector<sources::Source*> unstarted_;
    core::Result<std::unique_ptr<sources::Source>> open_source(const config::SourceConfig& sc, sources::LineParser parser);
    sources::LineParser parser_for(const config::SourceConfig& sc) const;
    sources::LineParser untrusted_parser(const config::SourceConfig& sc) const;
    core::Status open_control_socket();
    void on_control_accept();
    void on_control_readable(int fd);
    nlohmann::json handle_control(const nlohmann::json& req, const ControlConnection& conn);
    void reschedule_expiry();
    void run_expiry();
    // One line per source and frontend with its counters: hourly and at shutdown.
    void log_stats();
    void schedule_stats() {
        loop_.call_after(std::chrono::hours(1), [this] {
            log_stats();
            schedule_stats();
        });
    }
    void reload();
    bool authorized(uid_t uid, gid_t gid) const;
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
    core::SystemClock clock_;
    util::EventLoop loop_;
    std::unique_ptr<store::PermitStore> store_;
    std::shared_ptr<const matching::Matcher> matcher_;
    std::vector<std::unique_ptr<sources::Source>> sources_;
    std::vector<config::SourceConfig> source_cfgs_;  // sources_[i] was built from source_cfgs_[i]
    std::unique_ptr<frontends::PolicyFrontend> policy_;
    std::unique_ptr<frontends::SocketmapFrontend> socketmap_;
    std::unique_ptr<frontends::ReadsocketFrontend> readsocket_;
    std::unique_ptr<frontends::OpensmtpdFrontend> opensmtpd_;
    util::UniqueFd control_fd_;
    std::map<int, ControlConnection> control_conns_;
    gid_t control_gid_ = static_cast<gid_t>(-1);
    util::EventLoop::TimerId expiry_timer_ = 0;
    std::vector<std::unique_ptr<exports::Exporter>> exporters_;
    util::EventLoop::TimerId export_timer_ = 0;
    core::Status open_exporters(const config::Config& cfg);
    // Rewrites every [[export]] within 100 ms of a change (grants, revokes, expiry), batching
    // what happens meanwhile; a failed write is retried with the next change or expiry check.
    void schedule_exports() {
        if (exporters_.empty() || export_timer_) return;
        export_timer_ = loop_.call_after(std::chrono::milliseconds(100), [this] {
            export_timer_ = 0;
            const auto now = clock_.now();
            const auto live = store_->list(now);
            for (auto& e : exporters_)
                if (auto st = e->write(live, now); !st) log(Level::error, "export {}: {}", e->describe(), st.error().message);
        });
    }
    util::UniqueFd signal_fd_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    mutable std::uint64_t outage_answers_ = 0;  // lookups answered "no permit" because the store was down
    std::uint64_t grants_ = 0, extends_ = 0, ignored_ = 0, stale_ = 0, expired_ = 0, revoked_ = 0;
    std::map<std::string, std::uint64_t> grants_by_source_;  // created or extended, per source name
};

frontends::Verdict Daemon::check(const core::Address& client) const {
    frontends::Verdict v;
    for (const auto& c : cfg_.allow) {
        if (c.contains(client)) {
            v.kind = frontends::Verdict::Kind::static_allow;
            v.user = c.to_string();
            return v;
        }
    }
    if (!store_->available() && cfg_.store_outage == "dunno") {
        ++outage_answers_;  // a shared store is unreachable: answer as if there were no permit
        return v;
    }
    if (auto p = store_->find(client, clock_.now())) {
        v.kind = frontends::Verdict::Kind::permit;
        v.expires = p->expires;
        v.user = p->user;
    }
    return v;
}

core::Result<std::vector<store::GrantOutcome>> Daemon::grant(std::vector<core::Permit> permits,
                                                             std::span<const core::Checkpoint> cps,
                                                             const std::vector<std::string>& servers, long by_uid) {
    auto res = store_->grant(permits, cps, clock_.now());
    if (!res) return res;
    for (std::size_t i = 0; i < res->size(); ++i) {
        const auto& o = (*res)[i];
        if (o.change == store::GrantOutcome::Change::unchanged) continue;
        if (o.change == store::GrantOutcome::Change::refused) continue;  // max_permits: the store logs and counts
        const bool created = o.change == store::GrantOutcome::Change::created;
        (created ? grants_ : extends_)++;
        ++grants_by_source_[o.permit.source];
        log(Level::info, "{} {}{}", created ? "grant" : "extend",
            permit_text(o.permit, i < servers.size() ? std::string_view(servers[i]) : std::string_view()),
            by_uid >= 0 ? fmt::format(" by=uid:{}", by_uid) : std::string());
    }
    reschedule_expiry();
    return res;
}

core::Status Daemon::deliver(std::span<const core::LoginEvent> events, const core::Checkpoint& checkpoint) {
    const auto now = clock_.now();
    std::vector<core::Permit> permits;
    std::vector<std::string> servers;
    for (const auto& e : events) {
        if (std::any_of(cfg_.ignore.begin(), cfg_.ignore.end(), [&](const auto& c) { return c.contains(e.ip); })) {
            ++ignored_;
            log(Level::debug, "ignored ip={} user={} server={} source={} (ignore list)", e.ip.to_string(), e.user,
                e.server, e.source);
            continue;
        }
        const auto expires = e.time + cfg_.ttl;
        if (expires <= now) {
            ++stale_;  // a login read late whose permit would already have expired
            continue;
        }
        permits.push_back({network_for(e.ip), e.user, e.source, e.time, expires});
        servers.push_back(e.server);
    }
    const std::span<const core::Checkpoint> cps(&checkpoint, checkpoint.key.empty() ? 0 : 1);
    auto res = grant(std::move(permits), cps, servers);
    if (!res) {
        util::log(Level::error, "cannot record logins from {}: {}", checkpoint.key, res.error().message);
        return res.error();
    }
    return core::ok();
}

void Daemon::reschedule_expiry() {
    schedule_exports();
    if (expiry_timer_) loop_.cancel(expiry_timer_);
    expiry_timer_ = 0;
    auto next = store_->next_expiry();
    if (!next) return;
    auto delay = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_.now());
    if (delay < std::chrono::milliseconds(0)) delay = std::chrono::milliseconds(0);
    // Re-check at least once a minute: wall-clock jumps do not move a monotonic timer.
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::minutes(1));
    expiry_timer_ = loop_.call_after(delay, [this] {
        expiry_timer_ = 0;
        run_expiry();
    });
}

void Daemon::run_expiry() {
    auto gone = store_->expire(clock_.now());
    if (!gone) {
        log(Level::error, "expiry: {}", gone.error().message);
    } else {
        for (const auto& p : *gone) {
            ++expired_;
            log(Level::info, "expire ip={} user={}", p.network.to_string(), p.user.empty() ? "-" : p.user);
        }
    }
    reschedule_expiry();
}

void Daemon::log_stats() {
    for (const auto& s : sources_) {
        const auto c = s->counters();
        log(Level::info, "stats source={} lines={} matches={} grants={} untrusted={} malformed={} dropped={}", s->name(),
            c.lines, c.matches, grants_by_source_[s->name()], c.untrusted, c.malformed, c.dropped);
    }
    auto fe = [](const char* name, const frontends::FrontendCounters& c) {
        log(Level::info, "stats frontend={} connections={} requests={} permitted={} malformed={} refused={}", name,
            c.connections, c.requests, c.permitted, c.malformed, c.refused);
    };
    if (policy_) fe("policy", policy_->counters());
    if (socketmap_) fe("socketmap", socketmap_->counters());
    if (readsocket_) fe("readsocket", readsocket_->counters());
    if (opensmtpd_) fe("opensmtpd", opensmtpd_->counters());
    const auto ss = store_->status();
    log(Level::info, "stats store={} permits={} grants={} extends={} expired={} revoked={}{}", store_->describe(),
        store_->size(), grants_, extends_, expired_, revoked_,
        ss.shared ? fmt::format(" available={} queued={} outages={} outage_answers={}", ss.available, ss.queued,
                                ss.outages, outage_answers_)
                  : std::string());
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
    if (auto st = make_dirs(dir, control_gid_ == static_cast<gid_t>(-1) ? 0755 : 0750, static_cast<uid_t>(-1), 0); !st)
        return st;
    if (control_gid_ != static_cast<gid_t>(-1)) {
        struct stat st {};
        if (stat(dir.c_str(), &st) == 0 && st.st_gid != control_gid_ && (st.st_mode & S_IXOTH) == 0)
            (void)chown(dir.c_str(), static_cast<uid_t>(-1), control_gid_);
    }
    util::Endpoint ep;
    ep.kind = util::Endpoint::Kind::unix_stream;
    ep.path = cfg_.control_socket;
    auto fd = util::listen_endpoint(ep, {128, 0660});
    if (!fd) return core::make_error("control socket: " + fd.error().message);
    if (control_gid_ != static_cast<gid_t>(-1) && chown(cfg_.control_socket.c_str(), static_cast<uid_t>(-1), control_gid_) != 0)
        log(Level::warning, "cannot give {} to group {} ({}); only root and the daemon's user can use it "
            "(run the daemon with that group as a supplementary group)", cfg_.control_socket, cfg_.control_group,
            std::strerror(errno));
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
        if (res->front().change == store::GrantOutcome::Change::refused)
            return {{"ok", false}, {"error", "max_permits reached: no new permits until some expire"}};
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
            log(Level::info, "revoke ip={} user={} by=uid:{}", p.network.to_string(), p.user.empty() ? "-" : p.user, conn.uid);
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
        auto add_frontend = [&fes](const char* name, const frontends::FrontendCounters& c) {
            fes.push_back({{"name", name}, {"connections", c.connections}, {"requests", c.requests},
                           {"permitted", c.permitted}, {"malformed", c.malformed}, {"active", c.active},
                           {"refused", c.refused}});
        };
        if (policy_) add_frontend("policy", policy_->counters());
        if (socketmap_) add_frontend("socketmap", socketmap_->counters());
        if (readsocket_) add_frontend("readsocket", readsocket_->counters());
        if (opensmtpd_) add_frontend("opensmtpd", opensmtpd_->counters());
        return {{"ok", true},
                {"version", RELAYPERMIT_VERSION},
                {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count()},
                {"store", store_->describe()},
                {"store_status", store_status_json()},
                {"permits", store_->size()},
                {"grants", grants_}, {"extends", extends_}, {"ignored", ignored_}, {"stale", stale_},
                {"expired", expired_}, {"revoked", revoked_},
                {"sources", srcs}, {"frontends", fes}};
    }
    return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

core::Result<std::unique_ptr<sources::Source>> Daemon::open_source(const config::SourceConfig& sc,
                                                                   sources::LineParser parser) {
    if (sc.type == "file")
        return std::unique_ptr<sources::Source>(
            std::make_unique<sources::FileTailSource>(sc.name, sc.path, std::move(parser), *this, clock_));
    if (sc.type == "dovecot-auth-policy") return sources::open_auth_policy_source(sc, std::move(parser), *this, clock_);
    if (sc.type == "syslog") return sources::open_syslog_source(sc, std::move(parser), *this, clock_);
    if (sc.type == "fifo") return sources::open_fifo_source(sc, std::move(parser), *this, clock_);
    if (sc.type == "journald")
        return sources::open_journald_source(sc, std::move(parser), *this, clock_, untrusted_parser(sc));
    return core::make_error("source type \"" + sc.type + "\" is not available in this version");
}

core::Status Daemon::open_exporters(const config::Config& cfg) {
    std::vector<std::unique_ptr<exports::Exporter>> fresh;
    for (const auto& x : cfg.exports) {
        auto e = exports::open_exporter(x, cfg.relayclient, &loop_);
        if (!e) return core::make_error(fmt::format("{}:{}: export: {}", cfg.file, x.line, e.error().message));
        fresh.push_back(std::move(*e));
    }
    exporters_ = std::move(fresh);
    schedule_exports();
    return core::ok();
}

sources::LineParser Daemon::parser_for(const config::SourceConfig& sc) const {
    // Each source has its own match state (PCRE2 scratch, two-line correlation).
    auto state = std::make_shared<matching::MatchState>(*matcher_);
    auto matcher = matcher_;
    const std::string name = sc.name;
    return [matcher, state, name](std::string_view lines, core::Time now, std::vector<core::LoginEvent>& out) {
        matcher->scan(lines, now, *state, [&](const matching::LoginMatch& hit) {
            out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), name, hit.time});
        });
    };
}

sources::LineParser Daemon::untrusted_parser(const config::SourceConfig& sc) const {
    if (sc.type != "journald") return {};
    // Entries from untrusted senders are parsed with a state of their own, so a forged first
    // line of a two-line server cannot seed the trusted entries' pid cache.
    auto probe_state = std::make_shared<matching::MatchState>(*matcher_);
    auto matcher = matcher_;
    return [matcher, probe_state](std::string_view lines, core::Time now, std::vector<core::LoginEvent>& out) {
        matcher->scan(lines, now, *probe_state, [&](const matching::LoginMatch& hit) {
            out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), {}, hit.time});
        });
    };
}

core::Status Daemon::build_matcher_and_sources(const config::Config& cfg) {
    auto m = matching::Matcher::build(enabled_pattern_sets(cfg), user_pattern_specs(cfg));
    if (!m) return m.error();
    matcher_ = *m;
    unstarted_.clear();
    // A source whose configuration is unchanged keeps running with parsers for the new patterns:
    // its listeners stay bound (also privileged ports after `user =` dropped root) and it does not
    // re-read anything. The others are stopped first, so a changed listener can bind its port again.
    // TLS listeners are always rebuilt so that a reload picks up renewed certificate files.
    std::vector<std::unique_ptr<sources::Source>> kept(cfg.sources.size());
    std::vector<bool> used(sources_.size(), false);
    for (std::size_t i = 0; i < cfg.sources.size(); ++i) {
        if (!cfg.sources[i].tls_cert.empty()) continue;
        for (std::size_t j = 0; j < sources_.size(); ++j) {
            if (used[j] || !source_cfgs_[j].same_as(cfg.sources[i])) continue;
            used[j] = true;
            kept[i] = std::move(sources_[j]);
            kept[i]->set_parser(parser_for(cfg.sources[i]), untrusted_parser(cfg.sources[i]));
            break;
        }
    }
    for (std::size_t j = 0; j < sources_.size(); ++j)
        if (!used[j]) sources_[j]->stop(loop_);
    sources_.clear();
    source_cfgs_.clear();
    for (std::size_t i = 0; i < cfg.sources.size(); ++i) {
        const auto& sc = cfg.sources[i];
        if (!kept[i]) {
            auto src = open_source(sc, parser_for(sc));
            if (!src) {
                for (auto& k : kept)  // kept sources not yet back in sources_ are running: stop them
                    if (k) k->stop(loop_);
                return core::make_error(fmt::format("{}:{}: source {}: {}", cfg.file, sc.line, sc.name, src.error().message));
            }
            kept[i] = std::move(*src);
            unstarted_.push_back(kept[i].get());  // owned by sources_ from the next line on
        }
        sources_.push_back(std::move(kept[i]));
        source_cfgs_.push_back(sc);
    }
    return core::ok();
}

core::Status Daemon::start_new_sources() {
    auto todo = std::exchange(unstarted_, {});
    for (auto* src : todo)
        if (auto st = src->start(loop_); !st) return core::make_error("source " + src->name() + ": " + st.error().message);
    return core::ok();
}

core::Status Daemon::start_from(const config::Config& cfg, bool reload) {
    util::set_log_level(parse_level(cfg.log_level));
    const bool policy_changed = !reload || cfg.policy.listen != cfg_.policy.listen ||
                                cfg.policy.max_request_bytes != cfg_.policy.max_request_bytes ||
                                cfg.policy.max_attributes != cfg_.policy.max_attributes ||
                                cfg.policy.idle_timeout != cfg_.policy.idle_timeout ||
                                cfg.policy.max_clients != cfg_.policy.max_clients;
    const bool socketmap_changed = !reload || cfg.socketmap.listen != cfg_.socketmap.listen;
    const bool readsocket_changed = !reload || cfg.readsocket.listen != cfg_.readsocket.listen;
    const bool opensmtpd_changed = !reload || cfg.opensmtpd.listen != cfg_.opensmtpd.listen;
    cfg_ = cfg;
    if (cfg_.ignore_mynetworks) {
        auto nets = postfix_mynetworks();
        log(Level::info, "ignore_mynetworks: {} network(s) from Postfix's mynetworks added to ignore", nets.size());
        cfg_.ignore.insert(cfg_.ignore.end(), nets.begin(), nets.end());
    }
    if (policy_changed) {
        if (policy_) policy_->close();
        policy_.reset();
        if (!cfg.policy.listen.empty()) {
            frontends::PolicyLimits limits;
            limits.max_request_bytes = cfg.policy.max_request_bytes;
            limits.max_attributes = cfg.policy.max_attributes;
            limits.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.policy.idle_timeout);
            limits.max_clients = cfg.policy.max_clients;
            policy_ = std::make_unique<frontends::PolicyFrontend>(loop_, *this, limits);
            if (auto st = policy_->listen(cfg.policy.listen); !st) return core::make_error("[policy] " + st.error().message);
        }
    }
    // The other MTA frontends only have endpoints; rebuilt when those change.
    auto restart = [this]<typename F>(bool changed, std::unique_ptr<F>& fe, const config::ListenerConfig& lc,
                                      const char* what) -> core::Status {
        if (!changed) return core::ok();
        fe.reset();  // the destructor closes (and removes its unix socket files)
        if (lc.listen.empty()) return core::ok();
        fe = std::make_unique<F>(loop_, *this);
        if (auto st = fe->listen(lc.listen); !st) return core::make_error(std::string(what) + " " + st.error().message);
        return core::ok();
    };
    if (auto st = restart(socketmap_changed, socketmap_, cfg.socketmap, "[socketmap]"); !st) return st;
    if (auto st = restart(readsocket_changed, readsocket_, cfg.readsocket, "[readsocket]"); !st) return st;
    if (auto st = restart(opensmtpd_changed, opensmtpd_, cfg.opensmtpd, "[opensmtpd]"); !st) return st;
    return core::ok();
}

void Daemon::reload() {
    auto cfg = config::load_config(opts_.config_path, opts_.explicit_config);
    if (!cfg) {
        log(Level::error, "reload failed, keeping the running configuration: {}", cfg.error().message);
        return;
    }
    const auto old = cfg_;
    if (cfg->store != old.store || cfg->store_password_file != old.store_password_file || cfg->state_dir != old.state_dir ||
        cfg->max_permits != old.max_permits)
        log(Level::warning, "reload: store, state_dir and max_permits changes take effect at the next restart; still using {}",
            store_->describe());
    if (auto st = start_from(*cfg, true); !st) {
        log(Level::error, "reload failed: {}; keeping the running configuration", st.error().message);
        (void)start_from(old, true);
        return;
    }
    if (auto st = build_matcher_and_sources(*cfg); !st || !(st = start_new_sources())) {
        log(Level::error, "reload: {}", st.error().message);
        return;
    }
    if (auto st = open_exporters(*cfg); !st) log(Level::error, "reload: {}", st.error().message);
    log(Level::notice, "configuration reloaded from {}", cfg->file.empty() ? "built-in defaults" : cfg->file);
}

int Daemon::run() {
    auto cfg = config::load_config(opts_.config_path, opts_.explicit_config);
    if (!cfg) {
        log(Level::error, "{}", cfg.error().message);
        return 2;
    }
    // Every policy client holds a descriptor: raise the soft limit (often 1024) to the hard one.
    if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    // Signals arrive through a signalfd on the loop; SIGPIPE is ignored (peers hang up).
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));

    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    if (!cfg->user.empty()) {
        const passwd* pw = getpwnam(cfg->user.c_str());
        if (!pw) {
            log(Level::error, "{}: user '{}' does not exist", cfg->file, cfg->user);
            return 2;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    cfg_ = *cfg;
    if (auto st = make_dirs(cfg->state_dir, 0750, uid, gid); !st) {
        log(Level::error, "{}", st.error().message);
        return 2;
    }
    if (auto st = open_control_socket(); !st) {
        log(Level::error, "{}", st.error().message);
        return 2;
    }
    if (uid != static_cast<uid_t>(-1)) (void)chown(cfg->control_socket.c_str(), uid, static_cast<gid_t>(-1));
    // The store must exist before frontends answer; open it after binding (below) would leave a
    // window, so listeners are bound, then privileges dropped, then the store opened, and only
    // then is the loop run: nothing is served before the store is ready.
    if (auto st = start_from(*cfg, false); !st) {
        log(Level::error, "{}", st.error().message);
        return 2;
    }
    if (auto s = build_matcher_and_sources(*cfg); !s) {  // binds source listeners while still root
        log(Level::error, "{}", s.error().message);
        return 2;
    }
    if (uid != static_cast<uid_t>(-1) && geteuid() != uid) {
        if (initgroups(cfg->user.c_str(), gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
            log(Level::error, "cannot switch to user {}: {}", cfg->user, std::strerror(errno));
            return 2;
        }
        log(Level::info, "running as user {}", cfg->user);
    }
    auto st = store::open_store({cfg->state_dir, cfg->store, cfg->store_password_file, false,
                                 static_cast<std::size_t>(cfg->max_permits)});
    if (!st) {
        log(Level::error, "{}", st.error().message);
        return 2;
    }
    store_ = std::move(*st);
    if (const int fd = store_->event_fd(); fd >= 0) {
        // A shared store: news from other daemons (and our own acknowledgements) arrive here.
        loop_.add(fd, EPOLLIN, [this](std::uint32_t) {
            if (store_->process_events(clock_.now()) > 0) reschedule_expiry();
        });
    }
    if (auto e = open_exporters(*cfg); !e) {
        log(Level::error, "{}", e.error().message);
        return 2;
    }
    run_expiry();  // purge what expired while we were stopped, and arm the timer
    if (auto s = start_new_sources(); !s) {
        log(Level::error, "{}", s.error().message);
        return 2;
    }
    loop_.add(signal_fd_.get(), EPOLLIN, [this](std::uint32_t) {
        signalfd_siginfo si{};
        while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGHUP) {
                sd_notify("RELOADING=1");
                reload();
                sd_notify("READY=1");
            } else {
                log(Level::notice, "signal {}: stopping", si.ssi_signo);
                loop_.stop();
            }
        }
    });
    log(Level::notice, "relaypermit {} started: {} live permits in {}, {} source(s), policy on {}", RELAYPERMIT_VERSION,
        store_->size(), store_->describe(), sources_.size(),
        cfg->policy.listen.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(cfg->policy.listen, ", ")));
    sd_notify("READY=1");
    schedule_stats();
    loop_.run();
    sd_notify("STOPPING=1");
    log_stats();
    for (auto& s : sources_) s->stop(loop_);
    if (policy_) policy_->close();
    if (socketmap_) socketmap_->close();
    if (readsocket_) readsocket_->close();
    if (opensmtpd_) opensmtpd_->close();
    if (control_fd_) unlink(cfg_.control_socket.c_str());
    return 0;
}

}  // namespace

std::vector<matching::PatternSpec> user_pattern_specs(const config::Config& cfg) {
    std::vector<matching::PatternSpec> out;
    for (const auto& p : cfg.patterns) {
        const auto role = p.role == "session"         ? matching::PatternRole::session
                          : p.role == "session-login" ? matching::PatternRole::session_login
                                                      : matching::PatternRole::login;
        out.push_back({p.name, p.role == "login" ? p.name : p.role, {}, "", p.regex, true, role});
    }
    return out;
}

std::vector<std::string> enabled_pattern_sets(const config::Config& cfg) {
    if (cfg.servers.empty()) return {};
    auto out = cfg.servers;
    for (const auto& p : cfg.patterns)
        if (std::find(out.begin(), out.end(), p.name) == out.end()) out.push_back(p.name);
    return out;
}

int run_daemon(const RunOptions& opts) {
    Daemon d(opts);
    return d.run();
}

}  // namespace rp::daemon
