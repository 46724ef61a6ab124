// ReadsocketFrontend: answers Exim's ${readsocket{...}{$sender_host_address\n}...} over TCP or
// unix stream sockets: one request line per connection, the reply `yes` or `no` without a
// newline, then the connection is closed (protocol details in line_codec.hpp).
//
// A request is answered when its LF arrives, or at EOF when Exim half-closed without a newline.
// A connection that sends no complete request within `request_timeout` is closed without a
// reply (Exim then uses its fail string, 5th argument). An overlong or NUL-bearing request gets
// `no` and is counted malformed.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only. The oracle must outlive
// the frontend.
// Security: requests are untrusted; memory per connection is bounded by max_request_bytes.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "frontends/frontend.hpp"
#include "frontends/permit_oracle.hpp"
#include "frontends/stream_server.hpp"
#include "util/event_loop.hpp"

namespace rp::frontends {

struct ReadsocketLimits {
    std::size_t max_request_bytes = 256;  // one address line
    std::chrono::milliseconds request_timeout = std::chrono::seconds(5);  // Exim's default; > 0
    std::size_t max_clients = 4096;
};

class ReadsocketFrontend final : public StreamFrontend {
public:
    ReadsocketFrontend(util::EventLoop& loop, const PermitOracle& oracle, ReadsocketLimits limits = {});
    std::string_view name() const override { return "readsocket"; }
};

}  // namespace rp::frontends
