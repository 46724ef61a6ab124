// Config: the daemon's and the CLI's settings, read from one TOML file.
//
// One table of keys (config.cpp, k_keys) drives parsing, validation and `config check`; the man
// page relaypermit.toml(5) documents the same keys with the same names. A missing default file
// or an empty file means built-in defaults (which follow /var/log/mail.log); a non-empty file
// lists its sources explicitly (no [[source]] means no sources). Every error names the file,
// line, key and value.
// Security: the file is trusted (root-owned), but values are still validated.
// Thread-safety: plain value types.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::config {

inline constexpr const char* k_default_path = "/etc/relaypermit/relaypermit.toml";

struct SourceConfig {
    std::string type;   // "file" (more types come with later issues)
    std::string path;   // file: the log to follow
    std::string name;   // defaults to "TYPE:PATH"; the checkpoint key and the audit-log source
    int line;           // where it was defined, for messages
};

struct PatternConfig {
    std::string name;   // the pattern set (server) name; two-line servers use one name twice
    std::string regex;  // PCRE2, named groups ip (required but for session-login), user, pid
    std::string role = "login";  // "login", or "session" / "session-login" for two-line servers
    int line = 0;
};

struct PolicyConfig {
    std::vector<std::string> listen = {"127.0.0.1:10031"};
    std::size_t max_request_bytes = 16 * 1024;
    std::size_t max_attributes = 128;
    core::Duration idle_timeout = std::chrono::seconds(300);
    std::size_t max_clients = 4096;
};

struct Config {
    std::string file;   // where it was read from ("" = built-in defaults only)
    std::string state_dir = "/var/lib/relaypermit";
    core::Duration ttl = std::chrono::minutes(30);
    std::string control_socket = "/run/relaypermit/control.sock";
    std::string control_group;  // group allowed to use the control socket, besides root
    std::string user;           // run as this user after opening privileged resources
    std::string store;          // store URL; empty = embedded
    std::vector<core::Cidr> allow;
    std::vector<core::Cidr> ignore = default_ignore();
    int ipv6_prefix = 128;
    std::string log_level = "info";
    std::vector<std::string> servers;  // enabled built-in pattern sets; empty = all
    std::vector<PatternConfig> patterns;
    std::vector<SourceConfig> sources = {SourceConfig{"file", "/var/log/mail.log", "file:/var/log/mail.log", 0}};
    PolicyConfig policy;

    static std::vector<core::Cidr> default_ignore();
};

// Reads `path`. When `path` is the default path and the file does not exist, returns defaults.
// `explicit_path`: the user named the file (--config), so a missing file is an error.
core::Result<Config> load_config(const std::string& path, bool explicit_path);
core::Result<Config> parse_config(std::string_view text, const std::string& file_name);

}  // namespace rp::config
