// SocketmapFrontend: the socketmap lookup service (Postfix `socketmap:inet:HOST:PORT:NAME` /
// `socketmap:unix:PATH:NAME`, Sendmail `Kaccess socket ...` and FEATURE(`access_db', `socket
// ...')) over TCP and unix stream sockets, on the daemon's EventLoop. The protocol and the
// answers are in netstring_codec.hpp; the sockets in stream_server.hpp.
//
// Many requests per connection (both MTAs keep connections open); pipelined requests are all
// answered in order. A malformed netstring closes its own connection without a reply. Idle
// connections are closed after `idle_timeout` (Postfix closes its own after 10 s idle).
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only. The oracle is called on
// that thread and must outlive the frontend.
// Security: requests are untrusted (any process that can connect); memory per connection is
// bounded by max_request_bytes plus 64 KiB of pending replies. Bind to loopback or a guarded
// unix socket directory: the answers reveal which addresses hold permits.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "frontends/frontend.hpp"
#include "frontends/netstring_codec.hpp"
#include "frontends/permit_oracle.hpp"
#include "frontends/stream_server.hpp"
#include "util/event_loop.hpp"

namespace rp::frontends {

struct SocketmapLimits {
    std::size_t max_request_bytes = 10000;  // netstring payload; Postfix's own query limit
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);  // REQUIRES: > 0
    std::size_t max_clients = 4096;
};

class SocketmapFrontend final : public StreamFrontend {
public:
    SocketmapFrontend(util::EventLoop& loop, const PermitOracle& oracle, SocketmapLimits limits = {});
    ~SocketmapFrontend() override { close(); }  // before statics_ goes, which sessions read
    // listen(): endpoints as for PolicyFrontend::listen ("127.0.0.1:10032", "unix:/path"; port 0 = any).
    std::string_view name() const override { return "socketmap"; }
    // The admin's Sendmail access entries (`[socketmap] static`); null = none. Replaced whole on
    // reload; requests after the call see the new set.
    void set_static(std::shared_ptr<const StaticAnswers> statics) { statics_ = std::move(statics); }

private:
    std::shared_ptr<const StaticAnswers> statics_;  // read by the sessions; they are closed first
};

}  // namespace rp::frontends
