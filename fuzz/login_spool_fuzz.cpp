// Fuzz target for the spool file format (daemon/login_spool.hpp): a file's content is parsed;
// what parses is encoded again and must parse to the same login (no field lost or widened).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/login_spool.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto a = rp::daemon::parse_spooled_login(text);
    if (!a) return 0;
    const auto b = rp::daemon::parse_spooled_login(rp::daemon::encode_spooled_login(*a));
    if (!b || !(b->ip == a->ip) || b->user != a->user || b->time != a->time || b->ttl != a->ttl) std::abort();
    return 0;
}
