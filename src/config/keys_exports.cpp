// [[export]] (map files for MTAs that only read files; one ExportType per format, written by
// exports/exporter.cpp) and [[pattern]] (login patterns of the administrator's own).
#include "config/tables.hpp"

namespace rp::config {
namespace {

core::Status set_export_type(ExportConfig& x, const Ctx& c, const toml::node& n, const std::string& key) {
    auto s = get_string(c, n, key);
    if (!s) return s.error();
    auto t = from_string<ExportType>(*s);
    if (!t) return c.err(n, key, "unknown export type (use " + names_list(ExportType{}) + ")");
    x.type = *t;
    return core::ok();
}

// An argv list run without a shell: a string would invite shell syntax.
core::Status set_after_write(ExportConfig& x, const Ctx& c, const toml::node& n, const std::string& key) {
    if (!n.is_array()) return c.err(n, key, "expected a list of strings (program and arguments, no shell)");
    auto argv = get_strings(c, n, key);
    if (!argv) return argv.error();
    if (argv->empty()) return c.err(n, key, "needs at least the program");
    for (const auto& a : *argv)
        if (a.find('\0') != std::string::npos) return c.err(n, key, "an argument contains a NUL byte");
    if (argv->front().empty()) return c.err(n, key, "the program name is empty");
    x.after_write = std::move(*argv);
    return core::ok();
}

core::Status set_after_write_timeout(ExportConfig& x, const Ctx& c, const toml::node& n, const std::string& key) {
    auto d = get_duration(c, n, key);
    if (!d) return d.error();
    if (*d <= core::Duration::zero() || *d > std::chrono::hours(1))
        return c.err(n, key, "must be more than 0 and at most 1h");
    x.after_write_timeout = *d;
    return core::ok();
}

// None is unset (an empty list would not parse back).
std::string show_after_write(const ExportConfig& x) {
    return x.after_write.empty() ? std::string() : toml_value(x.after_write);
}

const KeyRow<ExportConfig> k_export_keys[] = {
    {{"type", "string", "the map format"}, set_export_type, show_member<&ExportConfig::type>},
    {{"path", "path", "the file (relay-ctrl-dir: the directory) to write"}, set_string<&ExportConfig::path>,
     show_member<&ExportConfig::path>},
    {{"static", "path", "sendmail-access, tcprules-cdb: the administrator's static part, merged in"},
     set_string<&ExportConfig::static_path>, show_member<&ExportConfig::static_path>},
    {{"after_write", "argv", "a program and its arguments run after each write that changed the map"},
     set_after_write, show_after_write},
    {{"after_write_timeout", "duration", "after_write is killed after this long"}, set_after_write_timeout,
     show_member<&ExportConfig::after_write_timeout>},
};

const KeyRow<PatternConfig> k_pattern_keys[] = {
    {{"name", "string", "the pattern set (server) name"}, set_string<&PatternConfig::name>,
     show_member<&PatternConfig::name>},
    {{"regex", "string", "PCRE2 with named groups ip, user, pid, time"}, set_string<&PatternConfig::regex>,
     show_member<&PatternConfig::regex>},
    {{"role", "string", "login, or session and session-login for two-line servers"}, set_enum<&PatternConfig::role>,
     show_member<&PatternConfig::role>},
};

core::Status validate_export(const ExportConfig& x, const Ctx& c, const toml::table& t) {
    if (!t.contains("type")) return c.err(t, "export", "missing key 'type'");
    if (x.path.empty() || x.path.front() != '/') return c.err(t, "export.path", "an export needs an absolute path");
    return core::ok();
}

bool has_group(const std::string& regex, const std::string& g) {
    return regex.find("(?<" + g + ">") != std::string::npos || regex.find("(?P<" + g + ">") != std::string::npos ||
           regex.find("(?'" + g + "'") != std::string::npos;
}

core::Status validate_pattern(const PatternConfig& p, const Ctx& c, const toml::table& t) {
    if (p.name.empty()) return c.err(t, "pattern", "missing key 'name'");
    if (p.regex.empty()) return c.err(t, "pattern", "missing key 'regex'");
    if (p.role != PatternRole::session_login && !has_group(p.regex, "ip"))
        return c.err(*t.get("regex"), "pattern.regex", "needs a named group (?<ip>...)");
    if (p.role != PatternRole::login && !has_group(p.regex, "pid"))
        return c.err(*t.get("regex"), "pattern.regex",
                     "a " + std::string(to_string(p.role)) + " pattern needs a named group (?<pid>...)");
    return core::ok();
}

// Reads each table of an array of tables ([[name]]) into a T through `rows`, then `validate`.
template <typename T>
void parse_array(std::vector<T>& out, std::span<const KeyRow<T>> rows, const Ctx& c, const toml::node& n,
                 const std::string& name, core::Status (*validate)(const T&, const Ctx&, const toml::table&)) {
    auto arr = n.as_array();
    if (!arr) {
        c.fail(n, name, c.err(n, name, "use [[" + name + "]] tables"));
        return;
    }
    for (const auto& e : *arr) {
        auto t = e.as_table();
        if (!t) {
            c.fail(e, name, c.err(e, name, "use [[" + name + "]] tables"));
            continue;
        }
        T x;
        x.line = line_of(e);
        const auto set_prefix = name + "." + std::to_string(out.size()) + ".";
        if (parse_table(x, rows, *t, c, name + ".", set_prefix))
            if (auto st = validate(x, c, *t); !st) c.fail(e, name, st.error());
        out.push_back(std::move(x));
    }
}

}  // namespace

std::span<const KeyRow<ExportConfig>> export_key_rows() { return k_export_keys; }
std::span<const KeyRow<PatternConfig>> pattern_key_rows() { return k_pattern_keys; }

void parse_exports(Config& cfg, const Ctx& c, const toml::node& n) {
    parse_array(cfg.exports, export_key_rows(), c, n, "export", validate_export);
}

void parse_patterns(Config& cfg, const Ctx& c, const toml::node& n) {
    parse_array(cfg.patterns, pattern_key_rows(), c, n, "pattern", validate_pattern);
}

}  // namespace rp::config
