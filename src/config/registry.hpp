// Registry: every key of relaypermit.toml, table by table and kind by kind, as data.
//
// The rows live in keys_top.cpp (top-level keys), keys_frontends.cpp ([policy], [socketmap],
// [readsocket], [opensmtpd]), keys_sources.cpp ([[source]] keys and one row per source type) and
// keys_exports.cpp ([[export]], [[pattern]]). Each row holds a key's name, its type and one doc
// line, a parse/validate step into the typed struct of config.hpp and how to show its value. The
// parser (config_parse.cpp) walks the rows, `config show` prints them, and a unit test compares
// them with relaypermit.toml(5) and packaging/relaypermit.toml.example.
//
// Parsing collects every error of a file (check_config_*), so `config check` reports them all in
// one run; parse_config/load_config (config.hpp) return the first.
// Security: the file is trusted (root-owned) but validated; secrets (a store URL's password, an
// API header) are masked in every message and in show_config.
// Thread-safety: constant data and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace rp::config {

// One key: its name, its type as relaypermit.toml(5) names it, one line of doc, whether its value
// is a secret (masked when shown).
struct KeyInfo {
    std::string_view name;
    std::string_view type;
    std::string_view doc;
    bool secret = false;
};

// One key of the registry with the table it belongs to: "" (top level), "policy", "socketmap",
// "readsocket", "opensmtpd", "source", "export" or "pattern". `kinds`: for [[source]], the source
// types accepting it (every type for `type` and `name`); empty elsewhere. `default_value`: its
// value in the built-in defaults, as TOML ("" when it has none: required or derived).
struct KeyListing {
    std::string table;
    KeyInfo key;
    std::vector<std::string_view> kinds;
    std::string default_value;
};
std::vector<KeyListing> registry_keys();

// One problem of a file. `message` is the whole line: "FILE:LINE: key = value: problem".
struct Diagnostic {
    int line = 0;
    std::string key;
    std::string message;
};

struct ConfigReport {
    Config config;                     // meaningful only when `errors` is empty
    std::vector<Diagnostic> errors;    // every error found, the first as parse_config reports it
    std::vector<std::string> set_keys; // what the file sets: "ttl", "policy.listen", "source.0.path"
    bool has_content = false;          // the file is not blank (then sources are explicit)
};
ConfigReport check_config_text(std::string_view text, const std::string& file_name);
// As load_config: a missing default file means defaults; with `explicit_path` it is an error.
ConfigReport check_config_file(const std::string& path, bool explicit_path);

// The effective configuration as `config show` prints it, in TOML: every key with its value
// (defaults included), secrets masked. With `set_keys` (from ConfigReport), only the keys listed
// there (`config show --non-default`, like `postconf -n`).
std::string show_config(const Config& cfg, const std::vector<std::string>* set_keys = nullptr);

// What `config check` adds to parsing for a valid configuration: errors (two listeners on one
// endpoint, which the daemon could not bind) and warnings (a file with content but no [[source]],
// a secret in a file others can read). The daemon does not run these: its bind reports the first.
struct Finding {
    bool error = false;
    std::string message;
};
std::vector<Finding> lint_config(const ConfigReport& report);

}  // namespace rp::config
