// [[source]]: the keys a source table may hold, and one row per source type naming the keys it
// accepts and its checks. The daemon opens a source through its own row per SourceType
// (daemon/wiring.cpp).
#include <algorithm>
#include <set>

#include "config/tables.hpp"

namespace rp::config {
namespace {

core::Status set_type(SourceConfig& s, const Ctx& c, const toml::node& n, const std::string& key) {
    auto str = get_string(c, n, key);
    if (!str) return str.error();
    auto t = from_string<SourceType>(*str);
    if (!t) return c.err(n, key, "unknown source type (use " + names_list(SourceType{}) + ")");
    s.type = *t;
    return core::ok();
}

core::Status set_source_listen(SourceConfig& s, const Ctx& c, const toml::node& n, const std::string& key) {
    auto l = get_strings(c, n, key);
    if (!l) return l.error();
    const ListenRule rule = source_kind(s.type).listen;
    const bool udp = rule != ListenRule::stream, tls = rule == ListenRule::any;
    if (auto st = check_endpoints(c, n, key, *l, udp, tls); !st) return st;
    for (const auto& e : *l) {
        if (rule >= ListenRule::network && e.starts_with("unix:"))
            return c.err(n, key, "a " + std::string(to_string(s.type)) + " source listens on tcp or udp, not " + e);
        if (rule == ListenRule::udp && !e.starts_with("udp:"))
            return c.err(n, key, std::string(to_string(s.type)) + " listens on udp endpoints only, not " + e);
    }
    s.listen = *l;
    return core::ok();
}

core::Status set_uids(SourceConfig& s, const Ctx& c, const toml::node& n, const std::string& key) {
    auto l = get_ints(c, n, key);
    if (!l) return l.error();
    s.uids = *l;
    return core::ok();
}

core::Status set_api_header(SourceConfig& s, const Ctx& c, const toml::node& n, const std::string& key) {
    auto str = get_string(c, n, key);
    if (!str) return str.error();
    if (str->find(':') == std::string::npos) return c.err(n, key, "use \"Name: value\"");
    s.api_header = *str;
    return core::ok();
}

// The header is read now, so a reload sees a new one.
core::Status set_api_header_file(SourceConfig& s, const Ctx& c, const toml::node& n, const std::string& key) {
    auto str = get_string(c, n, key);
    if (!str) return str.error();
    if (str->empty() || str->front() != '/') return c.err(n, key, "must be an absolute path");
    auto h = read_secret_line(*str);
    if (!h) return c.err(n, key, h.error().message);
    if (h->find(':') == std::string::npos) return c.err(n, key, "the file must hold \"Name: value\"");
    s.api_header_file = *str;
    s.api_header = *h;
    return core::ok();
}

std::string show_mode(const SourceConfig& s) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0o%03o", static_cast<unsigned>(s.mode));
    return buf;
}

const KeyRow<SourceConfig> k_source_keys[] = {
    {{"type", "string", "the source type"}, set_type, show_member<&SourceConfig::type>},
    {{"name", "string", "shown as source= in audit lines; keys the checkpoint (default TYPE:PATH or TYPE:LISTEN)"},
     set_string<&SourceConfig::name>, show_member<&SourceConfig::name>},
    {{"path", "path", "file: the log; fifo: the pipe; journald: a journal directory or file"},
     set_string<&SourceConfig::path>, show_member<&SourceConfig::path>},
    {{"listen", "endpoints", "where it listens"}, set_source_listen, show_member<&SourceConfig::listen>},
    {{"allow_from", "networks", "peers allowed on network listeners; empty = loopback"},
     set_cidrs<&SourceConfig::allow_from>, show_member<&SourceConfig::allow_from>},
    {{"tls_cert", "path", "PEM certificate of tls: listeners"}, set_string<&SourceConfig::tls_cert>,
     show_member<&SourceConfig::tls_cert>},
    {{"tls_key", "path", "PEM private key of tls: listeners"}, set_string<&SourceConfig::tls_key>,
     show_member<&SourceConfig::tls_key>},
    {{"tls_ca", "path", "clients must present a certificate this CA signed"}, set_string<&SourceConfig::tls_ca>,
     show_member<&SourceConfig::tls_ca>},
    {{"mode", "integer", "permissions of a pipe the daemon creates"}, set_int<&SourceConfig::mode, 0, 0777>, show_mode},
    {{"group", "string", "group of a pipe the daemon creates"}, set_string<&SourceConfig::group>,
     show_member<&SourceConfig::group>},
    {{"units", "strings", "_SYSTEMD_UNIT values an entry must have"}, set_strings<&SourceConfig::units>,
     show_member<&SourceConfig::units>},
    {{"comms", "strings", "_COMM values an entry must have"}, set_strings<&SourceConfig::comms>,
     show_member<&SourceConfig::comms>},
    {{"exes", "strings", "_EXE values an entry must have"}, set_strings<&SourceConfig::exes>,
     show_member<&SourceConfig::exes>},
    {{"uids", "integers", "_UID values an entry must have"}, set_uids, show_member<&SourceConfig::uids>},
    {{"api_header", "string", "the \"Name: value\" header Dovecot must send", true}, set_api_header,
     show_member<&SourceConfig::api_header>},
    {{"api_header_file", "path", "a file holding that header line (kept out of the config)"}, set_api_header_file,
     show_path<&SourceConfig::api_header_file>},
    {{"allow_file", "path", "drac: rpc.dracd's dracd.allow, trusted callers besides allow_from"},
     set_abs_path<&SourceConfig::allow_file>, show_path<&SourceConfig::allow_file>},
};

core::Status needs_absolute_path(const SourceConfig& s, const Ctx& c, const toml::table& t) {
    if (s.path.empty() || s.path.front() != '/')
        return c.err(t, "source.path", "a " + std::string(to_string(s.type)) + " source needs an absolute path");
    return core::ok();
}

core::Status check_journald(const SourceConfig& s, const Ctx& c, const toml::table& t) {
    if (!s.path.empty() && s.path.front() != '/') return c.err(t, "source.path", "a journal path must be absolute");
    return core::ok();
}

core::Status needs_listen(const SourceConfig& s, const Ctx& c, const toml::table& t) {
    if (s.listen.empty())
        return c.err(t, "source.listen", "a " + std::string(to_string(s.type)) + " source needs `listen`");
    return core::ok();
}

core::Status no_checks(const SourceConfig&, const Ctx&, const toml::table&) { return core::ok(); }

core::Status check_syslog(const SourceConfig& s, const Ctx& c, const toml::table& t) {
    if (auto st = needs_listen(s, c, t); !st) return st;
    if (s.has_tls_listener() && (s.tls_cert.empty() || s.tls_key.empty()))
        return c.err(t, "source.tls_cert", "a tls: listener needs tls_cert and tls_key");
    return core::ok();
}

core::Status check_auth_policy(const SourceConfig& s, const Ctx& c, const toml::table& t) {
    if (t.contains("api_header") && t.contains("api_header_file"))
        return c.err(t, "source.api_header_file", "set api_header or api_header_file, not both");
    return needs_listen(s, c, t);
}

// One row per SourceType, in enum order (checked below).
const SourceKindRow k_source_kinds[] = {
    {SourceType::file, "a log file, followed across rotation", {"path"}, ListenRule::stream, needs_absolute_path},
    {SourceType::fifo, "a named pipe a syslog daemon writes", {"path", "mode", "group"}, ListenRule::stream,
     needs_absolute_path},
    {SourceType::syslog, "a syslog receiver (udp, tcp, tls, unix)",
     {"listen", "allow_from", "tls_cert", "tls_key", "tls_ca"}, ListenRule::any, check_syslog},
    {SourceType::journald, "the systemd journal, by trusted fields", {"path", "units", "comms", "exes", "uids"},
     ListenRule::stream, check_journald},
    {SourceType::dovecot_auth_policy, "Dovecot's auth policy reports",
     {"listen", "allow_from", "api_header", "api_header_file"}, ListenRule::stream, check_auth_policy},
    {SourceType::drac, "drop-in for rpc.dracd: DRAC RPC calls of POP/IMAP servers",
     {"listen", "allow_from", "allow_file"}, ListenRule::network, no_checks},
    {SourceType::whoson, "drop-in for whosond: LOGIN, LOGOUT and QUERY", {"listen", "allow_from"}, ListenRule::network,
     needs_listen},
    {SourceType::relay_ctrl_udp, "drop-in for relay-ctrl's UDP sender: one address a datagram",
     {"listen", "allow_from"}, ListenRule::udp, needs_listen},
};
static_assert(std::size(k_source_kinds) == static_cast<std::size_t>(SourceType::relay_ctrl_udp) + 1);

bool accepts(const SourceKindRow& kind, std::string_view key) {
    return key == "type" || key == "name" || std::find(kind.keys.begin(), kind.keys.end(), key) != kind.keys.end();
}

// One [[source]] table; false when it has errors (recorded in `c`).
bool parse_source(SourceConfig& s, const Ctx& c, const toml::table& t, const std::string& set_prefix) {
    const toml::node* type_node = t.get("type");
    if (!type_node) {
        c.fail(t, "source", c.err(t, "source", "missing key 'type'"));
        return false;
    }
    if (auto st = set_type(s, c, *type_node, "source.type"); !st) {
        c.fail(*type_node, "source.type", st.error());
        return false;
    }
    const auto& kind = source_kind(s.type);
    auto check = [&](const KeyRow<SourceConfig>* row, const toml::node& v, const std::string& key) -> core::Status {
        if (!row || !accepts(kind, row->info.name))
            return c.err(v, key, "unknown key for a " + std::string(to_string(s.type)) + " source");
        return core::ok();
    };
    if (!parse_table(s, source_key_rows(), t, c, "source.", set_prefix, check)) return false;
    if (auto st = kind.validate(s, c, t); !st) {
        c.fail(t, "source", st.error());
        return false;
    }
    return true;
}

}  // namespace

