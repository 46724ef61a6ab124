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
#include "sources/dropin_source.hpp"
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

// Equal settings (the struct's operator==): a reload keeps the frontend.
template <auto Member>
bool same(const config::Config& a, const config::Config& b) {
    return a.*Member == b.*Member;
}

template <auto Member>
const std::vector<std::string>& listen_of(const config::Config& c) {
    return (c.*Member).listen;
}

const FrontendKind k_frontend_kinds[] = {
    {"policy", listen_of<&config::Config::policy>, same<&config::Config::policy>, make_policy},
    {"socketmap", listen_of<&config::Config::socketmap>, same<&config::Config::socketmap>,
     make_plain<frontends::SocketmapFrontend>},
    {"readsocket", listen_of<&config::Config::readsocket>, same<&config::Config::readsocket>,
     make_plain<frontends::ReadsocketFrontend>},
    {"opensmtpd", listen_of<&config::Config::opensmtpd>, same<&config::Config::opensmtpd>,
     make_plain<frontends::OpensmtpdFrontend>},
};

std::size_t kind_index(std::string_view name) {
    for (std::size_t i = 0; i < std::size(k_frontend_kinds); ++i)
        if (k_frontend_kinds[i].name == name) return i;
    return std::size(k_frontend_kinds);
}

}  // namespace

std::span<const FrontendKind> frontend_kinds() { return k_frontend_kinds; }

void Daemon::apply_settings(const config::Config& cfg) {
    util::set_log_level(parse_level(cfg.log_level));
    cfg_ = cfg;
    if (cfg_.ignore_mynetworks) {
        auto nets = postfix_mynetworks();
        log(Level::info, "ignore_mynetworks: {} network(s) from Postfix's mynetworks added to ignore", nets.size());
        cfg_.ignore.insert(cfg_.ignore.end(), nets.begin(), nets.end());
    }
    grant_policy_ = PermitPolicy({cfg_.ignore, cfg_.ttl, cfg_.max_ttl, cfg_.ipv6_prefix, cfg_.max_lifetime});
    apply_limits(cfg_.limits);
}

core::Result<std::unique_ptr<frontends::Frontend>> Daemon::open_frontend(const FrontendKind& kind,
                                                                          const config::Config& cfg) {
    auto fe = kind.make(loop_, *this, cfg);
    if (auto st = fe->listen(kind.listen(cfg)); !st)
        return core::make_error("[" + std::string(kind.name) + "] " + st.error().message);
    return fe;
}

const frontends::Frontend* Daemon::find_frontend(std::string_view name) const {
    for (const auto& f : frontends_)
        if (f->name() == name) return f.get();
    return nullptr;
}

std::unique_ptr<frontends::Frontend> Daemon::take_frontend(std::string_view name) {
    for (auto it = frontends_.begin(); it != frontends_.end(); ++it) {
        if ((*it)->name() != name) continue;
        auto fe = std::move(*it);
        frontends_.erase(it);
        return fe;
    }
    return nullptr;
}

void Daemon::sort_frontends() {
    std::stable_sort(frontends_.begin(), frontends_.end(),
                     [](const auto& a, const auto& b) { return kind_index(a->name()) < kind_index(b->name()); });
}

// Start-up: settings, then every configured frontend (before privileges are dropped).
core::Status Daemon::bind_frontends() {
    apply_settings(cfg_);
    for (const auto& kind : k_frontend_kinds) {
        if (kind.listen(cfg_).empty()) continue;
        auto fe = open_frontend(kind, cfg_);
        if (!fe) return fe.error();
        frontends_.push_back(std::move(*fe));
    }
    return core::ok();
}

core::Result<std::unique_ptr<sources::Source>> Daemon::open_source(const config::SourceConfig& sc,
                                                                   sources::LineParser parser, const MatcherPtr& m) {
    if (sc.type == "file")
        return std::unique_ptr<sources::Source>(
            std::make_unique<sources::FileTailSource>(sc.name, sc.path, std::move(parser), *this, clock_));
    if (sc.type == "dovecot-auth-policy") {
        auto src = sources::open_auth_policy_source(sc, std::move(parser), *this, clock_);
        // Bound now, before privileges are dropped (a port below 1024 with `user =`).
        if (src)
            if (auto st = static_cast<sources::AuthPolicySource&>(**src).bind(); !st) return st.error();
        return src;
    }
    if (sources::is_dropin_type(sc.type)) return sources::open_dropin_source(sc, *this, *this, clock_);
    if (sc.type == "syslog") return sources::open_syslog_source(sc, std::move(parser), *this, clock_);
    if (sc.type == "fifo") return sources::open_fifo_source(sc, std::move(parser), *this, clock_);
    if (sc.type == "journald")
        return sources::open_journald_source(sc, std::move(parser), *this, clock_, untrusted_parser(sc, m));
    return core::make_error("source type \"" + sc.type + "\" is not available in this version");
}

