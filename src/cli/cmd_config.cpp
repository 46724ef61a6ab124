#include "cli/cmd_config.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "config/allow_file.hpp"
#include "config/registry.hpp"
#include "daemon/daemon.hpp"
#include "daemon/socketmap_static.hpp"
#include "exports/map_formats.hpp"
#include "matching/matcher.hpp"
#include "matching/required_literal.hpp"
#include "sources/journald_source.hpp"
#include "sources/syslog_source.hpp"
#include "store/shared_backend.hpp"
#include "util/log.hpp"
#include "util/small_file.hpp"

namespace rp::cli {
namespace {

constexpr int k_ok = 0, k_error = 2;

void err(const std::string& msg) { std::fprintf(stderr, "relaypermit: %s\n", util::escape_text(msg).c_str()); }

config::ConfigReport load_report(const ParsedArgs& a) {
    return config::check_config_file(a.get("--config", config::k_default_path), a.has("--config"));
}

// A `static` file of an export: readable, and in the format its type merges (map_formats.hpp).
std::optional<std::string> static_file_error(const config::ExportConfig& x) {
    const std::string where = x.line > 0 ? "export (line " + std::to_string(x.line) + "): static " : "export: static ";
    auto text = util::read_existing_small_file(x.static_path, exports::k_max_static_file);
    if (!text) return where + text.error().message;
    core::Status st = core::ok();
    switch (x.type) {
        case config::ExportType::tcprules_cdb:
            if (auto r = exports::parse_tcprules(*text); !r) st = r.error();
            break;
        case config::ExportType::sendmail_access:
            if (auto r = exports::parse_makemap(*text); !r) st = r.error();
            break;
        default:
            return where + x.static_path + ": a " + std::string(config::to_string(x.type)) + " export takes no static file";
    }
    if (!st) return where + x.static_path + ": " + st.error().message;
    return std::nullopt;
}

// What building the configuration would refuse beyond its keys: the patterns, the shared
// store's URL and parameters (without connecting), the libraries that tls: listeners and
// journald sources open, the exports' static files, [socketmap] static and the allow_file lists.
std::vector<std::string> whole_config_errors(const config::Config& cfg) {
    std::vector<std::string> out;
    if (auto m = matching::Matcher::build(daemon::enabled_pattern_sets(cfg), daemon::user_pattern_specs(cfg)); !m)
        out.push_back(cfg.file + ": " + m.error().message);
    if (!cfg.store.empty() && cfg.store != "embedded") {
        if (auto url = store::parse_store_url(cfg.store); !url)
            out.push_back(cfg.file + ": store: " + url.error().message);
        else if (auto b = store::make_backend(*url); !b)
            out.push_back(cfg.file + ": " + b.error().message);
    }
    for (const auto& x : cfg.exports)
        if (!x.static_path.empty())
            if (auto e = static_file_error(x)) out.push_back(cfg.file + ": " + *e);
    if (auto statics = daemon::read_socketmap_static(cfg.socketmap.static_path); !statics)
        out.push_back(cfg.file + ": " + statics.error().message);
    for (const auto& sc : cfg.sources) {  // the libraries opened when such a source starts
        core::Status st = core::ok();
        if (sc.type == config::SourceType::syslog && sc.has_tls_listener()) st = sources::load_tls_library();
        if (sc.type == config::SourceType::journald) st = sources::load_journal_library();
        if (!st) out.push_back(fmt::format("{}:{}: source {}: {}", cfg.file, sc.line, sc.name, st.error().message));
    }
    auto with_files = cfg;  // the allow_file lists, read as the daemon reads them
    if (auto st = config::read_allow_files(with_files); !st) out.push_back(cfg.file + ": " + st.error().message);
    return out;
}

// What the prefilter will look for in each [[pattern]]'s lines (docs/servers.md).
void print_pattern_notes(const config::Config& cfg) {
    for (const auto& p : cfg.patterns) {
        const auto lit = matching::required_literal(p.regex);
        const std::string role(config::to_string(p.role));
        if (lit.empty())
            std::printf("note: pattern %s (%s): no literal could be read from its regex, so every line is tried on it\n",
                        p.name.c_str(), role.c_str());
        else
            std::printf("note: pattern %s (%s): only lines holding \"%s\" are tried on it\n", p.name.c_str(),
                        role.c_str(), lit.c_str());
    }
}

}  // namespace

int cmd_config_check(const ParsedArgs& a) {
    const auto report = load_report(a);
    auto in_file_order = report.errors;
    std::stable_sort(in_file_order.begin(), in_file_order.end(), [](const auto& x, const auto& y) { return x.line < y.line; });
    for (const auto& d : in_file_order) err(d.message);
    if (!report.errors.empty()) return k_error;
    const auto& cfg = report.config;
    auto errors = whole_config_errors(cfg);
    std::vector<std::string> warnings;
    for (const auto& f : config::lint_config(report)) (f.error ? errors : warnings).push_back(f.message);
    for (const auto& e : errors) err(e);
    if (!errors.empty()) return k_error;
    std::printf("ok: %s\n", cfg.file.empty() ? "built-in defaults (no config file)" : cfg.file.c_str());
    for (const auto& w : warnings) std::printf("warning: %s\n", w.c_str());
    print_pattern_notes(cfg);
    return k_ok;
}

int cmd_config_show(const ParsedArgs& a) {
    const auto report = load_report(a);
    for (const auto& d : report.errors) err(d.message);
    if (!report.errors.empty()) return k_error;
    const auto text = config::show_config(report.config, a.has("--non-default") ? &report.set_keys : nullptr);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return k_ok;
}

}  // namespace rp::cli
