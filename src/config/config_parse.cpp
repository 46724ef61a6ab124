// The parser: walks the file's top level over the registry's tables (tables.hpp), collecting
// every error; parse_config and load_config return the first.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/tables.hpp"
#include "config/toml_guard.hpp"
#include "util/small_file.hpp"

namespace rp::config {
namespace {

// The arrays of tables of the file.
struct ArrayRow {
    std::string_view name;
    void (*parse)(Config& cfg, const Ctx& c, const toml::node& n);
};
const ArrayRow k_arrays[] = {{"source", parse_sources}, {"pattern", parse_patterns}, {"export", parse_exports}};

void parse_root(Config& cfg, const Ctx& c, const toml::table& root) {
    for (const auto& [k, n] : root) {
        const std::string key(k.str());
        if (const auto* row = find_row(top_key_rows(), key)) {
            if (auto st = row->parse(cfg, c, n, key); !st) c.fail(n, key, st.error());
            else c.note_set(key);
            continue;
        }
        const auto array = std::find_if(std::begin(k_arrays), std::end(k_arrays), [&](const auto& a) { return a.name == key; });
        const auto services = service_rows();
        const auto service = std::find_if(services.begin(), services.end(), [&](const auto& s) { return s.name == key; });
        if (array != std::end(k_arrays)) array->parse(cfg, c, n);
        else if (auto fe = from_string<FrontendType>(key)) frontend_row(*fe).parse(cfg, c, n);
        else if (service != services.end()) service->parse(cfg, c, n);
        else c.fail(n, key, c.err(n, key, "unknown key"));
    }
    const bool times_ok = std::none_of(c.errors->begin(), c.errors->end(), [](const Diagnostic& d) {
        return d.key == "ttl" || d.key == "max_ttl" || d.key == "max_lifetime";
    });
    if (times_ok) validate_top(cfg, c, root);
}

bool blank(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; });
}

}  // namespace

SourceConfig Config::default_source() {
    SourceConfig s;
    s.type = SourceType::file;
    s.path = "/var/log/mail.log";
    s.name = "file:/var/log/mail.log";
    return s;
}

std::vector<core::Cidr> Config::default_ignore() {
    return {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1/128")};
}

ConfigReport check_config_text(std::string_view text, const std::string& file_name) {
    ConfigReport r;
    r.config.file = file_name;
    if (blank(text)) return r;  // an empty file means the built-in defaults
    r.has_content = true;
    auto ascii = ascii_toml(text);
    if (const auto* refused = std::get_if<NonAsciiRefused>(&ascii)) {
        const int line = refused->line;
        r.errors.push_back({line, "", file_name + ":" + std::to_string(line) +
                                          (refused->in_literal_string
                                               ? ": a non-ASCII character in a literal string ('...'): use a basic "
                                                 "string (\"...\") for text that is not ASCII"
                                               : ": a non-ASCII character outside a string or comment, or invalid "
                                                 "UTF-8 (TOML allows them only in strings and comments)")});
        return r;
    }
    toml::table root;
    try {
        root = toml::parse(std::get<std::string>(ascii), file_name);
    } catch (const toml::parse_error& e) {
        const int line = static_cast<int>(e.source().begin.line);
        r.errors.push_back({line, "", file_name + ":" + std::to_string(line) + ": " + std::string(e.description())});
        return r;
    }
    Ctx c{file_name, &r.errors, &r.set_keys};
    r.config.sources.clear();  // a non-empty file lists its sources explicitly
    parse_root(r.config, c, root);
    return r;
}

// The configuration is the administrator's, but a FIFO or /dev/zero in its place must not hang
// or exhaust `config check`, `run` or a reload (util/small_file.hpp).
constexpr std::size_t k_max_config_file = 16u << 20;

ConfigReport check_config_file(const std::string& path, bool explicit_path) {
    auto text = util::read_small_file(path, k_max_config_file);
    if (!text || !text->has_value()) {
        ConfigReport r;
        if (!explicit_path && text) return r;  // the default path, absent: embedded defaults
        r.errors.push_back({0, "", "cannot read config file " + (text ? path + ": " + std::strerror(ENOENT)
                                                                       : text.error().message)});
        return r;
    }
    return check_config_text(**text, path);
}

core::Result<Config> parse_config(std::string_view text, const std::string& file_name) {
    auto r = check_config_text(text, file_name);
    if (!r.errors.empty()) return core::make_error(r.errors.front().message);
    return std::move(r.config);
}

core::Result<Config> load_config(const std::string& path, bool explicit_path) {
    auto r = check_config_file(path, explicit_path);
    if (!r.errors.empty()) return core::make_error(r.errors.front().message);
    return std::move(r.config);
}

}  // namespace rp::config
