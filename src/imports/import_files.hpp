// Import readers: the file and database access behind `relaypermit import` (parsing is in
// import_parsers.hpp, pure and fuzzed).
//
//   read_berkeley_db   every record of a Berkeley DB file, hash or btree (the type is read from
//                      the file), as Perl's DB_File (pop-before-smtp) and rpc.dracd write them
//                      with libdb 2 to 5.3; opened read-only, nothing is locked or changed
//   read_relay_ctrl    the entries of a RELAY_CTRL_DIR: the directory is opened O_NOFOLLOW |
//                      O_DIRECTORY and each entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW)
//                      through that descriptor: no symlink is followed, only regular files count,
//                      nothing is opened or read
//   read_text_file     a regular file opened O_NOFOLLOW, at most k_max_import_file bytes
//   read_import        FORMAT + PATH -> ImportBatch (sql is not a path: see store/sql_query.hpp)
// Thread-safety: plain functions.
// Security: the files belong to the system being replaced; run as root they are opened without
// following a symlink at their last component, and their content is parsed as untrusted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "imports/import_parsers.hpp"

namespace rp::imports {

inline constexpr std::size_t k_max_import_file = 256u << 20;  // 256 MiB: far above any real one

core::Result<std::vector<Record>> read_berkeley_db(const std::string& path);
core::Result<ImportBatch> read_relay_ctrl(const std::string& dir);
core::Result<std::string> read_text_file(const std::string& path);

// pop-before-smtp, drac, relay-ctrl, sendmail-access: the file at `path` as entries.
core::Result<ImportBatch> read_import(std::string_view format, const std::string& path);

}  // namespace rp::imports
