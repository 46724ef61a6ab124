#include "config/config.hpp"
#include "config/limits_toml.hpp"

#include "util/endpoint.hpp"
#include "util/redact.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace rp::config {
namespace {

using core::make_error;

core::Result<util::Endpoint> util_parse_endpoint(std::string_view text) { return util::parse_endpoint(text); }

// Builds "FILE:LINE: key = value: problem".
// A value as shown in an error message: a store URL's userinfo and an API header never reach an
// error message or a log (util/redact.hpp).
std::string shown_value(std::string_view key, const std::string& value) {
    if (key == "store") return util::mask_url(value);
    if (key.ends_with("api_header")) return "***";
    return value;
}

// Reads the first line of the file holding a secret (api_header_file).
core::Result<std::string> read_secret_line(const std::string& path) {
    std::ifstream in(path);
    if (!in) return make_error("cannot read " + path + ": " + std::strerror(errno));
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return line;
}

struct Ctx {
    std::string file;
    std::string where(const toml::node& n, std::string_view key) const {
        std::ostringstream v;
        if (auto s = n.as_string()) v << '"' << shown_value(key, s->get()) << '"';
        else if (n.is_table()) v << "{...}";
        else if (n.is_array()) v << "[...]";
        else if (auto i = n.as_integer()) v << i->get();
        else if (auto f = n.as_floating_point()) v << f->get();
        else if (auto b = n.as_boolean()) v << (b->get() ? "true" : "false");
        else v << "(value)";
        return file + ":" + std::to_string(n.source().begin.line) + ": " + std::string(key) + " = " + v.str();
    }
    core::Error err(const toml::node& n, std::string_view key, const std::string& problem) const {
        return make_error(where(n, key) + ": " + problem);
    }
};

core::Result<std::string> get_string(const Ctx& c, const toml::node& n, std::string_view key) {
    if (auto s = n.as_string()) return s->get();
    return c.err(n, key, "expected a string");
}

core::Result<core::Duration> get_duration(const Ctx& c, const toml::node& n, std::string_view key) {
    if (auto i = n.as_integer()) {
        if (i->get() < 0) return c.err(n, key, "must not be negative");
        return core::Duration(std::chrono::seconds(i->get()));
    }
    auto s = get_string(c, n, key);
    if (!s) return c.err(n, key, "expected a duration such as \"30m\"");
    auto d = core::parse_duration(*s);
    if (!d) return c.err(n, key, d.error().message);
    return *d;
}

core::Result<std::int64_t> get_int(const Ctx& c, const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi) {
    auto i = n.as_integer();
    if (!i) return c.err(n, key, "expected an integer");
    if (i->get() < lo || i->get() > hi)
        return c.err(n, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return i->get();
}

core::Result<std::vector<std::string>> get_strings(const Ctx& c, const toml::node& n, std::string_view key) {
    std::vector<std::string> out;
    if (auto s = n.as_string()) {  // a single string is a one-element list
        out.push_back(s->get());
        return out;
    }
    auto a = n.as_array();
    if (!a) return c.err(n, key, "expected a string or a list of strings");
    for (const auto& e : *a) {
        auto s = e.as_string();
        if (!s) return c.err(e, key, "expected a string");
        out.push_back(s->get());
    }
    return out;
}

core::Result<std::vector<core::Cidr>> get_cidrs(const Ctx& c, const toml::node& n, std::string_view key) {
    auto list = get_strings(c, n, key);
    if (!list) return list.error();
    std::vector<core::Cidr> out;
    for (const auto& s : *list) {
        auto cidr = core::Cidr::parse(s);
        if (!cidr) return c.err(n, key, cidr.error().message);
        out.push_back(*cidr);
    }
    return out;
}

using Setter = std::function<core::Status(Config&, const Ctx&, const toml::node&)>;

// The one table of top-level keys. The man page relaypermit.toml(5) lists the same keys.
const std::map<std::string, Setter, std::less<>>& top_keys() {
    static const std::map<std::string, Setter, std::less<>> keys = {
        {"state_dir", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "state_dir");
             if (!s) return s.error();
             if (s->empty() || s->front() != '/') return c.err(n, "state_dir", "must be an absolute path");
             cfg.state_dir = *s;
             return core::ok();
         }},
        {"ttl", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto d = get_duration(c, n, "ttl");
             if (!d) return d.error();
             if (d->count() <= 0) return c.err(n, "ttl", "must be positive");
             cfg.ttl = *d;
             return core::ok();
         }},
        {"max_ttl", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto d = get_duration(c, n, "max_ttl");
             if (!d) return d.error();
             if (d->count() <= 0) return c.err(n, "max_ttl", "must be positive");
             cfg.max_ttl = *d;
             return core::ok();
         }},
        {"max_lifetime", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto d = get_duration(c, n, "max_lifetime");
             if (!d) return d.error();
             if (d->count() <= 0) return c.err(n, "max_lifetime", "must be positive");
             cfg.max_lifetime = *d;
             return core::ok();
         }},
        {"control_socket", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "control_socket");
             if (!s) return s.error();
             if (s->empty() || s->front() != '/') return c.err(n, "control_socket", "must be an absolute path");
             cfg.control_socket = *s;
             return core::ok();
         }},
        {"control_group", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "control_group");
             if (!s) return s.error();
             cfg.control_group = *s;
             return core::ok();
         }},
        {"user", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "user");
             if (!s) return s.error();
             cfg.user = *s;
             return core::ok();
         }},
        {"store", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "store");
             if (!s) return s.error();
             static const char* const schemes[] = {"redis://", "rediss://", "postgresql://", "postgres://",
                                                   "mysql://", "mariadb://"};
             const bool known = s->empty() || *s == "embedded" ||
                                std::any_of(std::begin(schemes), std::end(schemes),
                                            [&](const char* p) { return s->starts_with(p); });
             if (!known)
                 return c.err(n, "store", "use redis://, postgresql:// or mysql:// URL, or leave it out for the embedded store");
             cfg.store = *s;
             return core::ok();
         }},
        {"store_password_file", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "store_password_file");
             if (!s) return s.error();
             if (s->empty() || s->front() != '/') return c.err(n, "store_password_file", "must be an absolute path");
             cfg.store_password_file = *s;
             return core::ok();
         }},
        {"store_outage", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "store_outage");
             if (!s) return s.error();
             if (*s != "dunno" && *s != "cache")
                 return c.err(n, "store_outage", "use \"dunno\" (answer as if no permit) or \"cache\" (the permits known before the outage)");
             cfg.store_outage = *s;
             return core::ok();
         }},
        {"max_permits", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_int(c, n, "max_permits", 1, 1'000'000'000);
             if (!v) return v.error();
             cfg.max_permits = *v;
             return core::ok();
         }},
        {"log_level", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "log_level");
             if (!s) return s.error();
             static const std::set<std::string> levels = {"debug", "info", "notice", "warning", "error"};
             if (!levels.count(*s)) return c.err(n, "log_level", "use debug, info, notice, warning or error");
             cfg.log_level = *s;
             return core::ok();
         }},
        {"allow", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_cidrs(c, n, "allow");
             if (!v) return v.error();
             cfg.allow = *v;
             return core::ok();
         }},
        {"allow_file", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_strings(c, n, "allow_file");
             if (!v) return v.error();
             for (const auto& f : *v)
                 if (f.empty() || f.front() != '/') return c.err(n, "allow_file", "every file must be an absolute path");
             cfg.allow_file = *v;
             return core::ok();
         }},
        {"ignore", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_cidrs(c, n, "ignore");
             if (!v) return v.error();
             cfg.ignore = *v;
             return core::ok();
         }},
        {"ipv6_prefix", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_int(c, n, "ipv6_prefix", 32, 128);
             if (!v) return v.error();
             cfg.ipv6_prefix = static_cast<int>(*v);
             return core::ok();
         }},
        {"relayclient", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto s = get_string(c, n, "relayclient");
             if (!s) return s.error();
             cfg.relayclient = *s;
             return core::ok();
         }},
        {"ignore_mynetworks", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto b = n.as_boolean();
             if (!b) return c.err(n, "ignore_mynetworks", "expected true or false");
             cfg.ignore_mynetworks = b->get();
             return core::ok();
         }},
        {"servers", [](Config& cfg, const Ctx& c, const toml::node& n) -> core::Status {
             auto v = get_strings(c, n, "servers");
             if (!v) return v.error();
             cfg.servers = *v;
             return core::ok();
         }},
    };
    return keys;
}

