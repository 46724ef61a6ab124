#include "util/small_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace rp::util {

namespace {

// Opens `path` with `extra` flags and reads it whole after `check` accepted its fstat.
core::Result<std::optional<std::string>> read_checked(const std::string& path, std::size_t limit, int extra,
                                                      const char* (*check)(const struct stat&)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | extra));
    if (!fd) {
        if (errno == ENOENT) return std::optional<std::string>();
        if (errno == ELOOP && (extra & O_NOFOLLOW)) return core::make_error(path + ": a symbolic link");
        return core::make_error(path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return core::make_error(path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return core::make_error(path + ": not a regular file");
    if (const char* why = check ? check(st) : nullptr) return core::make_error(path + ": " + why);
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

const char* private_file_problem(const struct stat& st) {
    if (st.st_uid != ::geteuid()) return "not owned by the user the daemon runs as";
    if (st.st_mode & (S_IWGRP | S_IWOTH)) return "writable by others than its owner";
    return nullptr;
}

}  // namespace

core::Result<std::optional<std::string>> read_small_file(const std::string& path, std::size_t limit) {
    return read_checked(path, limit, 0, nullptr);
}

core::Result<std::optional<std::string>> read_private_file(const std::string& path, std::size_t limit) {
    return read_checked(path, limit, O_NOFOLLOW, private_file_problem);
}

core::Result<std::string> read_existing_small_file(const std::string& path, std::size_t limit) {
    auto r = read_small_file(path, limit);
    if (!r) return r.error();
    if (!r->has_value()) return core::make_error(path + ": " + std::strerror(ENOENT));
    return std::move(**r);
}

}  // namespace rp::util
