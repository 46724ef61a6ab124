// Database map files: Berkeley DB hash and LMDB writers, and the postfix-hash / postfix-lmdb
// exporters built on them (postfix-cdb is exporter.cpp's CdbExporter).
//
// Postfix reads `hash:NAME` from NAME.db (Berkeley DB hash) and `lmdb:NAME` from NAME.lmdb (an
// LMDB environment in one file, MDB_NOSUBDIR, opened without a lock file by readers). Facts
// checked against Debian 12's postmap 3.7: keys and values are stored WITH a trailing NUL
// (postmap's default on Linux; Postfix's readers try with and without it), keys lowercased.
// The files are written the way postfix-cdb is: a temporary file in the same directory, fsync,
// rename, fsync of the directory; nothing happens when the content would be the same; and the
// replaced inode's mtime is moved forward so that running Postfix daemons (dict_changed) restart
// and reopen the map, as they do after `postmap`.
// Thread-safety: the writers are plain functions; an exporter as exporter.hpp says.
#pragma once

#include <sys/types.h>

#include <memory>
#include <span>
#include <string>

#include "config/config.hpp"
#include "core/result.hpp"
#include "exports/exporter.hpp"
#include "exports/map_formats.hpp"

namespace rp::exports {

// Writes `records` into the (empty or new) file `path` as a Berkeley DB hash / an LMDB file.
core::Status write_bdb_hash(const std::string& path, std::span<const Record> records);
core::Status write_lmdb(const std::string& path, std::span<const Record> records);

// A database map file replaced atomically, and only when its records change. The bytes of such a
// file differ from one write of the same records to the next, so what was written last is
// remembered together with the file's identity (device, inode, size): a file replaced or removed
// by someone else is written again. The old inode's mtime is bumped (atomic_file.hpp).
class DbMapFile {
public:
    enum class Kind { bdb_hash, lmdb };
    DbMapFile(std::string path, Kind kind) : path_(std::move(path)), kind_(kind) {}
    // True when the file was replaced, false when it already held `records`.
    core::Result<bool> replace_if_changed(std::span<const Record> records);

private:
    std::string path_;
    Kind kind_;
    std::string last_content_;
    ino_t last_ino_ = 0;
    dev_t last_dev_ = 0;
    off_t last_size_ = -1;
};

// cfg.type "postfix-hash" or "postfix-lmdb"; cfg.path ends in ".db" / ".lmdb" (checked by the caller).
std::unique_ptr<Exporter> make_postfix_db_exporter(const config::ExportConfig& cfg);

}  // namespace rp::exports