core::Result<std::vector<std::int64_t>> get_ints(const Ctx& c, const toml::node& n, std::string_view key) {
    std::vector<std::int64_t> out;
    if (auto i = n.as_integer()) {
        out.push_back(i->get());
        return out;
    }
    auto a = n.as_array();
    if (!a) return c.err(n, key, "expected an integer or a list of integers");
    for (const auto& e : *a) {
        auto i = e.as_integer();
        if (!i) return c.err(e, key, "expected an integer");
        out.push_back(i->get());
    }
    return out;
}

core::Status check_endpoints(const Ctx& c, const toml::node& n, std::string_view key,
                             const std::vector<std::string>& eps, bool allow_udp, bool allow_tls) {
    for (const auto& e : eps) {
        std::string_view text = e;
        if (text.starts_with("tls:")) {
            if (!allow_tls) return c.err(n, key, "TLS is not available here: " + e);
            text.remove_prefix(4);
        }
        if (text.starts_with("udp:") && !allow_udp) return c.err(n, key, "needs a stream endpoint, not " + e);
        if (auto ep = util_parse_endpoint(text); !ep) return c.err(n, key, ep.error().message);
    }
    return core::ok();
}

core::Status parse_policy(Config& cfg, const Ctx& c, const toml::table& t) {
    for (const auto& [k, n] : t) {
        const std::string key = "policy." + std::string(k.str());
        if (k == "listen") {
            auto v = get_strings(c, n, key);
            if (!v) return v.error();
            for (const auto& e : *v)
                if (e.starts_with("udp:")) return c.err(n, key, "the policy service needs a stream endpoint, not " + e);
            if (auto st = check_endpoints(c, n, key, *v, false, false); !st) return st;
            cfg.policy.listen = *v;
        } else if (k == "max_request_bytes") {
            auto v = get_int(c, n, key, 1024, 1 << 24);
            if (!v) return v.error();
            cfg.policy.max_request_bytes = static_cast<std::size_t>(*v);
        } else if (k == "max_attributes") {
            auto v = get_int(c, n, key, 8, 100000);
            if (!v) return v.error();
            cfg.policy.max_attributes = static_cast<std::size_t>(*v);
        } else if (k == "idle_timeout") {
            auto v = get_duration(c, n, key);
            if (!v) return v.error();
            if (*v < std::chrono::seconds(1)) return c.err(n, key, "must be at least 1s");
            cfg.policy.idle_timeout = *v;
        } else if (k == "max_clients") {
            auto v = get_int(c, n, key, 1, 1000000);
            if (!v) return v.error();
            cfg.policy.max_clients = static_cast<std::size_t>(*v);
        } else {
            return c.err(n, key, "unknown key");
        }
    }
    return core::ok();
}

