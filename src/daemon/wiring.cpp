// Config -> objects: the matcher and the per-source parsers, the sources, the MTA frontends and
// the exporters; on reload, what is unchanged keeps running.
#include <algorithm>

#include "daemon/daemon_impl.hpp"
#include "daemon/mynetworks.hpp"
#include "frontends/opensmtpd_frontend.hpp"
#include "frontends/policy_frontend.hpp"
#include "frontends/readsocket_frontend.hpp"
#include "frontends/socketmap_frontend.hpp"
#include "sources/auth_policy_source.hpp"
#include "sources/fifo_source.hpp"
#include "sources/file_tail_source.hpp"
#include "sources/journald_source.hpp"
#include "sources/syslog_source.hpp"
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

// The MTA frontends, in the order `status` and the stats line list them.
struct FrontendKind {
    std::string_view name;
    const std::vector<std::string>& (*listen)(const config::Config&);
    // Settings differ (a reload rebinds the frontend).
    bool (*changed)(const config::Config& now, const config::Config& before);
    std::unique_ptr<frontends::Frontend> (*make)(util::EventLoop&, const frontends::PermitOracle&, const config::Config&);
};

template <typename F>
std::unique_ptr<frontends::Frontend> make_plain(util::EventLoop& loop, const frontends::PermitOracle& oracle,
                                                const config::Config&) {
    return std::make_unique<F>(loop, oracle);
}

std::unique_ptr<frontends::Frontend> make_policy(util::EventLoop& loop, const frontends::PermitOracle& oracle,
                                                 const config::Config& cfg) {
    frontends::PolicyLimits limits;
    limits.max_request_bytes = cfg.policy.max_request_bytes;
    limits.max_attributes = cfg.policy.max_attributes;
    limits.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.policy.idle_timeout);
    limits.max_clients = cfg.policy.max_clients;
    return std::make_unique<frontends::PolicyFrontend>(loop, oracle, limits);
}

bool policy_changed(const config::Config& a, const config::Config& b) {
    return a.policy.listen != b.policy.listen || a.policy.max_request_bytes != b.policy.max_request_bytes ||
           a.policy.max_attributes != b.policy.max_attributes || a.policy.idle_timeout != b.policy.idle_timeout ||
           a.policy.max_clients != b.policy.max_clients;
}

const FrontendKind k_frontend_kinds[] = {
    {"policy", [](const config::Config& c) -> const std::vector<std::string>& { return c.policy.listen; },
     policy_changed, make_policy},
    {"socketmap", [](const config::Config& c) -> const std::vector<std::string>& { return c.socketmap.listen; },
     [](const config::Config& a, const config::Config& b) { return a.socketmap.listen != b.socketmap.listen; },
     make_plain<frontends::SocketmapFrontend>},
    {"readsocket", [](const config::Config& c) -> const std::vector<std::string>& { return c.readsocket.listen; },
     [](const config::Config& a, const config::Config& b) { return a.readsocket.listen != b.readsocket.listen; },
     make_plain<frontends::ReadsocketFrontend>},
    {"opensmtpd", [](const config::Config& c) -> const std::vector<std::string>& { return c.opensmtpd.listen; },
     [](const config::Config& a, const config::Config& b) { return a.opensmtpd.listen != b.opensmtpd.listen; },
     make_plain<frontends::OpensmtpdFrontend>},
};

std::size_t kind_index(std::string_view name) {
    for (std::size_t i = 0; i < std::size(k_frontend_kinds); ++i)
        if (k_frontend_kinds[i].name == name) return i;
    return std::size(k_frontend_kinds);
}

}  // namespace

core::Status Daemon::start_from(const config::Config& cfg, bool reload) {
    util::set_log_level(parse_level(cfg.log_level));
    std::vector<bool> changed;
    for (const auto& kind : k_frontend_kinds) changed.push_back(!reload || kind.changed(cfg, cfg_));
    cfg_ = cfg;
    if (cfg_.ignore_mynetworks) {
        auto nets = postfix_mynetworks();
        log(Level::info, "ignore_mynetworks: {} network(s) from Postfix's mynetworks added to ignore", nets.size());
        cfg_.ignore.insert(cfg_.ignore.end(), nets.begin(), nets.end());
    }
    for (std::size_t i = 0; i < std::size(k_frontend_kinds); ++i) {
        const auto& kind = k_frontend_kinds[i];
        if (!changed[i]) continue;
        // The old one is closed first (removing its unix socket files), so the new one can bind.
        auto old = std::find_if(frontends_.begin(), frontends_.end(), [&](const auto& f) { return f->name() == kind.name; });
        if (old != frontends_.end()) {
            (*old)->close();
            frontends_.erase(old);
        }
        if (kind.listen(cfg).empty()) continue;
        auto fe = kind.make(loop_, *this, cfg);
        if (auto st = fe->listen(kind.listen(cfg)); !st)
            return core::make_error("[" + std::string(kind.name) + "] " + st.error().message);
        frontends_.push_back(std::move(fe));
        std::stable_sort(frontends_.begin(), frontends_.end(),
                         [](const auto& a, const auto& b) { return kind_index(a->name()) < kind_index(b->name()); });
    }
    return core::ok();
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

}  // namespace rp::daemon
