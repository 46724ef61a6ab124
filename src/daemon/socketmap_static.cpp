#include "daemon/socketmap_static.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "exports/map_formats.hpp"

namespace rp::daemon {

core::Result<std::shared_ptr<const frontends::StaticAnswers>> read_socketmap_static(const std::string& path) {
    if (path.empty()) return std::shared_ptr<const frontends::StaticAnswers>();
    const std::string what = "[socketmap] static " + path + ": ";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return core::make_error(what + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return core::make_error(what + "not a regular file");
    if (static_cast<std::size_t>(st.st_size) > k_max_socketmap_static) return core::make_error(what + "larger than 16 MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) return core::make_error(what + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    auto records = exports::parse_makemap(text.str());
    if (!records) return core::make_error(what + records.error().message);
    return std::make_shared<const frontends::StaticAnswers>(frontends::make_static_answers(*records));
}

}  // namespace rp::daemon