bool is_dropin_type(std::string_view type) { return type == "drac" || type == "whoson" || type == "relay-ctrl-udp"; }

// `listen` and `allow_file` of the drop-in protocol sources: tcp and udp endpoints (relay-ctrl:
// udp only), an absolute allow_file path.
core::Status parse_dropin_key(SourceConfig& s, const Ctx& c, const toml::node& v, const std::string& key,
                              const std::string& name) {
    if (name == "allow_file") {
        auto str = get_string(c, v, key);
        if (str && (str->empty() || str->front() != '/')) return c.err(v, key, "must be an absolute path");
        return str ? (s.allow_file = *str, core::ok()) : core::Status(str.error());
    }
    auto l = get_strings(c, v, key);
    if (auto st = l ? check_endpoints(c, v, key, *l, true, false) : core::Status(l.error()); !st) return st;
    for (const auto& e : *l) {
        if (e.starts_with("unix:")) return c.err(v, key, "a " + s.type + " source listens on tcp or udp, not " + e);
        if (s.type == "relay-ctrl-udp" && !e.starts_with("udp:"))
            return c.err(v, key, "relay-ctrl-udp listens on udp endpoints only, not " + e);
    }
    s.listen = *l;
    return core::ok();
}

// [limits]: budgets, caps and alerts (limits_toml.hpp).
core::Status parse_limits(Config& cfg, const Ctx& c, const toml::node& n) {
    auto t = n.as_table();
    if (!t) return c.err(n, "limits", "expected a [limits] table");
    for (const auto& [k, v] : *t) {
        const std::string key = "limits." + std::string(k.str());
        std::string error;
        if (!parse_limits_key(cfg.limits, k.str(), v, error)) return c.err(v, key, "unknown key");
        if (!error.empty()) return c.err(v, key, error);
    }
    return core::ok();
}

