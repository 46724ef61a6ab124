// PgCopyParser: the rows of a PostgreSQL `COPY (SELECT network, username, source, granted,
// expires ...) TO STDOUT (FORMAT binary)`, the fast path of PgsqlBackend::snapshot_to (issue 14:
// 1M permits in well under 5 s; no text escaping, no 1M-row PGresult).
//
// The binary COPY format (PostgreSQL manual, "COPY", "Binary Format"): an 11-byte signature
// "PGCOPY\n\377\r\n\0", an int32 flags field, an int32 header-extension length and that many
// bytes; then per tuple an int16 field count (-1 ends the data) and per field an int32 length
// (-1 for NULL) and the value in the type's binary send format, all integers big-endian:
//   inet         u8 family (2 = IPv4, 3 = IPv6), u8 bits, u8 is_cidr, u8 n, n address bytes
//   text         the bytes (client_encoding UTF8)
//   timestamptz  int64 microseconds since 2000-01-01 00:00 UTC
// Bytes may arrive in chunks cut anywhere (libpq hands over one CopyData message at a time).
// Thread-safety: one parser per stream. Security: the bytes come from the database server
// (another party's account may have written the rows): every length is checked, a malformed
// stream is an error value (fuzz/pg_copy_fuzz.cpp).
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "store/shared_backend.hpp"

namespace rp::store {

class PgCopyParser {
public:
    // Parses what `chunk` completes and hands each row to `sink`. A row with a NULL field or
    // an unreadable network is skipped (counted in skipped()); a broken stream is an error.
    core::Status feed(std::string_view chunk, const PermitSink& sink);
    // True once the end marker was read (nothing may follow it).
    bool finished() const { return finished_; }
    std::size_t rows() const { return rows_; }
    std::size_t skipped() const { return skipped_; }

private:
    // One tuple from the front of `s`: consumed bytes, 0 when incomplete, or an error.
    core::Result<std::size_t> tuple(std::string_view s, const PermitSink& sink);

    std::string buf_;  // an incomplete tuple (or header) carried to the next chunk
    bool header_ = false, finished_ = false;
    std::size_t rows_ = 0, skipped_ = 0;
};

}  // namespace rp::store
