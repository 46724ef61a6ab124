// allow_file: static allow entries kept in files beside the `allow` key (`allow_file = [...]`).
//
// Format: one network per line, a CIDR ("192.0.2.0/24", "2001:db8::/32") or a bare address (a
// host); '#' starts a comment (whole line or after the entry); blank lines and surrounding blanks
// are ignored. Anything else is an error naming FILE:LINE: a static list decides who may relay,
// so a typo must stop the start or the reload, never be skipped.
// load_config_and_allow_files reads the files after parsing the TOML, appends their networks to
// Config::allow and records where each came from (Config::allow_file_entries). A missing or unreadable file is
// an error too. SIGHUP reloads the config, so the files are re-read then, all or nothing.
// Thread-safety: plain functions.
// Security: the files are the admin's (trusted), parsed strictly; at most k_max_allow_file bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"

namespace rp::config {

inline constexpr std::size_t k_max_allow_file = 16u << 20;

// The entries of one file's text; `file` names it in errors and in the entries.
core::Result<std::vector<AllowFileEntry>> parse_allow_file(std::string_view text, const std::string& file);

// Reads every cfg.allow_file in order, appending to cfg.allow and cfg.allow_file_entries.
core::Status read_allow_files(Config& cfg);

// load_config, then read_allow_files: what the daemon (start and SIGHUP), `config check` and the
// offline `check` / `list --static` use. Other commands load the TOML alone, so a bad allow_file
// never keeps `relaypermit allow`, `list` or `status` from reaching the daemon.
core::Result<Config> load_config_and_allow_files(const std::string& path, bool explicit_path);

// The static allow list with where each entry came from: "FILE: allow" for the `allow` key,
// "FILE:LINE" for an allow_file's line (`relaypermit list --static`).
struct StaticAllowEntry {
    core::Cidr network;
    std::string from;
};
std::vector<StaticAllowEntry> static_allow_list(const Config& cfg);

}  // namespace rp::config