core::Status parse_sources(Config& cfg, const Ctx& c, const toml::node& n) {
    auto arr = n.as_array();
    if (!arr) return c.err(n, "source", "use [[source]] tables");
    std::set<std::string> names;
    static const std::map<std::string, std::set<std::string>> keys_by_type = {
        {"file", {"path"}},
        {"fifo", {"path", "mode", "group"}},
        {"syslog", {"listen", "allow_from", "tls_cert", "tls_key", "tls_ca"}},
        {"journald", {"path", "units", "comms", "exes", "uids"}},
        {"dovecot-auth-policy", {"listen", "allow_from", "api_header", "api_header_file"}},
        {"drac", {"listen", "allow_from", "allow_file"}},
        {"whoson", {"listen", "allow_from"}},
        {"relay-ctrl-udp", {"listen", "allow_from"}},
    };
    for (const auto& e : *arr) {
        auto t = e.as_table();
        if (!t) return c.err(e, "source", "use [[source]] tables");
        SourceConfig s{};
        s.line = static_cast<int>(e.source().begin.line);
        const toml::node* type_node = t->get("type");
        if (!type_node) return c.err(e, "source", "missing key 'type'");
        auto type = get_string(c, *type_node, "source.type");
        if (!type) return type.error();
        s.type = *type;
        auto kt = keys_by_type.find(s.type);
        if (kt == keys_by_type.end())
            return c.err(*type_node, "source.type", "unknown source type (use file, fifo, syslog, journald, dovecot-auth-policy, drac, whoson or relay-ctrl-udp)");
        for (const auto& [k, v] : *t) {
            const std::string key = "source." + std::string(k.str());
            const std::string name(k.str());
            if (name == "type") continue;
            if (name != "name" && !kt->second.count(name))
                return c.err(v, key, "unknown key for a " + s.type + " source");
            if (is_dropin_type(s.type) && (name == "listen" || name == "allow_file")) {
                if (auto st = parse_dropin_key(s, c, v, key, name); !st) return st;
                continue;
            }
            if (name == "name" || name == "path" || name == "group" || name == "tls_cert" || name == "tls_key" ||
                name == "tls_ca" || name == "api_header" || name == "api_header_file") {
                auto str = get_string(c, v, key);
                if (!str) return str.error();
                if (name == "name") s.name = *str;
                else if (name == "path") s.path = *str;
                else if (name == "group") s.group = *str;
                else if (name == "tls_cert") s.tls_cert = *str;
                else if (name == "tls_key") s.tls_key = *str;
                else if (name == "tls_ca") s.tls_ca = *str;
                else if (name == "api_header_file") {
                    if (str->empty() || str->front() != '/') return c.err(v, key, "must be an absolute path");
                    auto h = read_secret_line(*str);
                    if (!h) return c.err(v, key, h.error().message);
                    if (h->find(':') == std::string::npos) return c.err(v, key, "the file must hold \"Name: value\"");
                    s.api_header_file = *str;
                    s.api_header = *h;
                } else {
                    if (str->find(':') == std::string::npos) return c.err(v, key, "use \"Name: value\"");
                    s.api_header = *str;
                }
            } else if (name == "mode") {
                auto m = get_int(c, v, key, 0, 0777);
                if (!m) return m.error();
                s.mode = static_cast<std::uint32_t>(*m);
            } else if (name == "listen") {
                auto l = get_strings(c, v, key);
                if (!l) return l.error();
                const bool syslog = s.type == "syslog";
                if (auto st = check_endpoints(c, v, key, *l, syslog, syslog); !st) return st;
                s.listen = *l;
            } else if (name == "allow_from") {
                auto l = get_cidrs(c, v, key);
                if (!l) return l.error();
                s.allow_from = *l;
            } else if (name == "units" || name == "comms" || name == "exes") {
                auto l = get_strings(c, v, key);
                if (!l) return l.error();
                (name == "units" ? s.units : name == "comms" ? s.comms : s.exes) = *l;
            } else if (name == "uids") {
                auto l = get_ints(c, v, key);
                if (!l) return l.error();
                s.uids = *l;
            }
        }
        if ((s.type == "file" || s.type == "fifo") && (s.path.empty() || s.path.front() != '/'))
            return c.err(e, "source.path", "a " + s.type + " source needs an absolute path");
        if (s.type == "journald" && !s.path.empty() && s.path.front() != '/')
            return c.err(e, "source.path", "a journal path must be absolute");
        if (t->contains("api_header") && t->contains("api_header_file"))
            return c.err(e, "source.api_header_file", "set api_header or api_header_file, not both");
        if ((s.type == "syslog" || s.type == "dovecot-auth-policy" || s.type == "whoson" || s.type == "relay-ctrl-udp") &&
            s.listen.empty())
            return c.err(e, "source.listen", "a " + s.type + " source needs `listen`");
        const bool tls = std::any_of(s.listen.begin(), s.listen.end(), [](const auto& l) { return l.starts_with("tls:"); });
        if (tls && (s.tls_cert.empty() || s.tls_key.empty()))
            return c.err(e, "source.tls_cert", "a tls: listener needs tls_cert and tls_key");
        if (s.name.empty()) {
            if (!s.path.empty()) s.name = s.type + ":" + s.path;
            else if (!s.listen.empty()) s.name = s.type + ":" + s.listen.front();
            else s.name = s.type;
        }
        if (!names.insert(s.name).second) return c.err(e, "source.name", "duplicate source name '" + s.name + "'");
        cfg.sources.push_back(std::move(s));
    }
    return core::ok();
}

