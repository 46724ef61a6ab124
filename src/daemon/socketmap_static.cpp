#include "daemon/socketmap_static.hpp"

#include "exports/map_formats.hpp"
#include "util/small_file.hpp"

namespace rp::daemon {

core::Result<std::shared_ptr<const frontends::StaticAnswers>> read_socketmap_static(const std::string& path) {
    if (path.empty()) return std::shared_ptr<const frontends::StaticAnswers>();
    auto text = util::read_existing_small_file(path, k_max_socketmap_static);
    if (!text) return core::make_error("[socketmap] static " + text.error().message);
    auto records = exports::parse_makemap(*text);
    if (!records) return core::make_error("[socketmap] static " + path + ": " + records.error().message);
    return std::make_shared<const frontends::StaticAnswers>(frontends::make_static_answers(*records));
}

}  // namespace rp::daemon
