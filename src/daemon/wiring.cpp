// Config -> objects: the matcher and the per-source parsers, the sources, the MTA frontends and
// the exporters; on reload, what is unchanged keeps running.
#include <algorithm>

#include "daemon/daemon_impl.hpp"
#include "daemon/mynetworks.hpp"
#include "daemon/socketmap_static.hpp"
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

util::Level level_of(config::LogLevel l) {
    switch (l) {
        case config::LogLevel::debug: return Level::debug;
        case config::LogLevel::info: return Level::info;
        case config::LogLevel::notice: return Level::notice;
        case config::LogLevel::warning: return Level::warning;
        case config::LogLevel::error: return Level::error;
    }
    return Level::info;
}

// How each source type is opened: one row per config::SourceType (its config row, keys and
// checks, is in config/keys_sources.cpp). `untrusted`: the journald source parses entries of
// untrusted senders with a match state of their own (untrusted_parser()).
using SourcePtr = std::unique_ptr<sources::Source>;
using OpenSource = core::Result<SourcePtr> (*)(const config::SourceConfig& sc, sources::LineParser parser,
                                               sources::LineParser untrusted, sources::LoginSink& sink,
                                               sources::PermitAccess& access, const core::Clock& clock);
struct SourceRow {
    config::SourceType type;
    OpenSource open;
    bool untrusted;
};

core::Result<SourcePtr> open_file(const config::SourceConfig& sc, sources::LineParser parser, sources::LineParser,
                                  sources::LoginSink& sink, sources::PermitAccess&, const core::Clock& clock) {
    return SourcePtr(std::make_unique<sources::FileTailSource>(sc.name, sc.path, std::move(parser), sink, clock));
}

// Bound now, before privileges are dropped (a port below 1024 with `user =`).
core::Result<SourcePtr> open_auth_policy(const config::SourceConfig& sc, sources::LineParser parser,
                                         sources::LineParser, sources::LoginSink& sink, sources::PermitAccess&,
                                         const core::Clock& clock) {
    auto src = sources::open_auth_policy_source(sc, std::move(parser), sink, clock);
    if (src)
        if (auto st = static_cast<sources::AuthPolicySource&>(**src).bind(); !st) return st.error();
    return src;
}

template <auto Open>
core::Result<SourcePtr> open_plain(const config::SourceConfig& sc, sources::LineParser parser, sources::LineParser,
                                   sources::LoginSink& sink, sources::PermitAccess&, const core::Clock& clock) {
    return Open(sc, std::move(parser), sink, clock);
}

// The drop-in protocols answer their clients themselves: no line parser. whoson also revokes
// and finds permits (PermitAccess).
template <auto Open>
core::Result<SourcePtr> open_dropin(const config::SourceConfig& sc, sources::LineParser, sources::LineParser,
                                    sources::LoginSink& sink, sources::PermitAccess&, const core::Clock& clock) {
    return Open(sc, sink, clock);
}

core::Result<SourcePtr> open_whoson(const config::SourceConfig& sc, sources::LineParser, sources::LineParser,
                                    sources::LoginSink& sink, sources::PermitAccess& access, const core::Clock& clock) {
    return sources::open_whoson_source(sc, sink, access, clock);
}

core::Result<SourcePtr> open_journald(const config::SourceConfig& sc, sources::LineParser parser,
                                      sources::LineParser untrusted, sources::LoginSink& sink, sources::PermitAccess&,
                                      const core::Clock& clock) {
    return sources::open_journald_source(sc, std::move(parser), sink, clock, std::move(untrusted));
}

// In config::SourceType order (checked below).
const SourceRow k_source_rows[] = {
    {config::SourceType::file, open_file, false},
    {config::SourceType::fifo, open_plain<sources::open_fifo_source>, false},
    {config::SourceType::syslog, open_plain<sources::open_syslog_source>, false},
    {config::SourceType::journald, open_journald, true},
    {config::SourceType::dovecot_auth_policy, open_auth_policy, false},
    {config::SourceType::drac, open_dropin<sources::open_drac_source>, false},
    {config::SourceType::whoson, open_whoson, false},
    {config::SourceType::relay_ctrl_udp, open_dropin<sources::open_relay_ctrl_source>, false},
};
static_assert(std::size(k_source_rows) == static_cast<std::size_t>(config::SourceType::relay_ctrl_udp) + 1);

const SourceRow& source_row(config::SourceType t) { return k_source_rows[static_cast<std::size_t>(t)]; }

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

// [socketmap]: its static entries are handed over after every reload (reload_socketmap_static),
// so only its endpoints decide whether it keeps running.
template <auto Member>
bool same_listen(const config::Config& a, const config::Config& b) {
    return listen_of<Member>(a) == listen_of<Member>(b);
}

