// PolicyFrontend: the Postfix policy delegation service (check_policy_service) over TCP and
// unix stream sockets, on the daemon's EventLoop. The wire format and the decision rules are in
// policy_codec.hpp; the I/O is a StreamServer (stream_server.hpp), and this file is only the
// session that joins the two.
//
// Each connection carries any number of requests (Postfix reuses connections; there is no
// per-connection request cap). Requests that arrive together (pipelined) are all answered, in
// order, with one write(2). A malformed request closes its own connection only, without a reply,
// and logs a rate-limited warning naming the peer. A connection that completed no request for
// `idle_timeout` is closed (Postfix itself closes after smtpd_policy_service_max_idle = 300 s);
// bytes that do not complete a request do not renew it. With `max_clients` connections open, a
// new one closes the longest-idle connection (Postfix reconnects); a non-loopback peer holds at
// most 1024. A client that does not read its replies stops being read once 64 KiB of replies are
// pending, and is closed by the idle rule or past 256 KiB (stream_server.hpp, util/acceptor.hpp).
//
// Steady state costs per request: no allocation, one hash probe (idle bookkeeping), no syscall
// besides one read(2) and one write(2) per batch. Reads go into one 64 KiB buffer shared by all connections;
// the parser copies the few bytes it keeps.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only. The oracle is called on
// that thread and must outlive the frontend.
// Security: requests are untrusted (any process allowed to connect). Work and memory per
// connection are bounded by the PolicyLimits; unix sockets are created mode 0666, so the
// directory that holds them must guard access (e.g. /var/spool/postfix/private).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "frontends/frontend.hpp"
#include "frontends/permit_oracle.hpp"
#include "frontends/policy_codec.hpp"
#include "frontends/stream_server.hpp"
#include "util/event_loop.hpp"

namespace rp::frontends {

struct PolicyLimits {
    std::size_t max_request_bytes = 16 * 1024;
    std::size_t max_attributes = 128;
    // The config requires >= 60 s; tests use less. REQUIRES: > 0.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
    std::size_t max_clients = 4096;
};

class PolicyFrontend final : public StreamFrontend {
public:
    // Does not listen yet. `loop` and `oracle` must outlive the frontend.
    PolicyFrontend(util::EventLoop& loop, const PermitOracle& oracle, PolicyLimits limits = {});
    ~PolicyFrontend() override;  // close()
    PolicyFrontend(const PolicyFrontend&) = delete;
    PolicyFrontend& operator=(const PolicyFrontend&) = delete;

    // listen() parses and binds every endpoint ("HOST:PORT", "tcp:HOST:PORT", "[v6]:PORT",
    // "unix:/path"; port 0 picks a free port, see local_endpoints()) and starts accepting.
    // All or nothing: on error nothing new is left listening and the error names the endpoint
    // (a udp endpoint is a config error: the protocol is stream only). May be called again after
    // close() (reload). Unix sockets are chmod 0666.
    // close() stops listening (removing the unix socket files this frontend created) and closes
    // every connection. Counters are kept. Idempotent.
    // local_endpoints(): the bound endpoints in canonical form, with the real port when 0 was
    // asked: "tcp:127.0.0.1:43817", "unix:/run/relaypermit/policy".
    std::string_view name() const override { return "policy"; }
};

}  // namespace rp::frontends
