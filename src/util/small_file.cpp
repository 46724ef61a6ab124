#include "util/small_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace rp::util {

core::Result<std::optional<std::string>> read_small_file(const std::string& path, std::size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return std::optional<std::string>();
        return core::make_error(path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return core::make_error(path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return core::make_error(path + ": not a regular file");
    const auto too_big = [&] {
        return core::make_error(path + ": larger than " + std::to_string(limit) + " bytes");
    };
    if (static_cast<std::size_t>(st.st_size) > limit) return too_big();
    std::string out;
    out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return core::make_error(path + ": " + std::strerror(errno));
        }
        if (n == 0) return std::optional<std::string>(std::move(out));
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > limit) return too_big();
    }
}

core::Result<std::string> read_existing_small_file(const std::string& path, std::size_t limit) {
    auto r = read_small_file(path, limit);
    if (!r) return r.error();
    if (!r->has_value()) return core::make_error(path + ": " + std::strerror(ENOENT));
    return std::move(**r);
}

}  // namespace rp::util
