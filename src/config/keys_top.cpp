// The top-level keys of relaypermit.toml: one row each, in the order of relaypermit.toml(5).
#include <algorithm>

#include "config/tables.hpp"
#include "util/redact.hpp"

namespace rp::config {
namespace {

core::Status set_store(Config& cfg, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    static const char* const schemes[] = {"redis://", "rediss://", "postgresql://", "postgres://", "mysql://", "mariadb://"};
    const bool known = s->empty() || *s == "embedded" ||
                       std::any_of(std::begin(schemes), std::end(schemes), [&](const char* p) { return s->starts_with(p); });
    if (!known)
        return c.err(n, key, "use redis://, postgresql:// or mysql:// URL, or leave it out for the embedded store");
    cfg.store = *s;
    return core::ok();
}

core::Status set_store_outage(Config& cfg, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    auto v = from_string<StoreOutage>(*s);
    if (!v)
        return c.err(n, key, "use \"dunno\" (answer as if no permit) or \"cache\" (the permits known before the outage)");
    cfg.store_outage = *v;
    return core::ok();
}

// Every file an absolute path; the files are read after the TOML (allow_file.hpp).
core::Status set_allow_file(Config& cfg, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_strings(c, n, key);
    if (!v) return v.error();
    for (const auto& f : *v)
        if (f.empty() || f.front() != '/') return c.err(n, key, "every file must be an absolute path");
    cfg.allow_file = *v;
    return core::ok();
}

// 0 means unset; the bounds against ttl and max_ttl are checked after every key (validate_top).
core::Status set_max_lifetime(Config& cfg, const Ctx& c, const toml::node& n, const std::string& key) {
    auto d = get_duration(c, n, key);
    if (!d) return d.error();
    cfg.max_lifetime = *d;
    return core::ok();
}

const KeyRow<Config> k_top_keys[] = {
    {{"state_dir", "path", "where permits.db and the log checkpoints live"},
     set_abs_path<&Config::state_dir>, show_member<&Config::state_dir>},
    {{"store", "string", "store URL: redis://, postgresql://, mysql://; empty = the embedded store", true},
     set_store, show_member<&Config::store>},
    {{"store_password_file", "path", "the shared store's password, read from this file"},
     set_abs_path<&Config::store_password_file>, show_path<&Config::store_password_file>},
    {{"store_outage", "string", "lookups while a shared store is unreachable: dunno or cache"},
     set_store_outage, show_member<&Config::store_outage>},
    {{"max_permits", "integer", "permits held at most; past it new networks are refused"},
     set_int<&Config::max_permits, 1, 1'000'000'000>, show_member<&Config::max_permits>},
    {{"ttl", "duration", "how long a login permits relaying, from the login's time"},
     set_duration<&Config::ttl>, show_member<&Config::ttl>},
    {{"max_ttl", "duration", "the longest lifetime of any permit (allow --ttl); at least ttl"},
     set_duration<&Config::max_ttl>, show_member<&Config::max_ttl>},
    {{"max_lifetime", "duration", "session-aware lifetime: open session + ttl, at most this long after the login; 0 = unset"},
     set_max_lifetime, show_member<&Config::max_lifetime>},
    {{"control_socket", "path", "the control socket of list, allow, revoke, check, status"},
     set_abs_path<&Config::control_socket>, show_member<&Config::control_socket>},
    {{"control_group", "string", "a group allowed to use the control socket, besides root"},
     set_string<&Config::control_group>, show_member<&Config::control_group>},
    {{"user", "string", "run as this user once privileged resources are open"},
     set_string<&Config::user>, show_member<&Config::user>},
    {{"log_level", "string", "debug, info, notice, warning or error"},
     set_enum<&Config::log_level>, show_member<&Config::log_level>},
    {{"allow", "networks", "networks always permitted (static)"},
     set_cidrs<&Config::allow>, show_member<&Config::allow>},
    {{"allow_file", "paths", "files of static networks (one CIDR or address a line), re-read on SIGHUP"},
     set_allow_file, show_member<&Config::allow_file>},
    {{"ignore", "networks", "logins from these networks never create permits"},
     set_cidrs<&Config::ignore>, show_member<&Config::ignore>},
    {{"ipv6_prefix", "integer", "the IPv6 prefix length one permit covers (32 to 128)"},
     set_int<&Config::ipv6_prefix, 32, 128>, show_member<&Config::ipv6_prefix>},
    {{"ignore_mynetworks", "boolean", "add Postfix's mynetworks (postconf -h) to ignore"},
     set_bool<&Config::ignore_mynetworks>, show_member<&Config::ignore_mynetworks>},
    {{"relayclient", "string", "the RELAYCLIENT value of check --chain and tcprules-cdb exports"},
     set_string<&Config::relayclient>, show_member<&Config::relayclient>},
    {{"servers", "strings", "the built-in pattern sets enabled; empty = all"},
     set_strings<&Config::servers>, show_member<&Config::servers>},
};

}  // namespace

std::span<const KeyRow<Config>> top_key_rows() { return k_top_keys; }

void validate_top(const Config& cfg, const Ctx& c, const toml::table& root) {
    if (cfg.ttl > cfg.max_ttl)
        c.fail(0, "ttl",
               c.file + ": ttl = \"" + core::format_duration(cfg.ttl) + "\" is longer than max_ttl = \"" +
                   core::format_duration(cfg.max_ttl) + "\" (raise max_ttl, or shorten ttl)");
    const auto lifetime = cfg.max_lifetime;
    if (lifetime > core::Duration::zero() && (lifetime < cfg.ttl || lifetime > cfg.max_ttl)) {
        const toml::node* n = root.get("max_lifetime");
        const int line = n ? line_of(*n) : 0;
        c.fail(line, "max_lifetime",
               c.file + ":" + std::to_string(line) + ": max_lifetime = \"" + core::format_duration(lifetime) +
                   "\" must lie between ttl (" + core::format_duration(cfg.ttl) + ") and max_ttl (" +
                   core::format_duration(cfg.max_ttl) + ")");
    }
}

}  // namespace rp::config