std::span<const KeyRow<SourceConfig>> source_key_rows() { return k_source_keys; }
const SourceKindRow& source_kind(SourceType t) { return k_source_kinds[static_cast<std::size_t>(t)]; }

void parse_sources(Config& cfg, const Ctx& c, const toml::node& n) {
    auto arr = n.as_array();
    if (!arr) {
        c.fail(n, "source", c.err(n, "source", "use [[source]] tables"));
        return;
    }
    std::set<std::string> names;
    for (const auto& e : *arr) {
        auto t = e.as_table();
        if (!t) {
            c.fail(e, "source", c.err(e, "source", "use [[source]] tables"));
            continue;
        }
        SourceConfig s{};
        s.line = line_of(e);
        const bool ok = parse_source(s, c, *t, "source." + std::to_string(cfg.sources.size()) + ".");
        if (ok && s.name.empty()) {
            const std::string type(to_string(s.type));
            if (!s.path.empty()) s.name = type + ":" + s.path;
            else if (!s.listen.empty()) s.name = type + ":" + s.listen.front();
            else s.name = type;
        }
        if (ok && !names.insert(s.name).second)
            c.fail(e, "source.name", c.err(e, "source.name", "duplicate source name '" + s.name + "'"));
        cfg.sources.push_back(std::move(s));
    }
}

std::vector<ShownRow> show_source(const SourceConfig& s) {
    std::vector<ShownRow> out;
    const auto& kind = source_kind(s.type);
    for (const auto& r : k_source_keys)
        if (accepts(kind, r.info.name)) out.push_back({r.info, r.show(s)});
    return out;
}

}  // namespace rp::config
