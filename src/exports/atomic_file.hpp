// Atomic replacement of a map file: what every Exporter uses to write (exporter.hpp).
//
// A TempFile is created next to the target (same directory, so rename() is atomic), written,
// fsync'd, given its mode, renamed over the target and the directory fsync'd: a reader sees the
// old or the new file, never a partial one, and after a crash one of them is on disk.
// Readers that keep a map open and reopen it when its mtime changes (Sendmail's hash maps,
// Postfix daemons' dict_changed check on hash:, lmdb:, cdb:) still hold the old inode after the
// rename; bump_replaced() moves that inode's mtime forward so they notice.
// Thread-safety: plain functions and a value type; no shared state.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "core/result.hpp"
#include "util/unique_fd.hpp"

namespace rp::exports {

std::string sys_error(const std::string& what, int err);
std::string dir_of(const std::string& path);   // "." when there is no '/'
std::string base_of(const std::string& path);
core::Status fsync_dir(const std::string& dir);

// A uniquely named temporary file next to `path` (".NAME.tmp.XXXXXX": the leading dot keeps it
// from parsing as an address in a relay-ctrl directory). Removed on destruction unless committed.
class TempFile {
public:
    static core::Result<TempFile> create(const std::string& path);
    TempFile() = default;
    TempFile(TempFile&& o) noexcept;
    TempFile& operator=(TempFile&&) = delete;
    ~TempFile();
    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }

    // fsync, mode, optional mtime, rename over `target`, fsync of the directory.
    core::Status commit(const std::string& target, mode_t mode, const struct timespec* mtime = nullptr);

private:
    std::string dir_, path_;
    util::UniqueFd fd_;
};

// The file now at `path` (not followed if a symlink), opened before it is replaced; invalid if none.
util::UniqueFd open_current(const std::string& path);
// After the rename: sets the old inode's mtime to max(now, its mtime + 1 s).
void bump_replaced(const util::UniqueFd& old);

}  // namespace rp::exports
