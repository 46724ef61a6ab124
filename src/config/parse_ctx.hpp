// Parse context and value readers: private to src/config.
//
// Ctx names the file and collects every error (Diagnostic) and every key the file sets. The
// get_* readers turn one TOML node into a typed value or an error naming file, line, key and
// value ("FILE:LINE: key = value: problem"); secrets are masked in that text.
// Thread-safety: a Ctx belongs to one parse.
#pragma once

#include <toml++/toml.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/registry.hpp"
#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::config {

struct Ctx {
    std::string file;
    std::vector<Diagnostic>* errors = nullptr;
    std::vector<std::string>* set_keys = nullptr;

    std::string where(const toml::node& n, std::string_view key) const;
    core::Error err(const toml::node& n, std::string_view key, const std::string& problem) const;
    // Records an error of `key` (a failed parse or validation step).
    void fail(const toml::node& n, std::string_view key, const core::Error& e) const;
    void fail(int line, std::string_view key, const std::string& message) const;
    void note_set(const std::string& path) const {
        if (set_keys) set_keys->push_back(path);
    }
};

int line_of(const toml::node& n);

core::Result<std::string> get_string(const Ctx& c, const toml::node& n, std::string_view key);
core::Result<core::Duration> get_duration(const Ctx& c, const toml::node& n, std::string_view key);
core::Result<std::int64_t> get_int(const Ctx& c, const toml::node& n, std::string_view key, std::int64_t lo,
                                   std::int64_t hi);
core::Result<std::vector<std::string>> get_strings(const Ctx& c, const toml::node& n, std::string_view key);
core::Result<std::vector<core::Cidr>> get_cidrs(const Ctx& c, const toml::node& n, std::string_view key);
core::Result<std::vector<std::int64_t>> get_ints(const Ctx& c, const toml::node& n, std::string_view key);
core::Result<bool> get_bool(const Ctx& c, const toml::node& n, std::string_view key);
// Each endpoint parses (util/endpoint.hpp); udp: and tls: only where allowed.
core::Status check_endpoints(const Ctx& c, const toml::node& n, std::string_view key,
                             const std::vector<std::string>& eps, bool allow_udp, bool allow_tls);
// The first line of a file holding a secret (api_header_file), read when the config is loaded.
core::Result<std::string> read_secret_line(const std::string& path);

// A value as TOML text, for `config show` and the registry's defaults.
std::string toml_quote(std::string_view s);
std::string toml_value(const std::string& v);
std::string toml_value(core::Duration v);
std::string toml_value(bool v);
template <std::integral I>
    requires(!std::is_same_v<I, bool>)
std::string toml_value(I v) {
    return std::to_string(v);
}
std::string toml_value(const std::vector<std::string>& v);
std::string toml_value(const std::vector<core::Cidr>& v);
std::string toml_value(const std::vector<std::int64_t>& v);
template <typename E>
    requires std::is_enum_v<E>
std::string toml_value(E e) {
    return toml_quote(to_string(e));
}

}  // namespace rp::config