core::Result<std::unique_ptr<sources::Source>> Daemon::open_source_for(const config::SourceConfig& sc,
                                                                       const std::string& file, const MatcherPtr& m) {
    auto src = open_source(sc, parser_for(sc, m), m);
    if (!src) return core::make_error(fmt::format("{}:{}: source {}: {}", file, sc.line, sc.name, src.error().message));
    return src;
}

core::Status Daemon::open_exports() {
    const auto& cfg = cfg_;
    std::vector<std::unique_ptr<exports::Exporter>> fresh;
    for (const auto& x : cfg.exports) {
        auto e = exports::open_exporter(x, cfg.relayclient, &loop_, exports::StaticCheck::at_write);
        if (!e) return core::make_error(fmt::format("{}:{}: export: {}", cfg.file, x.line, e.error().message));
        fresh.push_back(std::move(*e));
    }
    exports_.set_exporters(std::move(fresh));
    return core::ok();
}

sources::LineParser Daemon::parser_for(const config::SourceConfig& sc, const MatcherPtr& m) const {
    // Each source has its own match state (PCRE2 scratch, two-line correlation).
    auto state = std::make_shared<matching::MatchState>(*m);
    auto matcher = m;
    const std::string name = sc.name;
    auto parse = [matcher, state, name](std::string_view lines, core::Time now, std::vector<core::LoginEvent>& out) {
        matcher->scan(lines, now, *state, [&](const matching::LoginMatch& hit) {
            out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), name, hit.time, hit.time_origin,
                           false, hit.kind, std::string(hit.session)});
        });
    };
    // Sources that queue lines (fifo, datagrams) queue only the prefilter's candidates.
    auto filter = [matcher, state](std::string_view lines, const std::function<void(std::size_t, std::size_t)>& keep) {
        matcher->for_each_candidate(lines, *state, keep);
    };
    return sources::LineParser(std::move(parse), std::move(filter));
}

sources::LineParser Daemon::untrusted_parser(const config::SourceConfig& sc, const MatcherPtr& m) const {
    if (sc.type != "journald") return {};
    // Entries from untrusted senders are parsed with a state of their own, so a forged first
    // line of a two-line server cannot seed the trusted entries' pid cache.
    auto probe_state = std::make_shared<matching::MatchState>(*m);
    auto matcher = m;
    return [matcher, probe_state](std::string_view lines, core::Time now, std::vector<core::LoginEvent>& out) {
        matcher->scan(lines, now, *probe_state, [&](const matching::LoginMatch& hit) {
            out.push_back({hit.ip, std::string(hit.user), std::string(hit.server), {}, hit.time, hit.time_origin});
        });
    };
}

// Start-up: the matcher and every source; network listeners are bound here, before privileges
// are dropped. start_new_sources() starts them once the store is open (checkpoints).
core::Status Daemon::bind_sources() {
    auto m = matching::Matcher::build(enabled_pattern_sets(cfg_), user_pattern_specs(cfg_));
    if (!m) return m.error();
    matcher_ = *m;
    for (const auto& sc : cfg_.sources) {
        auto src = open_source_for(sc, cfg_.file, matcher_);
        if (!src) return src.error();
        unstarted_.push_back(src->get());
        sources_.push_back(std::move(*src));
        source_cfgs_.push_back(sc);
        source_tls_.push_back(tls_stamp(sc));
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
    // Session end lines only matter with max_lifetime (docs/limits.md); without it the prefilter
    // keeps its 8 literals. Matcher::build keeps those of the enabled servers only.
    if (cfg.max_lifetime.count() > 0)
        for (const auto& p : matching::builtin_session_end_patterns()) out.push_back(p);
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
