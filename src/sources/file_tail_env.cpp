#include "sources/file_tail_env.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace rp::sources {
namespace {

constexpr std::uint32_t k_dir_mask =
    IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
constexpr std::uint32_t k_file_mask = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_CLOSE_WRITE;

FileInfo to_info(const struct stat& st) {
    return FileInfo{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                    static_cast<std::uint64_t>(st.st_size), S_ISREG(st.st_mode), S_ISDIR(st.st_mode)};
}

class PosixFile final : public TailFile {
public:
    explicit PosixFile(util::UniqueFd fd) : fd_(std::move(fd)) {}
    core::Result<std::size_t> read_at(std::uint64_t offset, char* buf, std::size_t n) override {
        for (;;) {
            const ssize_t r = ::pread(fd_.get(), buf, n, static_cast<off_t>(offset));
            if (r >= 0) return static_cast<std::size_t>(r);
            if (errno != EINTR) return core::make_error(std::strerror(errno));
        }
    }
    std::optional<FileInfo> info() const override {
        struct stat st {};
        if (::fstat(fd_.get(), &st) != 0) return std::nullopt;
        return to_info(st);
    }
    int native_fd() const override { return fd_.get(); }

private:
    util::UniqueFd fd_;
};

class Inotify final : public TailWatcher {
public:
    explicit Inotify(util::UniqueFd fd) : fd_(std::move(fd)) {}
    int fd() const override { return fd_.get(); }
    core::Status watch_dir(const std::string& dir) override {
        if (::inotify_add_watch(fd_.get(), dir.c_str(), k_dir_mask) >= 0) return core::ok();
        return core::make_error("cannot watch directory " + dir + ": " + std::strerror(errno));
    }
    // The watch is on the open inode (through /proc/self/fd, so it cannot land on a newer file at
    // the same name); rename and unlink keep it, and a drained file still reports its appends.
    int watch_file(const TailFile& file, const std::string& label) override {
        const std::string proc = "/proc/self/fd/" + std::to_string(file.native_fd());
        int wd = ::inotify_add_watch(fd_.get(), proc.c_str(), k_file_mask);
        if (wd < 0) wd = ::inotify_add_watch(fd_.get(), label.c_str(), k_file_mask);
        return wd;
    }
    void unwatch(int id) override {
        if (id >= 0) ::inotify_rm_watch(fd_.get(), id);
    }
    void drain() override {
        alignas(inotify_event) char ev[16 * 1024];
        for (;;) {
            const ssize_t n = ::read(fd_.get(), ev, sizeof ev);
            if (n > 0) continue;  // the events only wake us; the follower looks at the files themselves
            if (n < 0 && errno == EINTR) continue;
            break;
        }
    }

private:
    util::UniqueFd fd_;
};

class PosixEnv final : public TailEnv {
public:
    std::unique_ptr<TailFile> open(const std::string& path, int& err) override {
        util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        if (!fd) {
            err = errno;
            return nullptr;
        }
        return std::make_unique<PosixFile>(std::move(fd));
    }
    std::optional<FileInfo> stat(const std::string& path, int& err) override {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            err = errno;
            return std::nullopt;
        }
        return to_info(st);
    }
    void list_dir(const std::string& dir, const std::function<bool(const std::string&, const FileInfo&)>& each) override {
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) return;
        while (const dirent* de = ::readdir(d)) {
            const std::string name = de->d_name;
            if (name == "." || name == "..") continue;
            struct stat st {};
            if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
            if (!each(name, to_info(st))) break;
        }
        ::closedir(d);
    }
    core::Result<std::unique_ptr<TailWatcher>> make_watcher() override {
        util::UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
        if (!fd) return core::make_error(std::string("inotify_init1: ") + std::strerror(errno));
        return std::unique_ptr<TailWatcher>(std::make_unique<Inotify>(std::move(fd)));
    }
    util::EventLoop::Steady::time_point now() override { return util::EventLoop::Steady::now(); }
};

}  // namespace

TailEnv& TailEnv::posix() {
    static PosixEnv env;
    return env;
}

}  // namespace rp::sources
