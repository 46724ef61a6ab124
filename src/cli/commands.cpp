#include "cli/commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/arg_parser.hpp"
#include "cli/chain.hpp"
#include "cli/cmd_config.hpp"
#include "cli/cmd_exports.hpp"
#include "cli/cmd_import.hpp"
#include "cli/cmd_list.hpp"
#include "cli/cmd_scan.hpp"
#include "cli/offline.hpp"
#include "config/allow_file.hpp"
#include "config/config.hpp"
#include "core/address.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/daemon.hpp"
#include "matching/matcher.hpp"
#include "util/log.hpp"

namespace rp::cli {
namespace {

constexpr int k_ok = 0, k_no = 1, k_error = 2;
constexpr int k_control_timeout_ms = 5000;

const OptionSpec k_config_opt{"--config", "FILE", "config file (default /etc/relaypermit/relaypermit.toml)"};

struct Command {
    CommandSpec spec;
    std::function<int(const ParsedArgs&)> run;
};

void err(const std::string& msg) { std::fprintf(stderr, "relaypermit: %s\n", util::escape_text(msg).c_str()); }

core::Result<config::Config> load(const ParsedArgs& a) {
    const bool explicit_path = a.has("--config");
    return config::load_config(a.get("--config", config::k_default_path), explicit_path);
}

// `why` (optional) tells a daemon that is not running from other failures, for the fallbacks.
core::Result<nlohmann::json> call(const ParsedArgs& a, const nlohmann::json& req,
                                  daemon::ControlFailure* why = nullptr) {
    auto cfg = load(a);
    if (!cfg) return cfg.error();
    auto reply = daemon::control_call(cfg->control_socket, req, k_control_timeout_ms, why);
    if (!reply) return reply.error();
    if (!reply->value("ok", false)) return core::make_error(reply->value("error", std::string("daemon refused the request")));
    return reply;
}

// `list` and `check` with the daemon stopped: the permit store, read-only (cli/offline.hpp).
int check_offline_cmd(const ParsedArgs& a, const core::Address& ip) {
    auto cfg = config::load_config_and_allow_files(a.get("--config", config::k_default_path), a.has("--config"));
    auto v = cfg ? check_offline(*cfg, ip, core::SystemClock().now()) : core::Result<OfflineVerdict>(cfg.error());
    if (!v) {
        err(v.error().message);
        return k_error;
    }
    err(k_not_running_note);
    if (a.has("--json")) {
        nlohmann::json j = {{"ip", ip.to_string()}, {"permitted", v->permitted}, {"daemon", false}};
        if (!v->static_allow.empty()) j.update({{"kind", "allow"}, {"network", v->static_allow}});
        else if (v->permit) j.update({{"kind", "permit"}, {"user", v->permit->user}, {"expires", v->permit->expires}});
        std::printf("%s\n", j.dump(2).c_str());
        return v->permitted ? k_ok : k_no;
    }
    if (!v->permitted) {
        std::printf("not permitted\n");
        return k_no;
    }
    if (!v->static_allow.empty())
        std::printf("permitted: static allow %s\n", v->static_allow.c_str());
    else
        std::printf("permitted: permit for %s until %s\n", v->permit->user.empty() ? "-" : v->permit->user.c_str(),
                    v->permit->expires.c_str());
    return k_ok;
}

int cmd_run(const ParsedArgs& a) {
    daemon::RunOptions opts;
    opts.explicit_config = a.has("--config");
    opts.config_path = a.get("--config", config::k_default_path);
    return daemon::run_daemon(opts);
}

int cmd_check(const ParsedArgs& a) {
    if (a.has("--chain")) return run_check_chain(a.get("--config", config::k_default_path), a.has("--config"), a.tail);
    if (a.positionals.size() != 1) {
        err("'check' needs exactly one IP (or --chain -- PROGRAM)");
        return k_error;
    }
    if (!core::Address::parse(a.positionals[0])) {
        err("not an IP address: '" + a.positionals[0] + "'");
        return k_error;
    }
    daemon::ControlFailure why{};
    auto r = call(a, {{"cmd", "check"}, {"ip", a.positionals[0]}}, &why);
    if (!r && why == daemon::ControlFailure::not_running) return check_offline_cmd(a, *core::Address::parse(a.positionals[0]));
    if (!r) {
        err(r.error().message);
        return k_error;
    }
    if (a.has("--json")) {  // the daemon's answer: permitted, kind, network or user and expires
        r->erase("ok");
        (*r)["ip"] = a.positionals[0];
        (*r)["daemon"] = true;
        std::printf("%s\n", r->dump(2).c_str());
        return (*r)["permitted"].get<bool>() ? k_ok : k_no;
    }
    if (!(*r)["permitted"].get<bool>()) {
        std::printf("not permitted\n");
        return k_no;
    }
    if (r->value("kind", "") == "allow")
        std::printf("permitted: static allow %s\n", r->value("network", "").c_str());
    else
        std::printf("permitted: permit for %s until %s\n",  // a user name may hold terminal escapes
                    r->value("user", "").empty() ? "-" : util::escape_value(r->value("user", "")).c_str(),
                    r->value("expires", "").c_str());
    return k_ok;
}


// Exit 0: granted (or spooled while the daemon is stopped); 1: the policy refused (an address in
// `ignore`, a ttl beyond max_ttl, ...); 2: any other error.
int allow_through_daemon(const ParsedArgs& a, const nlohmann::json& req, const core::Address& ip) {
    auto cfg = load(a);
    if (!cfg) {
        err(cfg.error().message);
        return k_error;
    }
    daemon::ControlFailure why{};
    auto r = daemon::control_call(cfg->control_socket, req, k_control_timeout_ms, &why);
    if (!r && why == daemon::ControlFailure::not_running) {
        std::optional<core::Duration> ttl;
        if (req.contains("ttl_ms")) ttl = std::chrono::milliseconds(req["ttl_ms"].get<std::int64_t>());
        if (ttl && *ttl > cfg->max_ttl) {
            err("refused: a ttl must be at most max_ttl (" + core::format_duration(cfg->max_ttl) + "); no permit granted");
            return k_no;
        }
        const auto sp = spool_offline(*cfg, ip, req.value("user", std::string()), ttl, core::SystemClock().now());
        if (sp.kind == SpoolOutcome::Kind::ignored) {
            err("refused: " + sp.message + "; no permit granted");
            return k_no;
        }
        if (sp.kind == SpoolOutcome::Kind::failed) {
            err(r.error().message + "; cannot spool the login either: " + sp.message);
            return k_error;
        }
        std::printf("the daemon is not running; %s %s\n", ip.to_string().c_str(), sp.message.c_str());
        return k_ok;
    }
    if (!r) {
        err(r.error().message);
        return k_error;
    }
    if (!r->value("ok", false)) {
        err(r->value("error", std::string("daemon refused the request")));
        return r->contains("refused") ? k_no : k_error;
    }
    const auto& p = (*r)["permit"];
    std::printf("permitted: %s until %s\n", p.value("ip", "").c_str(), p.value("expires", "").c_str());
    return k_ok;
}

int cmd_allow(const ParsedArgs& a) {
    if (a.has("--chain")) return run_allow_chain(a.get("--config", config::k_default_path), a.has("--config"), a.tail);
    if (a.positionals.empty()) {
        err("missing IP for 'allow'");
        return k_error;
    }
    if (!core::Address::parse(a.positionals[0])) {
        err("not an IP address: '" + a.positionals[0] + "'");
        return k_error;
    }
    nlohmann::json req = {{"cmd", "allow"}, {"ip", a.positionals[0]}};
    if (a.has("--user")) req["user"] = a.get("--user");
    if (a.has("--ttl")) {
        auto d = core::parse_duration(a.get("--ttl"));
        if (!d || d->count() <= 0) {
            err(d ? "--ttl must be positive" : d.error().message);
            return k_error;
        }
        req["ttl_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
    }
    return allow_through_daemon(a, req, *core::Address::parse(a.positionals[0]));
}

int cmd_revoke(const ParsedArgs& a) {
    nlohmann::json req = {{"cmd", "revoke"}};
    if (a.has("--user")) {
        if (!a.positionals.empty()) {
            err("give either an IP or --user, not both");
            return k_error;
        }
        req["user"] = a.get("--user");
    } else {
        if (a.positionals.empty()) {
            err("missing IP (or --user U) for 'revoke'");
            return k_error;
        }
        if (!core::Address::parse(a.positionals[0])) {
            err("not an IP address: '" + a.positionals[0] + "'");
            return k_error;
        }
        req["ip"] = a.positionals[0];
    }
    auto r = call(a, req);
    if (!r) {
        err(r.error().message);
        return k_error;
    }
    const auto removed = (*r)["removed"].get<std::size_t>();
    std::printf("revoked %zu permit%s\n", removed, removed == 1 ? "" : "s");
    return removed > 0 ? k_ok : k_no;
}

int cmd_status(const ParsedArgs& a) {
    auto r = call(a, {{"cmd", "status"}});
    if (!r) {
        err(r.error().message);
        return k_error;
    }
    if (a.has("--json")) {
        r->erase("ok");
        std::printf("%s\n", r->dump(2).c_str());
        return k_ok;
    }
    std::printf("relaypermit %s, up %llds, store %s\n", r->value("version", "").c_str(),
                static_cast<long long>(r->value("uptime_s", 0)), r->value("store", "").c_str());
    if (const auto& ss = r->value("store_status", nlohmann::json::object()); ss.value("shared", false))
        std::printf("store: %s; queued %llu, pushed %llu, remote changes %llu, connects %llu, outages %llu, "
                    "outage answers %llu%s%s\n",
                    ss.value("available", false) ? "available" : "UNAVAILABLE", ss.value("queued", 0ULL),
                    ss.value("pushed", 0ULL), ss.value("remote_changes", 0ULL), ss.value("connects", 0ULL),
                    ss.value("outages", 0ULL), ss.value("outage_answers", 0ULL),
                    ss.value("last_error", "").empty() ? "" : "; last error: ", ss.value("last_error", "").c_str());
    else if (ss.contains("written"))  // the embedded store's writer thread
        std::printf("store: written %llu, queued %llu, write failures %llu, queue full %llu, refused (max_permits) %llu%s%s\n",
                    ss.value("written", 0ULL), ss.value("queued", 0ULL), ss.value("write_failures", 0ULL),
                    ss.value("queue_full", 0ULL), ss.value("refused", 0ULL),
                    ss.value("last_error", "").empty() ? "" : "; last error: ", ss.value("last_error", "").c_str());
    std::printf("permits: %zu live; grants %llu, extends %llu, ignored %llu, stale %llu, expired %llu, revoked %llu\n",
                r->value("permits", std::size_t{0}), r->value("grants", 0ULL), r->value("extends", 0ULL),
                r->value("ignored", 0ULL), r->value("stale", 0ULL), r->value("expired", 0ULL), r->value("revoked", 0ULL));
    if (const auto& refused = r->value("refused", nlohmann::json::object()); !refused.empty())
        std::printf("refused: ignored %llu, stale %llu, untimed backlog %llu, ttl out of bounds %llu\n",
                    refused.value("ignored", 0ULL), refused.value("stale", 0ULL), refused.value("untimed_backlog", 0ULL),
                    refused.value("ttl_out_of_bounds", 0ULL));
    for (const auto& s : (*r)["sources"])
        std::printf("source %s: lines %llu, matches %llu, grants %llu, malformed %llu, untrusted %llu, dropped %llu, "
                    "filtered %llu\n",
                    s.value("name", "").c_str(), s.value("lines", 0ULL), s.value("matches", 0ULL),
                    s.value("grants", 0ULL), s.value("malformed", 0ULL), s.value("untrusted", 0ULL),
                    s.value("dropped", 0ULL), s.value("filtered", 0ULL));
    for (const auto& f : (*r)["frontends"])
        std::printf("frontend %s: connections %llu (%llu open, %llu refused), requests %llu, permitted %llu, malformed %llu\n",
                    f.value("name", "").c_str(), f.value("connections", 0ULL), f.value("active", 0ULL),
                    f.value("refused", 0ULL), f.value("requests", 0ULL), f.value("permitted", 0ULL),
                    f.value("malformed", 0ULL));
    print_export_status(r->value("exports", nlohmann::json::array()));
    if (const auto& l = r->value("limits", nlohmann::json::object()); !l.empty())  // [limits] refusals
        std::printf("limits: recipients %llu, messages %llu, addresses_per_user %llu, permits_per_prefix %llu, "
                    "replaced %llu, alerts %llu\n",
                    l.value("recipients", 0ULL), l.value("messages", 0ULL), l.value("addresses_per_user", 0ULL),
                    l.value("permits_per_prefix", 0ULL), l.value("replaced", 0ULL), l.value("alerts", 0ULL));
    if (const auto& ses = r->value("sessions", nlohmann::json::object()); ses.value("enabled", false))  // max_lifetime
        std::printf("sessions: %llu open; opened %llu, ended %llu, capped %llu, dropped %llu, save failures %llu\n",
                    ses.value("open", 0ULL), ses.value("opened", 0ULL), ses.value("ended", 0ULL),
                    ses.value("capped", 0ULL), ses.value("dropped", 0ULL), ses.value("save_failures", 0ULL));
    return k_ok;
}

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {{"run", "", 0, 0, {k_config_opt}, "run the daemon in the foreground"}, cmd_run},
        {{"scan", "[FILE...]", 0, -1,
          {k_config_opt,
           {"--pattern", "NAME", "only this pattern set (built-in server or [[pattern]] name); repeatable", true},
           {"--explain", "", "add the matching SERVER/PATTERN, the login's time and where it came from as extra columns"},
           {"--threads", "N", "threads for large files (default: CPUs, at most 4); output is the same"},
           {"--read-path", "P", "how files are read: auto (measured on the chunks; default), read or mmap"},
           {"--stats", "", "print the read path taken (and why) to stderr"}},
          "print IP<TAB>USER<TAB>SERVER for each successful login in FILEs (or stdin)"},
         cmd_scan},
        {{"list", "", 0, 0,
          {k_config_opt,
           {"--user", "NAME", "only the permits of this user"},
           {"--ip", "CIDR", "only the permits overlapping this network or address"},
           {"--source", "NAME", "only the permits granted by this source"},
           {"--static", "", "the static allow list instead"},
           {"--json", "", "print JSON"}},
          "list live permits (streamed, in table order)"},
         cmd_list},
        {{"import", "FORMAT [PATH]", 1, 2,
          {k_config_opt, {"--dry-run", "", "show what would be imported; change nothing"},
           {"--url", "URL", "sql: postgresql:// or mysql:// database"}, {"--query", "SQL", "sql: rows of address, login time[, user]"},
           {"--ttl", "D", "lifetime of entries without an expiry (default: ttl)"}},
          "import live permits of pop-before-smtp, drac, relay-ctrl, sql, sendmail-access (static: allow lines)"},
         cmd_import},
        {{"allow", "IP", 0, 1,
          {k_config_opt, {"--user", "U", "user name to record"}, {"--ttl", "D", "lifetime (default: ttl)"},
           {"--chain", "", "exec chain: grant for $TCPREMOTEIP or $IP (user $USER/$AUTHUSER), then exec the program after --"}},
          "grant a permit for IP (or, with --chain, for the exec chain's client)", "--chain [--config FILE] -- PROGRAM [ARGS]"},
         cmd_allow},
        {{"revoke", "IP", 0, 1, {k_config_opt, {"--user", "U", "revoke every permit of user U"}},
          "remove the permits covering IP (or of --user U)"},
         cmd_revoke},
        {{"check", "IP", 0, 1,
          {k_config_opt, {"--json", "", "print JSON"},
           {"--chain", "", "exec chain (qmail): set RELAYCLIENT if $TCPREMOTEIP may relay, then exec the program after --"}},
          "exit 0 if IP may relay now (and say why), 1 if not", "--chain [--config FILE] -- PROGRAM [ARGS]"},
         cmd_check},
        {{"status", "", 0, 0, {k_config_opt, {"--json", "", "print JSON"}}, "show counters"}, cmd_status},
        {{"config check", "", 0, 0, {k_config_opt},
          "validate the configuration: every error of the file, listeners, static files, readable secrets"},
         cmd_config_check},
        {{"config show", "", 0, 0,
          {k_config_opt, {"--non-default", "", "only the keys the file sets (like postconf -n)"}},
          "print the effective configuration with every default, secrets masked (like postconf)"},
         cmd_config_show},
        {{"exports clean", "", 0, 0, {k_config_opt},
          "rewrite every [[export]] without permits (static parts only; ExecStopPost= after a crash)"},
         cmd_exports_clean},
    };
    return table;
}

void print_help() {
    std::printf("relaypermit %s: POP/IMAP-before-SMTP relay permits\n\ncommands:\n", RELAYPERMIT_VERSION);
    for (const auto& c : commands()) {
        std::string left = "  " + c.spec.name + (c.spec.positionals.empty() ? "" : " " + c.spec.positionals);
        if (left.size() < 24) left.resize(24, ' ');
        std::printf("%s%s\n", left.c_str(), c.spec.summary.c_str());
    }
    std::printf("\nEvery command takes --config FILE. 'relaypermit help COMMAND' for its options; see relaypermit(8).\n");
}

// The usage of every two-word command starting with `group` ("config"); false if none does.
bool print_group(const std::string& group) {
    bool any = false;
    for (const auto& c : commands())
        if (c.spec.name.starts_with(group + " ")) {
            std::printf("%s%s", any ? "\n" : "", usage(c.spec).c_str());
            any = true;
        }
    return any;
}

// `relaypermit help [COMMAND [SUBCOMMAND]]`: the usage of that command or group, else the list.
int print_help_for(const std::vector<std::string>& argv) {
    if (argv.size() > 1) {
        std::string name = argv[1];
        if (argv.size() > 2) name += " " + argv[2];
        for (const auto& c : commands())
            if (c.spec.name == name) {
                std::printf("%s", usage(c.spec).c_str());
                return k_ok;
            }
        if (print_group(argv[1])) return k_ok;
    }
    print_help();
    return k_ok;
}

// How many words of `argv` name command `c` (two-word commands, "config check", match on both
// words); 0 when they do not name it.
std::size_t words_naming(const Command& c, const std::vector<std::string>& argv) {
    const auto space = c.spec.name.find(' ');
    if (space == std::string::npos) return argv[0] == c.spec.name ? 1 : 0;
    if (argv.size() < 2 || argv[0] != c.spec.name.substr(0, space) || argv[1] != c.spec.name.substr(space + 1))
        return 0;
    return 2;
}

// Runs command `c` with the words after its name: its usage for --help/-h (before any "--"),
// else its parsed options, or the parse error and its usage.
int run_command(const Command& c, const std::vector<std::string>& rest) {
    for (const auto& r : rest) {
        if (r == "--") break;
        if (r == "--help" || r == "-h") {
            std::printf("%s", usage(c.spec).c_str());
            return k_ok;
        }
    }
    auto parsed = parse_args(c.spec, rest);
    if (!parsed) {
        err(parsed.error().message);
        std::fprintf(stderr, "%s", usage(c.spec).c_str());
        return k_error;
    }
    return c.run(*parsed);
}

}  // namespace

int dispatch(const std::vector<std::string>& argv) {
    if (argv.empty()) {
        print_help();
        return k_error;
    }
    if (argv[0] == "--version" || argv[0] == "-V" || argv[0] == "version") {
        std::printf("relaypermit %s\n", RELAYPERMIT_VERSION);
        return k_ok;
    }
    if (argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") return print_help_for(argv);
    // "config", "config --help": the usage of each "config ..." command.
    if (argv.size() == 1 || argv[1] == "--help" || argv[1] == "-h") {
        const bool asked = argv.size() > 1;
        if (print_group(argv[0])) {
            if (!asked) err("'" + argv[0] + "' needs a subcommand");
            return asked ? k_ok : k_error;
        }
    }
    for (const auto& c : commands()) {
        const std::size_t consumed = words_naming(c, argv);
        if (consumed == 0) continue;
        return run_command(c, std::vector<std::string>(argv.begin() + static_cast<std::ptrdiff_t>(consumed), argv.end()));
    }
    err("unknown command '" + argv[0] + "' (try 'relaypermit --help')");
    return k_error;
}

}  // namespace rp::cli
