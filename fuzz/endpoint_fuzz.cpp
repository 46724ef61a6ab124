// Fuzz target for util::parse_endpoint, the listener and client address syntax of the config
// ("HOST:PORT", "tcp:", "udp:", "[v6]:PORT", "unix:/path"). Checks: a parsed endpoint has a port
// in 0..65535, a host that is "*" or a complete numeric address (nothing after it: the socket
// layer reads the host as a C string), a unix path that is absolute and holds no NUL (bind()
// would cut it there), and its canonical text (to_string) parses back to the same endpoint.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/address.hpp"
#include "util/endpoint.hpp"

namespace {

bool same(const rp::util::Endpoint& a, const rp::util::Endpoint& b) {
    return a.kind == b.kind && a.host == b.host && a.port == b.port && a.path == b.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using rp::util::Endpoint;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto ep = rp::util::parse_endpoint(text);
    if (!ep) return 0;
    if (ep->kind == Endpoint::Kind::unix_stream) {
        if (ep->path.empty() || ep->path.front() != '/' || ep->path.find('\0') != std::string::npos) std::abort();
    } else {
        if (ep->port < 0 || ep->port > 65535) std::abort();
        if (ep->host != "*" && !rp::core::Address::parse(ep->host)) std::abort();
    }
    const auto back = rp::util::parse_endpoint(ep->to_string());
    if (!back || !same(*back, *ep)) std::abort();
    return 0;
}
