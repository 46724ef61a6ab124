// Config: the daemon's and the CLI's settings, read from one TOML file.
//
// One registry of keys (registry.hpp; the rows in keys_*.cpp) drives parsing, validation, `config
// check` and `config show`; the man page relaypermit.toml(5) and packaging/relaypermit.toml.example
// document the same keys with the same names (tests/unit/test_config_docs.cpp compares them). A missing default file
// or an empty file means built-in defaults (which follow /var/log/mail.log); a non-empty file
// lists its sources explicitly (no [[source]] means no sources). Every error names the file,
// line, key and value.
// Security: the file is trusted (root-owned), but values are still validated.
// Thread-safety: plain value types.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "config/kinds.hpp"
#include "core/time.hpp"
#include "config/limits_config.hpp"

namespace rp::config {

inline constexpr const char* k_default_path = "/etc/relaypermit/relaypermit.toml";

// One [[source]] table. Which keys apply depends on `type` (its row in keys_sources.cpp).
struct SourceConfig {
    SourceType type = SourceType::file;  // the drop-in protocols too: drac, whoson, relay-ctrl-udp
    std::string path;   // file: the log to follow; fifo: the pipe; journald: a journal directory
                        // or file to read instead of the system journal (tests, remote journals)
    std::string name;   // defaults to "TYPE:PATH" or "TYPE:LISTEN"; keys the checkpoint and
                        // shows as `source=` in audit lines
    int line = 0;       // where it was defined, for messages
    // syslog, dovecot-auth-policy: endpoints ("udp:H:P", "tcp:H:P", "tls:H:P", "unix:/p", "H:P")
    std::vector<std::string> listen;
    // syslog, dovecot-auth-policy: peers allowed on network listeners; empty = loopback only
    std::vector<core::Cidr> allow_from;
    // syslog tls: listeners: PEM files; tls_ca set = clients must present a certificate it signed
    std::string tls_cert, tls_key, tls_ca;
    // fifo: permissions of a pipe the daemon creates
    std::uint32_t mode = 0620;
    std::string group;
    // journald: trusted-field filters; an entry counts only if every non-empty list matches
    std::vector<std::string> units = {"dovecot.service"};  // _SYSTEMD_UNIT
    std::vector<std::string> comms;                        // _COMM
    std::vector<std::string> exes;                         // _EXE
    std::vector<std::int64_t> uids = {0};                  // _UID
    // dovecot-auth-policy: required "Name: value" header (auth_policy_server_api_header), given
    // in the config or read from api_header_file (its first line; the file is read when the
    // config is loaded, so a reload sees a new header)
    std::string api_header;
    std::string api_header_file;
    // drac: rpc.dracd's dracd.allow ("netmask netaddr" lines): trusted callers besides allow_from
    std::string allow_file;

