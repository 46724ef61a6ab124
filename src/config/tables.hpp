// The registry's tables, one per TOML table of the file: private to src/config.
//
// keys_top.cpp        top-level keys (Config)
// keys_frontends.cpp  [policy] (PolicyConfig) and the listen-only frontends (ListenerConfig)
// keys_sources.cpp    [[source]]: its keys and one SourceKindRow per source type
// keys_exports.cpp    [[export]] and [[pattern]]
// keys_services.cpp   [metrics] and [limits]
// config_parse.cpp walks them; config_show.cpp and registry_keys() print them.
// Thread-safety: constant data.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/key_rows.hpp"

namespace rp::config {

// One key with its value as TOML (secrets not yet masked).
struct ShownRow {
    KeyInfo info;
    std::string value;
};
template <typename T>
std::vector<ShownRow> show_rows(std::span<const KeyRow<T>> rows, const T& t) {
    std::vector<ShownRow> out;
    for (const auto& r : rows) out.push_back({r.info, r.show(t)});
    return out;
}

std::span<const KeyRow<Config>> top_key_rows();
// After every key: checks across keys (ttl <= max_ttl, max_lifetime between them). Records
// errors in `c`.
void validate_top(const Config& cfg, const Ctx& c, const toml::table& root);

// One MTA frontend table ([policy], [socketmap], ...): a row per FrontendType.
struct FrontendRow {
    FrontendType type;
    std::string_view doc;
    // Reads the [table] into cfg; errors are recorded in `c`.
    void (*parse)(Config& cfg, const Ctx& c, const toml::node& n);
    std::vector<ShownRow> (*show)(const Config& cfg);
    // The endpoints it listens on (empty = off).
    const std::vector<std::string>& (*listen)(const Config& cfg);
};
const FrontendRow& frontend_row(FrontendType t);

// Which endpoints a source type's `listen` may hold.
enum class ListenRule {
    stream,     // tcp and unix (dovecot-auth-policy)
    any,        // udp:, tcp, unix and tls: (syslog)
    network,    // tcp and udp:, no unix (drac, whoson)
    udp,        // udp: only (relay-ctrl-udp)
};

// A table of the daemon's own services ([metrics], [limits]): its name, its keys' parse and show.
struct ServiceRow {
    std::string_view name;
    std::string_view doc;
    void (*parse)(Config& cfg, const Ctx& c, const toml::node& n);
    std::vector<ShownRow> (*show)(const Config& cfg);
    const std::vector<std::string>* (*listen)(const Config& cfg);  // null when it listens nowhere
};
std::span<const ServiceRow> service_rows();

// Reads the [name] table into cfg.*Member through `rows` (every error recorded in `c`).
template <auto Member, typename T>
void parse_sub_table(Config& cfg, const Ctx& c, const toml::node& n, const std::string& name,
                     std::span<const KeyRow<T>> rows) {
    auto t = n.as_table();
    if (!t) {
        c.fail(n, name, c.err(n, name, "expected a [" + name + "] table"));
        return;
    }
    parse_table(cfg.*Member, rows, *t, c, name + ".", name + ".");
}

// One source type: the [[source]] keys it accepts besides `type` and `name`, which endpoints its
// `listen` may hold, and its checks after every key was read.
struct SourceKindRow {
    SourceType type;
    std::string_view doc;
    std::vector<std::string_view> keys;
    ListenRule listen = ListenRule::stream;
    core::Status (*validate)(const SourceConfig& s, const Ctx& c, const toml::table& t);
};
std::span<const KeyRow<SourceConfig>> source_key_rows();
const SourceKindRow& source_kind(SourceType t);
void parse_sources(Config& cfg, const Ctx& c, const toml::node& n);
// The keys of a source of its type, in table order ("type" and "name" first).
std::vector<ShownRow> show_source(const SourceConfig& s);

std::span<const KeyRow<ExportConfig>> export_key_rows();
std::span<const KeyRow<PatternConfig>> pattern_key_rows();
void parse_exports(Config& cfg, const Ctx& c, const toml::node& n);
void parse_patterns(Config& cfg, const Ctx& c, const toml::node& n);

}  // namespace rp::config
