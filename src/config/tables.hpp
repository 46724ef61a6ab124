// The registry's tables, one per TOML table of the file: private to src/config.
//
// keys_top.cpp        top-level keys (Config)
// keys_frontends.cpp  [policy] (PolicyConfig) and the listen-only frontends (ListenerConfig)
// keys_sources.cpp    [[source]]: its keys and one SourceKindRow per source type
// keys_exports.cpp    [[export]] and [[pattern]]
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
// After every key: checks across keys (ttl <= max_ttl). Records errors in `c`.
void validate_top(const Config& cfg, const Ctx& c);

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

// One source type: the [[source]] keys it accepts besides `type` and `name`, whether its
// `listen` may hold udp: and tls: endpoints, and its checks after every key was read.
struct SourceKindRow {
    SourceType type;
    std::string_view doc;
    std::vector<std::string_view> keys;
    bool datagrams_and_tls = false;
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
