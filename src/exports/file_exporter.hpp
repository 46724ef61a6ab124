// FileExporter: what every exporter of one map file or directory shares (exporter.cpp,
// db_maps.cpp): its [[export]] table, its "TYPE:PATH" name, the keys of the live permits a
// format can express, and how a write's outcome is counted and named. Internal to exports/.
// Thread-safety: as exporter.hpp says for an Exporter.
#pragma once

#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "exports/exporter.hpp"

namespace rp::exports {

class FileExporter : public Exporter {
public:
    const std::string& describe() const override { return describe_; }

protected:
    explicit FileExporter(config::ExportConfig cfg);
    // The end of a write_map() that replaced a file only when its content changed: counts a
    // replacement when `replaced` holds true; an error comes back prefixed with describe().
    core::Status finish(const core::Result<bool>& replaced);

    config::ExportConfig cfg_;
    std::string describe_;
};

// Sorted, unique keys of the permits of `live` still valid at `now` that `key` can express
// (key(network) returns nullopt for a network the format cannot hold).
template <typename KeyFn>
std::vector<std::string> live_keys(std::span<const core::Permit> live, core::Time now, KeyFn key) {
    std::set<std::string> keys;
    for (const auto& p : live) {
        if (p.expires <= now) continue;
        if (auto k = key(p.network)) keys.insert(std::move(*k));
    }
    return {keys.begin(), keys.end()};
}

}  // namespace rp::exports