core::Status parse_listener(ListenerConfig& out, const Ctx& c, const toml::node& n, const std::string& table,
                            bool unix_only) {
    auto t = n.as_table();
    if (!t) return c.err(n, table, "expected a [" + table + "] table");
    for (const auto& [k, v] : *t) {
        const std::string key = table + "." + std::string(k.str());
        if (k != "listen") return c.err(v, key, "unknown key");
        auto l = get_strings(c, v, key);
        if (!l) return l.error();
        for (const auto& e : *l)
            if (unix_only && !e.starts_with("unix:")) return c.err(v, key, "needs a unix:/path endpoint, not " + e);
        if (auto st = check_endpoints(c, v, key, *l, false, false); !st) return st;
        out.listen = *l;
    }
    return core::ok();
}

core::Status parse_metrics(MetricsConfig& out, const Ctx& c, const toml::node& n) {
    auto t = n.as_table();
    if (!t) return c.err(n, "metrics", "expected a [metrics] table");
    for (const auto& [k, v] : *t) {
        const std::string key = "metrics." + std::string(k.str());
        if (k == "allow_from") {
            auto l = get_cidrs(c, v, key);
            if (!l) return l.error();
            out.allow_from = *l;
            continue;
        }
        if (k != "listen") return c.err(v, key, "unknown key");
        auto l = get_strings(c, v, key);
        if (!l) return l.error();
        if (auto st = check_endpoints(c, v, key, *l, false, false); !st) return st;
        out.listen = *l;
    }
    return core::ok();
}

