// Fuzz target for the saved session table (daemon/session_file.hpp): a file's content is decoded;
// what decodes is encoded again and must decode to the same sessions (no field lost or widened).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/session_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto a = rp::daemon::decode_sessions(text);
    const auto b = rp::daemon::decode_sessions(rp::daemon::encode_sessions(a.sessions));
    if (b.malformed != 0 || b.sessions.size() != a.sessions.size()) std::abort();
    for (std::size_t i = 0; i < a.sessions.size(); ++i) {
        const auto &x = a.sessions[i], &y = b.sessions[i];
        if (x.server != y.server || x.id != y.id || !(x.network == y.network) || x.login != y.login || x.cap != y.cap)
            std::abort();
    }
    return 0;
}