// In config::FrontendType order (checked below).
const FrontendKind k_frontend_kinds[] = {
    {config::FrontendType::policy, listen_of<&config::Config::policy>, same<&config::Config::policy>, make_policy},
    {config::FrontendType::socketmap, listen_of<&config::Config::socketmap>, same_listen<&config::Config::socketmap>,
     make_plain<frontends::SocketmapFrontend>},
    {config::FrontendType::readsocket, listen_of<&config::Config::readsocket>, same<&config::Config::readsocket>,
     make_plain<frontends::ReadsocketFrontend>},
    {config::FrontendType::opensmtpd, listen_of<&config::Config::opensmtpd>, same<&config::Config::opensmtpd>,
     make_plain<frontends::OpensmtpdFrontend>},
};
static_assert(std::size(k_frontend_kinds) == static_cast<std::size_t>(config::FrontendType::opensmtpd) + 1);

}  // namespace

std::span<const FrontendKind> frontend_kinds() { return k_frontend_kinds; }

void Daemon::apply_settings(const config::Config& cfg) {
    util::set_log_level(level_of(cfg.log_level));
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
    if (auto st = fe->listen(kind.listen(cfg)); !st) return core::make_error("[" + kind.name() + "] " + st.error().message);
    return fe;
}

const frontends::Frontend* Daemon::find_frontend(config::FrontendType type) const {
    for (const auto& f : frontends_)
        if (f.type == type) return f.fe.get();
    return nullptr;
}

std::unique_ptr<frontends::Frontend> Daemon::take_frontend(config::FrontendType type) {
    for (auto it = frontends_.begin(); it != frontends_.end(); ++it) {
        if (it->type != type) continue;
        auto fe = std::move(it->fe);
        frontends_.erase(it);
        return fe;
    }
    return nullptr;
}

// Keeps frontends_ in FrontendType order (the order `status` lists them).
void Daemon::add_frontend(config::FrontendType type, std::unique_ptr<frontends::Frontend> fe) {
    frontends_.push_back({type, std::move(fe)});
    std::stable_sort(frontends_.begin(), frontends_.end(), [](const auto& a, const auto& b) { return a.type < b.type; });
}

// Start-up: settings, then every configured frontend (before privileges are dropped).
core::Status Daemon::bind_frontends() {
    apply_settings(cfg_);
    for (const auto& kind : k_frontend_kinds) {
        if (kind.listen(cfg_).empty()) continue;
        auto fe = open_frontend(kind, cfg_);
        if (!fe) return fe.error();
        add_frontend(kind.type, std::move(*fe));
    }
    return load_socketmap_static();
}

core::Status Daemon::load_socketmap_static() {
    auto statics = read_socketmap_static(cfg_.socketmap.static_path);
    if (!statics) return core::make_error(cfg_.file + ": " + statics.error().message);
    socketmap_static_ = std::move(*statics);
    hand_socketmap_static();
    return core::ok();
}

// Every SIGHUP, also when the config text is unchanged: the file may have changed alone.
void Daemon::reload_socketmap_static() {
    auto statics = read_socketmap_static(cfg_.socketmap.static_path);
    if (!statics) {
        log(Level::error, "reload: {}; the socketmap keeps its {} static entries", statics.error().message,
            socketmap_static_ ? socketmap_static_->size() : 0);
    } else {
        socketmap_static_ = std::move(*statics);
        if (socketmap_static_) log(Level::info, "[socketmap] static: {} entries", socketmap_static_->size());
    }
    hand_socketmap_static();  // also to a socketmap the reload opened
}

void Daemon::hand_socketmap_static() {
    for (auto& f : frontends_)
        if (f.type == config::FrontendType::socketmap)
            static_cast<frontends::SocketmapFrontend&>(*f.fe).set_static(socketmap_static_);
}

core::Result<std::unique_ptr<sources::Source>> Daemon::open_source(const config::SourceConfig& sc,
                                                                   sources::LineParser parser, const MatcherPtr& m) {
    return source_row(sc.type).open(sc, std::move(parser), untrusted_parser(sc, m), *this, *this, clock_);
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
    if (!source_row(sc.type).untrusted) return {};
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
        source_file_stamps_.push_back(source_files_stamp(sc));
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
        const auto role = p.role == config::PatternRole::session         ? matching::PatternRole::session
                          : p.role == config::PatternRole::session_login ? matching::PatternRole::session_login
                                                                         : matching::PatternRole::login;
        const std::string label = p.role == config::PatternRole::login ? p.name : std::string(config::to_string(p.role));
        out.push_back({p.name, label, {}, "", p.regex, true, role});
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