core::Status parse_exports(Config& cfg, const Ctx& c, const toml::node& n) {
    auto arr = n.as_array();
    if (!arr) return c.err(n, "export", "use [[export]] tables");
    static const std::set<std::string> types = {"postfix-cdb", "postfix-lmdb", "postfix-hash", "sendmail-access",
                                                "tcprules-cdb", "relay-ctrl-dir", "opensmtpd-table"};
    for (const auto& e : *arr) {
        auto t = e.as_table();
        if (!t) return c.err(e, "export", "use [[export]] tables");
        ExportConfig x;
        x.line = static_cast<int>(e.source().begin.line);
        for (const auto& [k, v] : *t) {
            const std::string key = "export." + std::string(k.str());
            if (k == "after_write") {
                // An argv list run without a shell: a string would invite shell syntax.
                if (!v.is_array()) return c.err(v, key, "expected a list of strings (program and arguments, no shell)");
                auto argv = get_strings(c, v, key);
                if (!argv) return argv.error();
                if (argv->empty()) return c.err(v, key, "needs at least the program");
                for (const auto& a : *argv)
                    if (a.find('\0') != std::string::npos) return c.err(v, key, "an argument contains a NUL byte");
                if (argv->front().empty()) return c.err(v, key, "the program name is empty");
                x.after_write = std::move(*argv);
                continue;
            }
            if (k == "after_write_timeout") {
                auto d = get_duration(c, v, key);
                if (!d) return d.error();
                if (*d <= core::Duration::zero() || *d > std::chrono::hours(1))
                    return c.err(v, key, "must be more than 0 and at most 1h");
                x.after_write_timeout = *d;
                continue;
            }
            auto str = get_string(c, v, key);
            if (!str) return str.error();
            if (k == "type") {
                if (!types.count(*str))
                    return c.err(v, key, "unknown export type (use postfix-cdb, postfix-lmdb, postfix-hash, sendmail-access, tcprules-cdb, relay-ctrl-dir or opensmtpd-table)");
                x.type = *str;
            } else if (k == "path") x.path = *str;
            else if (k == "static") x.static_path = *str;
            else return c.err(v, key, "unknown key");
        }
        if (x.type.empty()) return c.err(e, "export", "missing key 'type'");
        if (x.path.empty() || x.path.front() != '/') return c.err(e, "export.path", "an export needs an absolute path");
        cfg.exports.push_back(std::move(x));
    }
    return core::ok();
}

core::Status parse_patterns(Config& cfg, const Ctx& c, const toml::node& n) {
    auto arr = n.as_array();
    if (!arr) return c.err(n, "pattern", "use [[pattern]] tables");
    for (const auto& e : *arr) {
        auto t = e.as_table();
        if (!t) return c.err(e, "pattern", "use [[pattern]] tables");
        PatternConfig p;
        p.line = static_cast<int>(e.source().begin.line);
        for (const auto& [k, v] : *t) {
            const std::string key = "pattern." + std::string(k.str());
            auto str = get_string(c, v, key);
            if (!str) return str.error();
            if (k == "name") p.name = *str;
            else if (k == "regex") p.regex = *str;
            else if (k == "role") {
                if (*str != "login" && *str != "session" && *str != "session-login")
                    return c.err(v, key, "use login, session or session-login");
                p.role = *str;
            } else return c.err(v, key, "unknown key");
        }
        if (p.name.empty()) return c.err(e, "pattern", "missing key 'name'");
        if (p.regex.empty()) return c.err(e, "pattern", "missing key 'regex'");
        auto has_group = [&](const std::string& g) {
            return p.regex.find("(?<" + g + ">") != std::string::npos || p.regex.find("(?P<" + g + ">") != std::string::npos ||
                   p.regex.find("(?'" + g + "'") != std::string::npos;
        };
        if (p.role != "session-login" && !has_group("ip"))
            return c.err(*t->get("regex"), "pattern.regex", "needs a named group (?<ip>...)");
        if (p.role != "login" && !has_group("pid"))
            return c.err(*t->get("regex"), "pattern.regex", "a " + p.role + " pattern needs a named group (?<pid>...)");
        cfg.patterns.push_back(std::move(p));
    }
    return core::ok();
}

}  // namespace