    // Same source (every key but `line`): a reload keeps such a source running.
    bool same_as(const SourceConfig& o) const {
        SourceConfig a = *this, b = o;
        a.line = b.line = 0;
        return a == b;
    }
    bool operator==(const SourceConfig&) const = default;
    // A syslog source with a tls: listener (it needs tls_cert, tls_key and GnuTLS).
    bool has_tls_listener() const {
        return std::any_of(listen.begin(), listen.end(), [](const std::string& e) { return e.starts_with("tls:"); });
    }
};

struct PatternConfig {
    std::string name;   // the pattern set (server) name; two-line servers use one name twice
    std::string regex;  // PCRE2, named groups ip (required but for session-login), user, pid
    PatternRole role = PatternRole::login;  // session / session_login for two-line servers
    int line = 0;
};

struct PolicyConfig {
    std::vector<std::string> listen = {"127.0.0.1:10031"};
    std::size_t max_request_bytes = 16 * 1024;
    std::size_t max_attributes = 128;
    core::Duration idle_timeout = std::chrono::seconds(300);
    std::size_t max_clients = 4096;
    bool operator==(const PolicyConfig&) const = default;  // reload keeps an equal [policy]
};

// [socketmap]: its endpoints, and the administrator's static Sendmail access entries answered
// beside the permits (makemap's text form, read at start and on every reload; docs/mta-sendmail.md).
struct SocketmapConfig {
    std::vector<std::string> listen;  // empty = off
    std::string static_path;          // `static`; empty = none
    bool operator==(const SocketmapConfig&) const = default;
};

// A frontend that only needs endpoints ([readsocket], [opensmtpd]).
struct ListenerConfig {
    std::vector<std::string> listen;  // empty = off
    bool operator==(const ListenerConfig&) const = default;
};

// [metrics]: the HTTP listener for Prometheus (/metrics) and health checks (/health).
struct MetricsConfig {
    std::vector<std::string> listen;      // empty = off
    std::vector<core::Cidr> allow_from;   // peers allowed; empty = loopback only
    bool operator==(const MetricsConfig&) const = default;
};

// One [[export]] table: a map file for MTAs that only read files.
struct ExportConfig {
    ExportType type = ExportType::postfix_cdb;
    std::string path;         // the file (or directory for relay-ctrl-dir) to write
    std::string static_path;  // sendmail-access, tcprules-cdb: the admin's static part, merged in
    // Run (argv, no shell) after each write that changed the map, and after the first write
    // after start or reload; empty = none. Killed after after_write_timeout.
    std::vector<std::string> after_write;
    core::Duration after_write_timeout = std::chrono::seconds(10);
    int line = 0;
};

// A static allow entry read from an `allow_file` (config/allow_file.hpp), for `list --static`.
struct AllowFileEntry {
    core::Cidr network;
    std::string file;
    int line = 0;
    bool operator==(const AllowFileEntry&) const = default;
};

struct Config {
    std::string file;   // where it was read from ("" = built-in defaults only)
    std::string state_dir = "/var/lib/relaypermit";
    core::Duration ttl = std::chrono::minutes(30);
    core::Duration max_ttl = std::chrono::hours(24);  // bound on any permit's lifetime (`allow --ttl`); >= ttl
    // Session-aware lifetime (docs/limits.md): with it set (> 0), a login that opens a session
    // whose end the server logs keeps its permit while the session is open and ttl after it
    // ends, never longer than max_lifetime after the login. 0 = unset: ttl after the login.
    // ttl <= max_lifetime <= max_ttl.
    core::Duration max_lifetime{0};
    std::string control_socket = "/run/relaypermit/control.sock";
    std::string control_group;  // group allowed to use the control socket, besides root
    std::string user;           // run as this user after opening privileged resources
    std::string store;          // store URL; empty = embedded
    std::string store_password_file;  // shared store password, read from this file
    StoreOutage store_outage = StoreOutage::dunno;  // lookups while a shared store is unreachable
    // Permits held at most; past it new networks are refused (fail closed), extensions still work.
    std::int64_t max_permits = 1'000'000;
    // The static allow list: the `allow` key's networks, then those of every `allow_file` (appended
    // by load_config_and_allow_files, config/allow_file.hpp; allow_file_entries: where each came from).
    std::vector<core::Cidr> allow;
    std::vector<std::string> allow_file;  // absolute paths; one CIDR per line, '#' comments
    std::vector<AllowFileEntry> allow_file_entries;
    std::vector<core::Cidr> ignore = default_ignore();
    int ipv6_prefix = 128;
    LogLevel log_level = LogLevel::info;
    std::vector<std::string> servers;  // enabled built-in pattern sets; empty = all
    std::vector<PatternConfig> patterns;
    std::vector<SourceConfig> sources = {default_source()};
    PolicyConfig policy;
    SocketmapConfig socketmap;
    ListenerConfig readsocket, opensmtpd;
    std::vector<ExportConfig> exports;
    MetricsConfig metrics;
    std::string relayclient;          // value `check --chain` gives RELAYCLIENT (qmail)
    bool ignore_mynetworks = false;   // add Postfix's mynetworks (postconf -h) to `ignore`
    LimitsConfig limits;              // [limits]: budgets, caps, alerts (limits_config.hpp)

    static std::vector<core::Cidr> default_ignore();
    static SourceConfig default_source();  // the file source /var/log/mail.log
};

// Reads `path`. When `path` is the default path and the file does not exist, returns defaults.
// `explicit_path`: the user named the file (--config), so a missing file is an error.
core::Result<Config> load_config(const std::string& path, bool explicit_path);
core::Result<Config> parse_config(std::string_view text, const std::string& file_name);

}  // namespace rp::config
