// TailEnv: the filesystem and clock that FileTailSource sees, so that its rotation logic runs over
// real files in production and over an in-memory filesystem in tests (model: LevelDB's Env and
// SequentialFile, through which log::Reader reads). Only what the follower needs: open a file
// and read it at an offset, stat a path or an open file, list a directory's regular files, watch
// for changes, read the steady clock.
//
// What it is not: a general VFS. Paths are plain strings; errors are errno values (the follower
// tells ENOENT, "not there yet", from real failures and words the others with strerror).
// Thread-safety: a TailEnv and its files are used by one source on the loop thread; posix() is a
// stateless shared instance.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.hpp"
#include "util/event_loop.hpp"

namespace rp::sources {

struct FileInfo {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t size = 0;
    bool regular = false;
    bool directory = false;
    bool same_file(std::uint64_t d, std::uint64_t i) const { return dev == d && ino == i; }
};

// One open file. It stays readable after it is renamed or unlinked (a descriptor).
class TailFile {
public:
    virtual ~TailFile() = default;
    // Reads up to `n` bytes at `offset` into `buf`: the count read, 0 at end of file. Error: errno.
    virtual core::Result<std::size_t> read_at(std::uint64_t offset, char* buf, std::size_t n) = 0;
    // The open file's identity and size now (fstat). nullopt: errno says why.
    virtual std::optional<FileInfo> info() const = 0;
    // The descriptor, for a watch on the open inode; -1 when there is none.
    virtual int native_fd() const { return -1; }
};

// Change notification for the open files and their directory. fd() becomes readable when
// something may have changed (the follower then looks at the files themselves; events are only
// a wake-up); -1 means no notification, the follower's timers (safety_poll) drive it instead.
class TailWatcher {
public:
    virtual ~TailWatcher() = default;
    virtual int fd() const = 0;
    // Error: the message names the failing call and errno.
    virtual core::Status watch_dir(const std::string& dir) = 0;
    // A watch id, or -1 (errno set) when the file cannot be watched.
    virtual int watch_file(const TailFile& file, const std::string& label) = 0;
    virtual void unwatch(int id) = 0;
    // Consumes pending notifications (after fd() became readable).
    virtual void drain() = 0;
};

class TailEnv {
public:
    virtual ~TailEnv() = default;
    // Opens `path` for reading, never blocking. nullptr with `err` = errno on failure.
    virtual std::unique_ptr<TailFile> open(const std::string& path, int& err) = 0;
    // stat(2) of `path` (following a symbolic link, as open does). nullopt with `err` = errno.
    virtual std::optional<FileInfo> stat(const std::string& path, int& err) = 0;
    // Calls each(name, info) for the regular files directly in `dir` (symbolic links are not
    // followed and not listed) until it returns false. A directory that cannot be read: none.
    virtual void list_dir(const std::string& dir,
                          const std::function<bool(const std::string& name, const FileInfo& info)>& each) = 0;
    virtual core::Result<std::unique_ptr<TailWatcher>> make_watcher() = 0;
    virtual util::EventLoop::Steady::time_point now() = 0;

    // Real files, inotify and the steady clock.
    static TailEnv& posix();
};

}  // namespace rp::sources
