// SnapshotFile: a shared store's local copy of the engine's table (`state_dir/shared-snapshot`),
// so that a daemon whose engine is unreachable at start still knows the permits it last saw
// (served while store_outage = "cache"; docs/stores.md, "Outages").
//
// Format (little-endian, one writer: the SharedStore worker thread):
//   header   "RPSNAP2\n" (8 bytes), i64 written_us (when the engine's snapshot was taken),
//            u64 identity (snapshot_identity() of the store it copies)
//   records  u32 n, n bytes of payload, u32 FNV-1a of the payload; payload =
//            u8 kind (0 upsert, 1 remove), u8 v4 (1 = IPv4), u8 prefix, 16 address bytes
//            (network byte order, 4 used for IPv4), i64 granted_us, i64 expires_us,
//            u32 user length, user bytes, source bytes (the rest)
// The file is written whole as a temporary file, fsynced and renamed over the old one, after
// each snapshot the worker reads from the engine; the changes announced afterwards (other
// daemons' grants and revokes, and this daemon's own; its revokes already at acknowledgement) are appended and
// fdatasync'ed batch by batch, so a revoke the daemon has seen is never forgotten by a restart.
// A record cut short at the end (a crash during an append: its length fits the maximum and
// reaches past the end) ends the file; any other damage (a length over the maximum, a whole
// record with a bad checksum, even the last one) makes the whole file unreadable (the caller
// then ignores it): a damaged file must not hide a revoke and bring back a revoked permit. The
// writer refuses a record over the maximum (the snapshot or append fails, the file goes).
// Thread-safety: the writer belongs to one thread; parse_snapshot() is a pure function.
// Security: the file lies in state_dir (0600, written by the daemon itself; read only if it is
// still a regular file of the daemon's user that nobody else may write) but is parsed as
// untrusted bytes: every length is checked against the data, nothing is trusted before its
// checksum matches, and a damaged file is an error value, never a crash (fuzz/snapshot_file_fuzz.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/login_event.hpp"
#include "core/result.hpp"
#include "store/shared_backend.hpp"
#include "util/unique_fd.hpp"

namespace rp::store {

inline constexpr std::string_view k_snapshot_magic = "RPSNAP2\n";
inline constexpr std::size_t k_snapshot_max_record = 1u << 20;  // a user name is far shorter

struct SnapshotRecord {
    Change::Kind kind = Change::Kind::upsert;
    core::Cidr network;
    std::string_view user, source;  // views into the parsed bytes
    std::int64_t granted_us = 0, expires_us = 0;
};

// Appends one framed record to `out`; false (nothing appended) when the payload would exceed
// k_snapshot_max_record, which the reader takes for damage.
[[nodiscard]] bool append_snapshot_record(std::string& out, const SnapshotRecord& r);
// Which store a file copies: a hash of the backend's describe() (engine, host, port, database,
// key prefix, user; never a password). A file of another store is not loaded: after the store
// URL, key prefix or database changed, the old store's permits must not be served.
std::uint64_t snapshot_identity(std::string_view store_describe);
// The header for a snapshot of the store `identity` taken at `written_us`.
std::string snapshot_header(std::int64_t written_us, std::uint64_t identity);

struct SnapshotInfo {
    std::int64_t written_us = 0;
    std::uint64_t identity = 0;
    std::size_t records = 0;
    bool torn_tail = false;  // the last record was cut short (ignored)
};
// Calls `visit` for every record of a whole file image, in order. Errors: no header, or a
// damaged record before the end (see the file comment); `visit` may have been called before.
core::Result<SnapshotInfo> parse_snapshot(std::string_view bytes,
                                          const std::function<void(const SnapshotRecord&)>& visit);

// Writes the file: begin() a new snapshot into a temporary file, add() its permits, commit()
// (fsync, rename, fsync of the directory); later append() changes to the committed file.
class SnapshotWriter {
public:
    SnapshotWriter(std::string path, std::uint64_t identity) : path_(std::move(path)), identity_(identity) {}
    ~SnapshotWriter() { abort(); }

    // On an error the committed file is deleted too (appends to it would miss what this
    // snapshot reflects) and nothing is appended until a commit.
    core::Status begin(std::int64_t written_us);
    void add(const SnapshotRecord& r);  // buffered; errors surface in commit()
    core::Status commit();
    void abort();  // drops an uncommitted snapshot
    // Appends (write + fdatasync) to the file this writer committed (nothing before a commit).
    // On an error the file is deleted (it would miss these changes) until the next commit.
    core::Status append(std::span<const Change> changes);

    bool writing() const { return tmp_.valid(); }  // begun, not yet committed or aborted
    std::size_t records_committed() const { return committed_; }
    std::size_t records_appended() const { return appended_; }
    const std::string& path() const { return path_; }
    std::uint64_t identity() const { return identity_; }

private:
    core::Status flush();

    std::string path_, tmp_path_;
    std::uint64_t identity_;
    util::UniqueFd tmp_;
    std::string buf_;
    bool failed_ = false;
    bool oversized_ = false;  // add() refused a record over k_snapshot_max_record
    bool live_ = false;  // path_ is a file this writer committed
    std::size_t pending_ = 0, committed_ = 0, appended_ = 0;
};

class PermitTable;

// The engine's snapshot as a new table, built on the calling (worker) thread; also begun in
// `writer` when one is given, for the caller to commit() once the table is handed over (a
// failure to write is logged, the table is still returned).
// `limit`: max_permits (0: none).
core::Result<std::unique_ptr<PermitTable>> fetch_snapshot(SharedBackend& backend, core::Time now, std::size_t limit,
                                                          SnapshotWriter* writer);

// Loads the file at `path` into `table` (the worker, when the engine is down at start): its
// permits whose expiry is after `now`, every record applied in file order (a removal deletes
// the permit read so far if it was granted no later than the removed row; a grant after it
// stays). A missing file loads nothing; an unreadable or damaged one, or one that is not the
// daemon's own private file (util::read_private_file: a symbolic link, another owner, group or
// other writable), or a file of another store (its identity is not `identity`), loads nothing
// and is an error.
struct LocalSnapshot {
    std::int64_t written_us = 0;
    std::size_t live = 0;  // permits loaded
};
core::Result<LocalSnapshot> load_snapshot_file(const std::string& path, std::uint64_t identity, PermitTable& table,
                                              core::Time now);

}  // namespace rp::store
