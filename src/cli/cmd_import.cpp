// `relaypermit import FORMAT PATH` and `relaypermit list --static`.
//
// import reads an older system's live state (imports/import_files.hpp, or a query for `sql`),
// and hands the entries to the running daemon in batches of at most k_control_max_import over
// the control socket's `import` command, where each one goes through the grant policy. It never
// stops at a bad entry: malformed ones are counted (a few quoted on stderr). `static` is the
// exception: smtp-poplock's static_allowed file becomes allow_file lines on stdout (docs/import.md)
// because the static allow list is configuration, not state.
#include "cli/cmd_import.hpp"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "config/allow_file.hpp"
#include "config/config.hpp"
#include "daemon/control_codec.hpp"
#include "daemon/control_protocol.hpp"
#include "imports/import_files.hpp"
#include "store/shared_backend.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"

namespace rp::cli {
namespace {

constexpr int k_ok = 0, k_error = 2;
constexpr int k_import_timeout_ms = 60000;
constexpr std::size_t k_max_request_bytes = 48 * 1024;  // below k_control_max_line with room to spare

void err(const std::string& msg) { std::fprintf(stderr, "relaypermit: %s\n", util::escape_text(msg).c_str()); }

core::Result<config::Config> load(const ParsedArgs& a) {
    return config::load_config(a.get("--config", config::k_default_path), a.has("--config"));
}

nlohmann::json entry_json(const imports::ImportEntry& e) {
    nlohmann::json j = {{"ip", e.ip.to_string()}};
    if (!e.user.empty()) j["user"] = e.user;
    const auto secs = core::to_unix_micros(e.time) / 1000000;
    if (e.kind == imports::EntryTime::login) j["login"] = secs;
    if (e.kind == imports::EntryTime::expires) j["expires"] = secs;
    return j;
}

core::Result<imports::ImportBatch> read_sql(const ParsedArgs& a) {
    if (!a.has("--url") || !a.has("--query")) return core::make_error("'import sql' needs --url URL and --query SQL");
    auto url = store::parse_store_url(a.get("--url"));
    if (!url) return core::make_error("--url: " + url.error().message);
    if (url->scheme != "postgresql" && url->scheme != "mysql")
        return core::make_error("--url: use a postgresql:// or mysql:// URL");
    auto backend = store::make_backend(*url);
    if (!backend) return backend.error();
    auto rows = (*backend)->read_rows(a.get("--query"));
    if (!rows) return rows.error();
    return imports::parse_sql_rows(*rows);
}

int import_static(const ParsedArgs& a, const std::string& path) {
    auto text = imports::read_text_file(path);
    if (!text) {
        err(text.error().message);
        return k_error;
    }
    const auto parsed = imports::parse_static_allowed(*text);
    for (const auto& ex : parsed.examples) err("malformed: " + ex);
    std::printf("# static allow entries from %s (relaypermit import static); use with allow_file\n",
                util::escape_text(path).c_str());
    for (const auto& n : parsed.networks) std::printf("%s\n", n.to_string().c_str());
    std::fprintf(stderr, "%s%zu network(s) read, %llu malformed\n", a.has("--dry-run") ? "dry run: " : "",
                 parsed.networks.size(), static_cast<unsigned long long>(parsed.malformed));
    return k_ok;
}

struct Totals {
    std::uint64_t imported = 0, expired = 0, refused = 0, unchanged = 0;
    std::map<std::string, std::uint64_t> refusals;
};

// Sends one request; adds its counts to `t` and prints a dry run's per-entry results.
core::Status send_batch(const config::Config& cfg, nlohmann::json req, Totals& t) {
    auto r = daemon::control_call(cfg.control_socket, req, k_import_timeout_ms);
    if (!r) return core::make_error(r.error().message + " (import needs the running daemon)");
    if (!r->value("ok", false)) return core::make_error(r->value("error", std::string("the daemon refused the import")));
    t.imported += r->value("imported", 0ULL);
    t.expired += r->value("expired", 0ULL);
    t.refused += r->value("refused", 0ULL);
    t.unchanged += r->value("unchanged", 0ULL);
    if (const auto it = r->find("refusals"); it != r->end() && it->is_object())
        for (const auto& [k, v] : it->items()) t.refusals[k] += v.get<std::uint64_t>();
    const auto results = r->find("results");
    if (results != r->end() && results->is_array())
        for (const auto& x : *results)
            std::printf("%-40s %-8s %s\n", x.value("ip", "").c_str(), x.value("outcome", "").c_str(),
                        util::escape_text(x.value("detail", "")).c_str());
    return core::ok();
}

core::Status send_all(const ParsedArgs& a, const config::Config& cfg, const std::string& format,
                      const imports::ImportBatch& batch, Totals& t) {
    nlohmann::json base = {{"cmd", "import"}, {"format", format}};
    if (a.has("--dry-run")) base["dry_run"] = true;
    if (a.has("--ttl")) {
        auto d = core::parse_duration(a.get("--ttl"));
        if (!d || d->count() <= 0) return core::make_error(d ? "--ttl must be positive" : d.error().message);
        base["ttl_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
    }
    auto entries = nlohmann::json::array();
    std::size_t bytes = 0;
    for (const auto& e : batch.entries) {
        auto j = entry_json(e);
        const auto size = j.dump().size() + 1;
        if (!entries.empty() && (entries.size() >= daemon::k_control_max_import || bytes + size > k_max_request_bytes)) {
            auto req = base;
            req["entries"] = std::move(entries);
            if (auto st = send_batch(cfg, std::move(req), t); !st) return st;
            entries = nlohmann::json::array();
            bytes = 0;
        }
        entries.push_back(std::move(j));
        bytes += size;
    }
    if (!entries.empty()) {
        base["entries"] = std::move(entries);
        return send_batch(cfg, std::move(base), t);
    }
    return core::ok();
}

}  // namespace

int cmd_import(const ParsedArgs& a) {
    const std::string format = a.positionals.empty() ? "" : a.positionals[0];
    if (!imports::known_import_format(format)) {
        std::string known;
        for (auto f : imports::import_formats()) known += (known.empty() ? "" : ", ") + std::string(f);
        err("import: unknown format '" + format + "' (known: " + known + ")");
        return k_error;
    }
    const bool sql = format == "sql";
    if (sql != (a.positionals.size() == 1)) {
        err(sql ? "'import sql' takes no PATH (give --url and --query)" : "'import " + format + "' needs a PATH");
        return k_error;
    }
    if (format == "static") return import_static(a, a.positionals[1]);
    auto cfg = load(a);
    if (!cfg) {
        err(cfg.error().message);
        return k_error;
    }
    auto batch = sql ? read_sql(a) : imports::read_import(format, a.positionals[1]);
    if (!batch) {
        err(batch.error().message);
        return k_error;
    }
    for (const auto& ex : batch->examples) err("malformed: " + ex);
    Totals t;
    const auto st = send_all(a, *cfg, format, *batch, t);
    std::string refusals;
    for (const auto& [k, v] : t.refusals) refusals += (refusals.empty() ? " (" : ", ") + k + " " + std::to_string(v);
    if (!refusals.empty()) refusals += ")";
    std::printf("%s%s: %zu entries read; imported %llu (%llu already as long), expired %llu, malformed %llu, "
                "refused by policy %llu%s, skipped %llu\n",
                a.has("--dry-run") ? "dry run, nothing changed: " : "", format.c_str(), batch->entries.size(),
                static_cast<unsigned long long>(t.imported), static_cast<unsigned long long>(t.unchanged),
                static_cast<unsigned long long>(t.expired), static_cast<unsigned long long>(batch->malformed),
                static_cast<unsigned long long>(t.refused), refusals.c_str(),
                static_cast<unsigned long long>(batch->skipped));
    if (!st) {
        err(st.error().message);
        return k_error;
    }
    return k_ok;
}

int cmd_list_static(const ParsedArgs& a) {
    auto cfg = load(a);
    if (!cfg) {
        err(cfg.error().message);
        return k_error;
    }
    daemon::ControlFailure why{};
    auto r = daemon::control_call(cfg->control_socket, {{"cmd", "list"}, {"static", true}}, 5000, &why);
    nlohmann::json list = nlohmann::json::array();
    if (r && r->value("ok", false)) {
        list = (*r)["static"];
    } else if (!r && why == daemon::ControlFailure::not_running) {
        if (auto st = config::read_allow_files(*cfg); !st) {
            err(st.error().message);
            return k_error;
        }
        err("the daemon is not running; the static allow list as the config and its allow_file files say now");
        for (const auto& e : config::static_allow_list(*cfg)) list.push_back({{"network", e.network.to_string()}, {"from", e.from}});
    } else {
        err(r ? r->value("error", std::string("the daemon refused the request")) : r.error().message);
        return k_error;
    }
    if (a.has("--json")) {
        std::printf("%s\n", list.dump(2).c_str());
        return k_ok;
    }
    std::printf("%-43s %s\n", "NETWORK", "FROM");
    for (const auto& e : list)
        std::printf("%-43s %s\n", e.value("network", "").c_str(), util::escape_text(e.value("from", "")).c_str());
    return k_ok;
}

}  // namespace rp::cli
