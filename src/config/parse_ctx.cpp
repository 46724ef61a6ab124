#include "config/parse_ctx.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/endpoint.hpp"
#include "util/redact.hpp"
#include "util/small_file.hpp"

namespace rp::config {
namespace {

// A value as shown in an error message: a store URL's userinfo and an API header never reach an
// error message or a log (util/redact.hpp).
std::string shown_value(std::string_view key, const std::string& value) {
    if (key == "store") return util::mask_url(value);
    if (key.ends_with("api_header")) return "***";
    return value;
}

}  // namespace

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

std::string Ctx::where(const toml::node& n, std::string_view key) const {
    std::ostringstream v;
    if (auto s = n.as_string()) v << '"' << shown_value(key, s->get()) << '"';
    else if (n.is_table()) v << "{...}";
    else if (n.is_array()) v << "[...]";
    else if (auto i = n.as_integer()) v << i->get();
    else if (auto f = n.as_floating_point()) v << f->get();
    else if (auto b = n.as_boolean()) v << (b->get() ? "true" : "false");
    else v << "(value)";
    return file + ":" + std::to_string(line_of(n)) + ": " + std::string(key) + " = " + v.str();
}

core::Error Ctx::err(const toml::node& n, std::string_view key, const std::string& problem) const {
    return core::make_error(where(n, key) + ": " + problem);
}

void Ctx::fail(const toml::node& n, std::string_view key, const core::Error& e) const {
    fail(line_of(n), key, e.message);
}

void Ctx::fail(int line, std::string_view key, const std::string& message) const {
    if (errors) errors->push_back({line, std::string(key), message});
}

constexpr std::size_t k_max_secret_file = 64u << 10;  // a password or header line, with room

core::Result<std::string> read_secret_line(const std::string& path) {
    auto text = util::read_existing_small_file(path, k_max_secret_file);
    if (!text) return core::make_error("cannot read " + text.error().message);
    std::string line = text->substr(0, text->find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return line;
}

core::Result<std::string> get_string(const Ctx& c, const toml::node& n, std::string_view key) {
    if (auto s = n.as_string()) return s->get();
    return c.err(n, key, "expected a string");
}

core::Result<bool> get_bool(const Ctx& c, const toml::node& n, std::string_view key) {
    if (auto b = n.as_boolean()) return b->get();
    return c.err(n, key, "expected true or false");
}

core::Result<core::Duration> get_duration(const Ctx& c, const toml::node& n, std::string_view key) {
    if (auto i = n.as_integer()) {
        if (i->get() < 0) return c.err(n, key, "must not be negative");
        // Seconds, within the bound of the string form (2^40 ms, ~35 years): a larger count
        // overflowed the conversion to microseconds (found by the config campaign).
        if (i->get() > (std::int64_t{1} << 40) / 1000) return c.err(n, key, "duration too long");
        return core::Duration(std::chrono::seconds(i->get()));
    }
    auto s = get_string(c, n, key);
    if (!s) return c.err(n, key, "expected a duration such as \"30m\"");
    auto d = core::parse_duration(*s);
    if (!d) return c.err(n, key, d.error().message);
    return *d;
}

core::Result<std::int64_t> get_int(const Ctx& c, const toml::node& n, std::string_view key, std::int64_t lo,
                                   std::int64_t hi) {
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
        if (auto ep = util::parse_endpoint(text); !ep) return c.err(n, key, ep.error().message);
    }
    return core::ok();
}

std::string toml_quote(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(ch));
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string toml_value(const std::string& v) { return toml_quote(v); }
std::string toml_value(core::Duration v) { return toml_quote(core::format_duration(v)); }
std::string toml_value(bool v) { return v ? "true" : "false"; }

namespace {
template <typename T, typename F>
std::string toml_array(const std::vector<T>& v, F each) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + each(v[i]);
    return out + "]";
}
}  // namespace

std::string toml_value(const std::vector<std::string>& v) { return toml_array(v, toml_quote); }
std::string toml_value(const std::vector<core::Cidr>& v) {
    return toml_array(v, [](const core::Cidr& c) { return toml_quote(c.to_string()); });
}
std::string toml_value(const std::vector<std::int64_t>& v) {
    return toml_array(v, [](std::int64_t i) { return std::to_string(i); });
}

}  // namespace rp::config
