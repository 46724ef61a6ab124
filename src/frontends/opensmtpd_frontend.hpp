// OpensmtpdFrontend: the server side of opensmtpd-extras' table-socketmap
// (`table relaypermit socketmap:/run/relaypermit/opensmtpd.sock` in smtpd.conf): one line per
// request and per reply over a unix stream socket, many requests per connection (protocol in
// line_codec.hpp). Unix endpoints only ("unix:/path"): table-socketmap connects nowhere else.
//
// LIMITATION (verified from source, see docs/mta-opensmtpd.md): OpenSMTPD 6.8 answers
// `match from src <table>` with a CHECK request to the table process, and table-socketmap's
// check handler returns an error without asking the socket; only LOOKUP requests reach this
// frontend. Use it for lookups; for `match from src` on 6.8 use a file table.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only. The oracle must outlive
// the frontend.
// Security: requests are untrusted; memory per connection is bounded by max_request_bytes.
// The socket file is mode 0666: put it in a directory only smtpd's user can reach.
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

struct OpensmtpdLimits {
    std::size_t max_request_bytes = 4096;  // table name (<= LINE_MAX) + key (<= 1024 in smtpd)
    // table-socketmap keeps its one connection forever: only a very long silence closes it.
    std::chrono::milliseconds idle_timeout = std::chrono::hours(24);  // REQUIRES: > 0
    std::size_t max_clients = 1024;
};

class OpensmtpdFrontend final : public StreamFrontend {
public:
    OpensmtpdFrontend(util::EventLoop& loop, const PermitOracle& oracle, OpensmtpdLimits limits = {});
    // listen(): only "unix:/path" endpoints; anything else is an error.
    std::string_view name() const override { return "opensmtpd"; }
};

}  // namespace rp::frontends
