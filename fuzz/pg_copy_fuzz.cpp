// Fuzz target for the PostgreSQL snapshot's binary COPY parser (store/pg_copy.hpp): the first
// byte chooses a chunk size; the stream fed in chunks must give the same rows as fed whole.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/pg_copy.hpp"

namespace {

std::string rows_of(std::string_view bytes, std::size_t chunk, bool& ok) {
    rp::store::PgCopyParser p;
    std::string out;
    ok = true;
    for (std::size_t i = 0; i < bytes.size() && ok; i += chunk)
        ok = static_cast<bool>(p.feed(bytes.substr(i, chunk), [&](const rp::store::PermitRow& r) {
            out += r.network.to_string() + '|' + std::string(r.user) + '|' + std::string(r.source) + '|' +
                   std::to_string(r.granted_us) + '|' + std::to_string(r.expires_us) + '\n';
        }));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = data[0] % 64 + 1;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    bool whole_ok = false, split_ok = false;
    const auto whole = rows_of(bytes, bytes.size() + 1, whole_ok);
    const auto split = rows_of(bytes, chunk, split_ok);
    if (whole_ok && split_ok && whole != split) std::abort();
    if (whole_ok != split_ok && whole != split.substr(0, whole.size()) && split != whole.substr(0, split.size()))
        std::abort();
    return 0;
}
