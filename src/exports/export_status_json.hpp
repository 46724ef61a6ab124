// The "exports" array of `relaypermit status --json`: one object per [[export]] with its
// ExportStatus counters. Header-only, so rp_exports itself does not depend on the JSON library.
// Thread-safety: a pure function of its argument.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "exports/export_scheduler.hpp"

namespace rp::exports {

inline nlohmann::json export_status_json(const std::vector<ExportStatus>& all) {
    auto out = nlohmann::json::array();
    for (const auto& s : all)
        out.push_back({{"export", s.name}, {"writes", s.writes}, {"replacements", s.replacements},
                       {"failures", s.failures}, {"failing", s.failing},
                       {"last_success", s.last_success ? core::format_time(*s.last_success) : std::string()},
                       {"last_error", s.last_error}});
    return out;
}

}  // namespace rp::exports
