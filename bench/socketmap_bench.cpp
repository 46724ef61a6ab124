// socketmap_bench: requests/s and latency of the socketmap service (Postfix socketmap:,
// Sendmail socket maps), next to a minimal single-threaded epoll responder measured in the same
// run. Same structure as policy_bench.cpp, and the same load_generator.hpp: (a) the reference
// reads, counts netstrings (by their ',') and writes "9:NOTFOUND ," for each, one write per read;
// (b) a SocketmapFrontend on its own util::EventLoop thread with a fake oracle. One
// load-generator thread keeps N persistent connections, each sending `relaypermit ADDR` (or
// Sendmail's `access connect:ADDR`, every other request) as a netstring and waiting for the
// reply before the next.
//
// Usage: socketmap_bench [--duration SECONDS] [--clients 8,64] [--rounds N] [--connect HOST:PORT]
//   --connect  measure an external `relaypermit run` [socketmap] endpoint (loopback only).
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "frontends/netstring_codec.hpp"
#include "frontends/socketmap_frontend.hpp"
#include "load_generator.hpp"

namespace {

using rp::bench::client_address;

// The socketmap protocol (netstrings), as load_generator.hpp wants it.
struct SocketmapProtocol {
    // One socketmap request: Postfix's check_client_access key, or (odd i) Sendmail's access-map key.
    static std::string request(int i) {
        const std::string addr = client_address(i);
        std::string out;
        rp::frontends::append_netstring(i % 2 == 1 ? "access connect:" + addr : "relaypermit " + addr, out);
        return out;
    }

    static constexpr std::string_view reference_reply = "9:NOTFOUND ,";

    struct RequestCounter {
        std::size_t count(const char* data, std::size_t n) {
            std::size_t requests = 0;
            for (std::size_t k = 0; k < n; ++k)
                if (data[k] == ',') ++requests;
            return requests;
        }
    };

    struct ReplyReader {
        bool first_byte = true;
        bool ok = false;
        bool consume(const char* data, std::size_t n) {
            bool complete = false;
            for (std::size_t k = 0; k < n; ++k) {
                if (first_byte) {
                    ok = n - k >= 4 && std::memcmp(data + k + 1, ":OK", 3) == 0;
                    first_byte = false;
                }
                if (data[k] == ',') {
                    complete = true;
                    first_byte = true;
                }
            }
            return complete;
        }
    };
};

}  // namespace

int main(int argc, char** argv) {
    return rp::bench::run_bench<SocketmapProtocol, rp::frontends::SocketmapFrontend>(argc, argv, "socketmap_bench",
                                                                                      "SocketmapFrontend");
}
