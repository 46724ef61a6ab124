#include "config/allow_file.hpp"

#include <algorithm>
#include <cctype>

#include "util/small_file.hpp"

namespace rp::config {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

}  // namespace

core::Result<std::vector<AllowFileEntry>> parse_allow_file(std::string_view text, const std::string& file) {
    std::vector<AllowFileEntry> out;
    int lineno = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view raw = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++lineno;
        const std::string_view line = trim(raw.substr(0, raw.find('#')));
        if (line.empty()) continue;
        auto net = core::Cidr::parse(line);
        if (!net)
            return core::make_error(file + ":" + std::to_string(lineno) + ": allow_file: " + net.error().message);
        out.push_back(AllowFileEntry{*net, file, lineno});
    }
    return out;
}

core::Status read_allow_files(Config& cfg) {
    for (const auto& path : cfg.allow_file) {
        auto text = util::read_existing_small_file(path, k_max_allow_file);
        if (!text) return core::make_error("allow_file " + text.error().message);
        auto entries = parse_allow_file(*text, path);
        if (!entries) return entries.error();
        for (auto& e : *entries) {
            cfg.allow.push_back(e.network);
            cfg.allow_file_entries.push_back(std::move(e));
        }
    }
    return core::ok();
}

core::Result<Config> load_config_and_allow_files(const std::string& path, bool explicit_path) {
    auto cfg = load_config(path, explicit_path);
    if (!cfg) return cfg;
    if (auto st = read_allow_files(*cfg); !st) return st.error();
    return cfg;
}

std::vector<StaticAllowEntry> static_allow_list(const Config& cfg) {
    std::vector<StaticAllowEntry> out;
    const auto& files = cfg.allow_file_entries;
    const std::size_t inline_count = cfg.allow.size() - std::min(files.size(), cfg.allow.size());
    for (std::size_t i = 0; i < cfg.allow.size(); ++i) {
        if (i < inline_count) {
            out.push_back({cfg.allow[i], (cfg.file.empty() ? std::string("config") : cfg.file) + ": allow"});
        } else {
            const auto& f = files[i - inline_count];
            out.push_back({cfg.allow[i], f.file + ":" + std::to_string(f.line)});
        }
    }
    return out;
}

}  // namespace rp::config
