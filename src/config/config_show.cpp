// `config show` and registry_keys(): the registry's rows printed with a configuration's values.
#include <algorithm>

#include "config/tables.hpp"
#include "util/redact.hpp"

namespace rp::config {
namespace {

// A secret as shown: a URL keeps everything but its password (util/redact.hpp); anything else
// that is set becomes "***".
std::string masked(const ShownRow& r) {
    if (!r.info.secret || r.value == "\"\"") return r.value;
    if (r.value.find("://") != std::string::npos && r.value.size() >= 2)
        return "\"" + util::mask_url(std::string_view(r.value).substr(1, r.value.size() - 2)) + "\"";
    return "\"***\"";
}

bool is_set(const std::vector<std::string>* set_keys, const std::string& path) {
    return !set_keys || std::find(set_keys->begin(), set_keys->end(), path) != set_keys->end();
}

// The rows of one table, those in `set_keys` under `prefix` only (all without set_keys).
std::string lines(const std::vector<ShownRow>& rows, const std::vector<std::string>* set_keys,
                  const std::string& prefix, std::string_view always = {}) {
    std::string out;
    for (const auto& r : rows) {
        if (r.info.name != always && !is_set(set_keys, prefix + std::string(r.info.name))) continue;
        if (r.value.empty()) out += "# " + std::string(r.info.name) + " is not set\n";  // would not parse back
        else out += std::string(r.info.name) + " = " + masked(r) + "\n";
    }
    return out;
}

template <typename T>
std::string array_tables(std::string_view name, const std::vector<T>& items, std::span<const KeyRow<T>> rows,
                         const std::vector<std::string>* set_keys, std::vector<ShownRow> (*show)(const T&)) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto shown = show ? show(items[i]) : show_rows(rows, items[i]);
        const std::string prefix = std::string(name) + "." + std::to_string(i) + ".";
        out += "\n[[" + std::string(name) + "]]\n" + lines(shown, set_keys, prefix, "type");
    }
    return out;
}

template <typename T>
void list_table(std::vector<KeyListing>& out, const std::string& table, std::span<const KeyRow<T>> rows,
                const T& defaults) {
    for (const auto& r : rows) out.push_back({table, r.info, {}, r.show(defaults)});
}

}  // namespace

std::string show_config(const Config& cfg, const std::vector<std::string>* set_keys) {
    std::string out = lines(show_rows(top_key_rows(), cfg), set_keys, "");
    for (const auto t : all_of<FrontendType>()) {
        const std::string name(to_string(t));
        const auto body = lines(frontend_row(t).show(cfg), set_keys, name + ".");
        if (!body.empty()) out += "\n[" + name + "]\n" + body;
    }
    for (const auto& s : service_rows()) {
        const std::string name(s.name);
        const auto body = lines(s.show(cfg), set_keys, name + ".");
        if (!body.empty()) out += "\n[" + name + "]\n" + body;
    }
    out += array_tables<SourceConfig>("source", cfg.sources, source_key_rows(), set_keys, show_source);
    out += array_tables<PatternConfig>("pattern", cfg.patterns, pattern_key_rows(), set_keys, nullptr);
    out += array_tables<ExportConfig>("export", cfg.exports, export_key_rows(), set_keys, nullptr);
    return out;
}

std::vector<KeyListing> registry_keys() {
    std::vector<KeyListing> out;
    const Config defaults;
    list_table(out, "", top_key_rows(), defaults);
    for (const auto t : all_of<FrontendType>())
        for (const auto& r : frontend_row(t).show(defaults))
            out.push_back({std::string(to_string(t)), r.info, {}, r.value});
    for (const auto& s : service_rows())
        for (const auto& r : s.show(defaults)) out.push_back({std::string(s.name), r.info, {}, r.value});
    const SourceConfig source;
    for (const auto& r : source_key_rows()) {
        KeyListing k{"source", r.info, {}, r.show(source)};
        for (const auto t : all_of<SourceType>()) {
            const auto& keys = source_kind(t).keys;
            if (r.info.name == "type" || r.info.name == "name" || std::find(keys.begin(), keys.end(), r.info.name) != keys.end())
                k.kinds.push_back(to_string(t));
        }
        out.push_back(std::move(k));
    }
    list_table(out, "export", export_key_rows(), ExportConfig{});
    list_table(out, "pattern", pattern_key_rows(), PatternConfig{});
    return out;
}

}  // namespace rp::config
