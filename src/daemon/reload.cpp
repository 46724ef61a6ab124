// Reload (SIGHUP), all or nothing: the new matcher, sources, frontends and exporters are built
// while the running ones keep serving; only when all of them opened does the new set replace
// the old. Otherwise nothing running is touched and the log says exactly why.
//
// What is kept: a source or frontend whose configuration is equal (operator==, never a hand-made
// list of fields) keeps running, with its bound listeners (also ports below 1024 after `user =`
// dropped root), its connections and its read position; a kept source gets parsers for the new
// patterns. A TLS source is kept only while its certificate, key and CA files are the same files
// with the same size and times (stat, so this works without read access as `user =`).
//
// What must be replaced on the same endpoint (a changed source or frontend that keeps one of its
// old endpoints or paths) cannot be opened next to the old one. For those, the new-only endpoints
// are bound once as a probe and the TLS files read before anything is stopped; only then is the
// old one closed and the new one opened. If that last step still fails (a race), the old ones are
// reopened and the reload reports what it could not restore.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "config/allow_file.hpp"
#include "daemon/daemon_impl.hpp"
#include "sources/syslog_source.hpp"
#include "util/log.hpp"

namespace rp::daemon {
namespace {

using util::Level;
using util::log;

bool shares(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return std::any_of(a.begin(), a.end(), [&](const auto& e) { return std::find(b.begin(), b.end(), e) != b.end(); });
}

std::vector<std::string> only_in(const std::vector<std::string>& next, const std::vector<std::string>& old) {
    std::vector<std::string> out;
    for (const auto& e : next)
        if (std::find(old.begin(), old.end(), e) == old.end()) out.push_back(e);
    return out;
}

// Two sources that cannot run side by side: a common listen endpoint or the same path.
bool collide(const config::SourceConfig& a, const config::SourceConfig& b) {
    return shares(a.listen, b.listen) || (!a.path.empty() && a.path == b.path);
}

// The TLS files must be readable now, by the user the daemon runs as.
core::Status check_tls_readable(const config::SourceConfig& sc) {
    for (const auto* path : {&sc.tls_cert, &sc.tls_key, &sc.tls_ca}) {
        if (path->empty()) continue;
        const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return core::make_error(fmt::format("cannot read {} as uid {}: {}; the running source keeps its certificate "
                                                "(restart the daemon to load the new one)",
                                                *path, geteuid(), std::strerror(errno)));
        ::close(fd);
    }
    return core::ok();
}

}  // namespace

// The files a source reads only when it opens: its TLS material and its `allow_file` (DRAC's
// dracd.allow). A changed file makes SIGHUP reopen the source, as rpc.dracd re-reads its list.
std::string source_files_stamp(const config::SourceConfig& sc) {
    std::string out;
    for (const auto* path : {&sc.tls_cert, &sc.tls_key, &sc.tls_ca, &sc.allow_file}) {
        if (path->empty()) continue;
        struct stat st {};
        if (::stat(path->c_str(), &st) != 0) {
            out += "-;";
            continue;
        }
        out += fmt::format("{}:{}:{}:{}.{}:{}.{};", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                           st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
    }
    return out;
}

void Daemon::reload() {
    auto cfg = config::load_config_and_allow_files(opts_.config_path, opts_.explicit_config);
    if (!cfg) {
        log(Level::error, "reload failed, keeping the running configuration: {}", cfg.error().message);
        return;
    }
    if (cfg->store != cfg_.store || cfg->store_password_file != cfg_.store_password_file || cfg->state_dir != cfg_.state_dir ||
        cfg->max_permits != cfg_.max_permits)
        log(Level::warning, "reload: store, state_dir and max_permits changes take effect at the next restart; still using {}",
            store_->describe());
    ReloadPlan plan;
    plan.cfg = std::move(*cfg);
    if (auto st = prepare_reload(plan); !st) {
        log(Level::error, "reload failed, keeping the running configuration: {}", st.error().message);
        return;
    }
    if (auto st = commit_reload(plan); !st) {
        log(Level::error, "reload failed, keeping the running configuration: {}", st.error().message);
        return;
    }
    reload_socketmap_static();
    if (auto st = start_new_sources(); !st) log(Level::error, "reload: {}", st.error().message);
    log(Level::notice, "configuration reloaded from {}", plan.cfg.file.empty() ? "built-in defaults" : plan.cfg.file);
}

// Builds everything new next to the running set; touches nothing that runs.
core::Status Daemon::prepare_reload(ReloadPlan& plan) {
    auto m = matching::Matcher::build(enabled_pattern_sets(plan.cfg), user_pattern_specs(plan.cfg));
    if (!m) return m.error();
    plan.matcher = *m;
    if (auto st = plan_sources(plan); !st) return st;
    if (auto st = plan_frontends(plan); !st) return st;
    for (const auto& x : plan.cfg.exports) {
        auto e = exports::open_exporter(x, plan.cfg.relayclient, &loop_, exports::StaticCheck::at_write);
        if (!e) return core::make_error(fmt::format("{}:{}: export: {}", plan.cfg.file, x.line, e.error().message));
        plan.exporters.push_back(std::move(*e));
    }
    return core::ok();
}

core::Status Daemon::plan_sources(ReloadPlan& plan) {
    const auto& next = plan.cfg.sources;
    plan.source_from.assign(next.size(), k_none);
    plan.sources.resize(next.size());
    std::vector<bool> kept(sources_.size(), false);
    for (std::size_t i = 0; i < next.size(); ++i) {
        for (std::size_t j = 0; j < sources_.size() && plan.source_from[i] == k_none; ++j) {
            if (kept[j] || !source_cfgs_[j].same_as(next[i]) || source_file_stamps_[j] != source_files_stamp(next[i])) continue;
            kept[j] = true;
            plan.source_from[i] = j;
        }
    }
    for (std::size_t i = 0; i < next.size(); ++i) {
        if (plan.source_from[i] != k_none) continue;
        bool deferred = false;
        for (std::size_t j = 0; j < sources_.size(); ++j) {
            if (kept[j] || !collide(source_cfgs_[j], next[i])) continue;
            deferred = true;
            plan.closed_sources.push_back(j);
            if (auto st = probe_source(next[i], source_cfgs_[j], plan); !st) return st;
        }
        if (deferred) {
            plan.deferred_sources.push_back(i);
            continue;
        }
        auto src = open_source_for(next[i], plan.cfg.file, plan.matcher);
        if (!src) return src.error();
        plan.sources[i] = std::move(*src);
    }
    return core::ok();
}

// Before the old source on the same endpoint is closed: its TLS files can be read and its
// new-only endpoints can be bound.
core::Status Daemon::probe_source(const config::SourceConfig& sc, const config::SourceConfig& old, ReloadPlan& plan) {
    const auto what = [&](const core::Error& e) {
        return core::make_error(fmt::format("{}:{}: source {}: {}", plan.cfg.file, sc.line, sc.name, e.message));
    };
    if (auto st = check_tls_readable(sc); !st) return what(st.error());
    if (sc.has_tls_listener())  // the probe below binds tcp: instead, so GnuTLS is loaded here
        if (auto st = sources::load_tls_library(); !st) return what(st.error());
    auto probe = sc;
    probe.listen = only_in(sc.listen, old.listen);
    if (probe.listen.empty()) return core::ok();
    probe.tls_cert = probe.tls_key = probe.tls_ca = "";
    for (auto& e : probe.listen)
        if (e.starts_with("tls:")) e = "tcp:" + e.substr(4);  // TLS files were checked above
    auto src = open_source(probe, {}, plan.matcher);
    if (!src) return what(src.error());
    return core::ok();  // the probe's listeners close here
}

core::Status Daemon::plan_frontends(ReloadPlan& plan) {
    plan.frontends.resize(frontend_kinds().size());
    plan.frontend_state.assign(frontend_kinds().size(), FrontendStep::drop);
    for (std::size_t k = 0; k < frontend_kinds().size(); ++k) {
        const auto& kind = frontend_kinds()[k];
        const auto* old = find_frontend(kind.type);
        const auto& listen = kind.listen(plan.cfg);
        if (old && kind.same(plan.cfg, cfg_)) {
            plan.frontend_state[k] = FrontendStep::keep;
        } else if (listen.empty()) {
            plan.frontend_state[k] = FrontendStep::drop;
        } else if (old && shares(listen, kind.listen(cfg_))) {
            plan.frontend_state[k] = FrontendStep::replace;
            auto probe = kind.make(loop_, *this, plan.cfg);
            if (auto fresh = only_in(listen, kind.listen(cfg_)); !fresh.empty())
                if (auto st = probe->listen(fresh); !st)
                    return core::make_error("[" + kind.name() + "] " + st.error().message);
        } else {
            auto fe = open_frontend(kind, plan.cfg);
            if (!fe) return fe.error();
            plan.frontends[k] = std::move(*fe);
            plan.frontend_state[k] = FrontendStep::open;
        }
    }
    return core::ok();
}

// The only step that closes running listeners: those a new one replaces on the same endpoint.
// On failure the old ones are reopened and the running set is otherwise untouched.
core::Status Daemon::commit_reload(ReloadPlan& plan) {
    std::vector<std::unique_ptr<sources::Source>> closed(sources_.size());
    for (const auto j : plan.closed_sources)
        if (sources_[j]) {
            sources_[j]->stop(loop_);
            closed[j] = std::move(sources_[j]);
        }
    for (auto& c : closed) c.reset();  // frees the endpoints
    std::vector<std::unique_ptr<frontends::Frontend>> closed_fe(frontend_kinds().size());
    for (std::size_t k = 0; k < frontend_kinds().size(); ++k)
        if (plan.frontend_state[k] == FrontendStep::replace) closed_fe[k] = take_frontend(frontend_kinds()[k].type);
    for (auto& f : closed_fe)
        if (f) f->close();
    auto st = open_deferred(plan);
    if (!st) {
        restore_closed(plan, closed_fe);
        return st;
    }
    swap_in(plan);
    return core::ok();
}

core::Status Daemon::open_deferred(ReloadPlan& plan) {
    for (const auto i : plan.deferred_sources) {
        auto src = open_source_for(plan.cfg.sources[i], plan.cfg.file, plan.matcher);
        if (!src) return src.error();
        plan.sources[i] = std::move(*src);
    }
    for (std::size_t k = 0; k < frontend_kinds().size(); ++k) {
        if (plan.frontend_state[k] != FrontendStep::replace) continue;
        auto fe = open_frontend(frontend_kinds()[k], plan.cfg);
        if (!fe) return fe.error();
        plan.frontends[k] = std::move(*fe);
    }
    return core::ok();
}

// After a failed open_deferred: the closed old sources and frontends are opened again from
// their old configuration; what cannot be (a port below 1024 after `user =`) is logged.
void Daemon::restore_closed(ReloadPlan& plan, std::vector<std::unique_ptr<frontends::Frontend>>& closed_fe) {
    plan.sources.clear();  // closes what the new set opened
    plan.frontends.clear();
    for (const auto j : plan.closed_sources) {
        if (sources_[j]) continue;
        auto src = open_source_for(source_cfgs_[j], cfg_.file, matcher_);
        if (!src) {
            log(Level::error, "reload: cannot restore {}", src.error().message);
            continue;
        }
        sources_[j] = std::move(*src);
        if (auto st = sources_[j]->start(loop_); !st) log(Level::error, "reload: cannot restart source {}: {}",
                                                          source_cfgs_[j].name, st.error().message);
    }
    for (std::size_t k = 0; k < closed_fe.size(); ++k) {
        if (!closed_fe[k]) continue;
        if (auto st = closed_fe[k]->listen(frontend_kinds()[k].listen(cfg_)); !st)
            log(Level::error, "reload: cannot restore [{}]: {}", frontend_kinds()[k].name(), st.error().message);
        add_frontend(frontend_kinds()[k].type, std::move(closed_fe[k]));
    }
    // Sources that could not be restored leave a gap: drop it so the list holds running ones.
    for (std::size_t j = sources_.size(); j-- > 0;)
        if (!sources_[j]) {
            sources_.erase(sources_.begin() + static_cast<long>(j));
            source_cfgs_.erase(source_cfgs_.begin() + static_cast<long>(j));
            source_file_stamps_.erase(source_file_stamps_.begin() + static_cast<long>(j));
        }
}

// Everything opened: the new set replaces the running one.
void Daemon::swap_in(ReloadPlan& plan) {
    if (!(plan.cfg.metrics == cfg_.metrics)) {  // bound at start only (observe.cpp)
        log(Level::warning, "reload: [metrics] changed; the change takes effect at the next restart");
        plan.cfg.metrics = cfg_.metrics;
    }
    apply_settings(plan.cfg);
    tighten_session_caps();  // a smaller max_lifetime bounds the open sessions too (sessions.cpp)
    matcher_ = plan.matcher;
    std::vector<std::unique_ptr<sources::Source>> next(plan.cfg.sources.size());
    unstarted_.clear();
    for (std::size_t i = 0; i < next.size(); ++i) {
        const auto& sc = plan.cfg.sources[i];
        if (plan.source_from[i] != k_none) {
            next[i] = std::move(sources_[plan.source_from[i]]);
            next[i]->set_parser(parser_for(sc, matcher_), untrusted_parser(sc, matcher_));
        } else {
            next[i] = std::move(plan.sources[i]);
            unstarted_.push_back(next[i].get());
        }
    }
    for (auto& old : sources_)
        if (old) old->stop(loop_);
    sources_ = std::move(next);
    source_cfgs_ = plan.cfg.sources;
    source_file_stamps_.clear();
    for (const auto& sc : source_cfgs_) source_file_stamps_.push_back(source_files_stamp(sc));
    for (std::size_t k = 0; k < frontend_kinds().size(); ++k) {
        const auto step = plan.frontend_state[k];
        if (step == FrontendStep::keep) continue;
        if (auto old = take_frontend(frontend_kinds()[k].type)) old->close();
        if (plan.frontends[k]) add_frontend(frontend_kinds()[k].type, std::move(plan.frontends[k]));
    }
    exports_.set_exporters(std::move(plan.exporters));
}

}  // namespace rp::daemon
