#include "exports/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace rp::exports {

std::string sys_error(const std::string& what, int err) { return what + ": " + std::strerror(err); }

std::string dir_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

core::Status fsync_dir(const std::string& dir) {
    util::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) return core::make_error(sys_error("cannot fsync " + dir, errno));
    return core::ok();
}

core::Result<TempFile> TempFile::create(const std::string& path) {
    TempFile t;
    t.dir_ = dir_of(path);
    t.path_ = t.dir_ + "/." + base_of(path) + ".tmp.XXXXXX";
    const int fd = ::mkostemp(t.path_.data(), O_CLOEXEC);
    if (fd < 0) return core::make_error(sys_error("cannot create a temporary file in " + t.dir_, errno));
    t.fd_.reset(fd);
    return t;
}

TempFile::TempFile(TempFile&& o) noexcept : dir_(std::move(o.dir_)), path_(std::move(o.path_)), fd_(std::move(o.fd_)) {
    o.path_.clear();
}

TempFile::~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
}

core::Status TempFile::commit(const std::string& target, mode_t mode, const struct timespec* mtime) {
    if (::fsync(fd_.get()) != 0) return core::make_error(sys_error("cannot fsync " + path_, errno));
    if (::fchmod(fd_.get(), mode) != 0) return core::make_error(sys_error("cannot chmod " + path_, errno));
    if (mtime != nullptr) {
        const struct timespec times[2] = {*mtime, *mtime};
        if (::futimens(fd_.get(), times) != 0) return core::make_error(sys_error("cannot set the time of " + path_, errno));
    }
    if (::rename(path_.c_str(), target.c_str()) != 0)
        return core::make_error(sys_error("cannot rename " + path_ + " to " + target, errno));
    path_.clear();
    fd_.reset();
    return fsync_dir(dir_);
}

util::UniqueFd open_current(const std::string& path) {
    return util::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
}

void bump_replaced(const util::UniqueFd& old) {
    if (!old) return;
    struct stat st;
    if (::fstat(old.get(), &st) != 0) return;
    struct timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    struct timespec t{std::max<time_t>(now.tv_sec, st.st_mtim.tv_sec + 1), 0};
    const struct timespec times[2] = {{0, UTIME_OMIT}, t};
    (void)::futimens(old.get(), times);
}

}  // namespace rp::exports
