// Fuzz target for the shared stores' local snapshot file (store/snapshot_file.hpp): any bytes
// parse to records or an error; every record parsed is encoded again and must parse back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/snapshot_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using rp::store::SnapshotRecord;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string again = rp::store::snapshot_header(0, 0);
    std::size_t n = 0;
    (void)rp::store::parse_snapshot(bytes, [&](const SnapshotRecord& r) {
        if (!rp::store::append_snapshot_record(again, r)) std::abort();  // a parsed record always fits
        ++n;
    });
    std::size_t m = 0;
    auto r = rp::store::parse_snapshot(again, [&](const SnapshotRecord&) { ++m; });
    if (!r || r->torn_tail || m != n) std::abort();
    return 0;
}