SourceConfig Config::default_source() {
    SourceConfig s;
    s.type = "file";
    s.path = "/var/log/mail.log";
    s.name = "file:/var/log/mail.log";
    return s;
}

std::vector<core::Cidr> Config::default_ignore() {
    return {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1/128")};
}

core::Result<Config> parse_config(std::string_view text, const std::string& file_name) {
    Config cfg;
    cfg.file = file_name;
    bool blank = true;
    for (char ch : text) {
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') { blank = false; break; }
    }
    if (blank) return cfg;  // an empty file means the built-in defaults
    toml::table root;
    try {
        root = toml::parse(text, file_name);
    } catch (const toml::parse_error& e) {
        return make_error(file_name + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
    }
    Ctx c{file_name};
    cfg.sources.clear();  // a non-empty file lists its sources explicitly
    for (const auto& [k, n] : root) {
        core::Status st = core::ok();
        if (auto it = top_keys().find(k.str()); it != top_keys().end()) st = it->second(cfg, c, n);
        else if (k == "source") st = parse_sources(cfg, c, n);
        else if (k == "pattern") st = parse_patterns(cfg, c, n);
        else if (k == "export") st = parse_exports(cfg, c, n);
        else if (k == "socketmap") st = parse_listener(cfg.socketmap, c, n, "socketmap", false);
        else if (k == "readsocket") st = parse_listener(cfg.readsocket, c, n, "readsocket", false);
        else if (k == "opensmtpd") st = parse_listener(cfg.opensmtpd, c, n, "opensmtpd", true);
        else if (k == "metrics") st = parse_metrics(cfg.metrics, c, n);
        else if (k == "limits") st = parse_limits(cfg, c, n);
        else if (k == "policy") {
            if (!n.is_table()) st = c.err(n, "policy", "expected a [policy] table");
            else st = parse_policy(cfg, c, *n.as_table());
        } else st = c.err(n, k.str(), "unknown key");
        if (!st) return st.error();
    }
    if (cfg.ttl > cfg.max_ttl)
        return make_error(file_name + ": ttl = \"" + core::format_duration(cfg.ttl) + "\" is longer than max_ttl = \"" +
                          core::format_duration(cfg.max_ttl) + "\" (raise max_ttl, or shorten ttl)");
    if (cfg.max_lifetime.count() > 0 && (cfg.max_lifetime < cfg.ttl || cfg.max_lifetime > cfg.max_ttl))
        return make_error(file_name + ": max_lifetime = \"" + core::format_duration(cfg.max_lifetime) +
                          "\" must lie between ttl (" + core::format_duration(cfg.ttl) + ") and max_ttl (" +
                          core::format_duration(cfg.max_ttl) + ")");
    return cfg;
}

core::Result<Config> load_config(const std::string& path, bool explicit_path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        struct stat st {};
        if (!explicit_path && stat(path.c_str(), &st) != 0 && errno == ENOENT) {
            Config cfg;
            return cfg;
        }
        return make_error("cannot read config file " + path + ": " + std::strerror(errno));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

}  // namespace rp::config
