#include "imports/import_files.hpp"

#include <db.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "util/unique_fd.hpp"

namespace rp::imports {
namespace {

std::string sys_error(const std::string& what, int err) { return what + ": " + std::strerror(err); }

// The regular file at `path`, opened without following a symlink at its last component.
core::Result<util::UniqueFd> open_regular(const std::string& path) {
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ELOOP) return core::make_error(path + " is a symlink; give the file it points to");
        return core::make_error(sys_error("cannot open " + path, errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return core::make_error(sys_error("cannot stat " + path, errno));
    if (!S_ISREG(st.st_mode)) return core::make_error(path + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > k_max_import_file)
        return core::make_error(path + " is larger than " + std::to_string(k_max_import_file >> 20) + " MiB");
    return fd;
}

struct DbCloser {
    void operator()(DB* db) const { db->close(db, 0); }
};

std::string bdb_error(const std::string& path, const char* what, int e) {
    return path + ": " + what + ": " + db_strerror(e);
}

}  // namespace

core::Result<std::vector<Record>> read_berkeley_db(const std::string& path) {
    auto fd = open_regular(path);
    if (!fd) return fd.error();
    // libdb opens by name: the descriptor's /proc name is the inode checked above, so nothing
    // swapped in at `path` meanwhile is read.
    const std::string by_fd = "/proc/self/fd/" + std::to_string(fd->get());
    DB* raw = nullptr;
    if (int e = db_create(&raw, nullptr, 0); e != 0) return core::make_error(bdb_error(path, "db_create", e));
    std::unique_ptr<DB, DbCloser> db(raw);
    db->set_errfile(db.get(), nullptr);
    if (int e = db->open(db.get(), nullptr, by_fd.c_str(), nullptr, DB_UNKNOWN, DB_RDONLY, 0); e != 0)
        return core::make_error(bdb_error(path, "not a Berkeley DB hash or btree file", e));
    DBTYPE type{};
    if (db->get_type(db.get(), &type) == 0 && type != DB_HASH && type != DB_BTREE)
        return core::make_error(path + ": a Berkeley DB of another type than hash or btree");
    DBC* cursor = nullptr;
    if (int e = db->cursor(db.get(), nullptr, &cursor, 0); e != 0) return core::make_error(bdb_error(path, "cursor", e));
    std::vector<Record> out;
    DBT key{}, val{};
    int e = 0;
    while ((e = cursor->get(cursor, &key, &val, DB_NEXT)) == 0) {
        out.emplace_back(std::string(static_cast<const char*>(key.data), key.size),
                         std::string(static_cast<const char*>(val.data), val.size));
        if (out.size() > 10'000'000) {
            e = EFBIG;
            break;
        }
    }
    cursor->close(cursor);
    if (e != DB_NOTFOUND) return core::make_error(bdb_error(path, "reading", e));
    return out;
}

core::Result<ImportBatch> read_relay_ctrl(const std::string& dir) {
    util::UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd) {
        if (errno == ELOOP || errno == ENOTDIR) return core::make_error(dir + " is not a directory (or is a symlink)");
        return core::make_error(sys_error("cannot open " + dir, errno));
    }
    const int scan_fd = ::dup(dfd.get());  // fdopendir takes its descriptor
    DIR* d = scan_fd < 0 ? nullptr : ::fdopendir(scan_fd);
    if (d == nullptr) {
        if (scan_fd >= 0) ::close(scan_fd);
        return core::make_error(sys_error("cannot read " + dir, errno));
    }
    ImportBatch out;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dfd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
        if (!S_ISREG(st.st_mode)) {
            out.bad(std::string(name) + " (not a regular file)");
            continue;
        }
        const auto mtime = core::Time(std::chrono::duration_cast<core::Duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
        if (auto entry = parse_relay_ctrl_entry(name, mtime)) out.entries.push_back(std::move(*entry));
        else out.bad(std::string(name));
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return core::make_error(sys_error("cannot read " + dir, err));
    return out;
}

core::Result<std::string> read_text_file(const std::string& path) {
    auto fd = open_regular(path);
    if (!fd) return fd.error();
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd->get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return core::make_error(sys_error("cannot read " + path, errno));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > k_max_import_file) return core::make_error(path + " is too large");
    }
    return out;
}

core::Result<ImportBatch> read_import(std::string_view format, const std::string& path) {
    if (format == "pop-before-smtp" || format == "drac") {
        auto records = read_berkeley_db(path);
        if (!records) return records.error();
        return format == "drac" ? parse_drac(*records) : parse_pop_before_smtp(*records);
    }
    if (format == "relay-ctrl") return read_relay_ctrl(path);
    if (format == "sendmail-access") {
        auto text = read_text_file(path);
        if (!text) return text.error();
        return parse_sendmail_access(*text);
    }
    return core::make_error("format '" + std::string(format) + "' is not read from a file here");
}

}  // namespace rp::imports
