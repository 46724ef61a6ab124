// Frontend: what every MTA-facing server is to the daemon. The daemon holds a list of them and
// treats them alike: listen on the configured endpoints, close, report counters under a name.
// The protocol (policy service, socketmap, Exim readsocket, OpenSMTPD table) is the concrete
// class's business; each answers through a PermitOracle.
//
// Thread-safety: not thread-safe; use from the EventLoop's thread only.
// Security: implementations read untrusted requests; their headers say how they bound them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "frontends/permit_oracle.hpp"

namespace rp::frontends {

class Frontend {
public:
    virtual ~Frontend() = default;
    // The config table's name ("policy", "socketmap", "readsocket", "opensmtpd"); names the
    // frontend in `status` and in the hourly stats line.
    virtual std::string_view name() const = 0;
    // Binds every endpoint and starts accepting. All or nothing: on error nothing new is left
    // listening and the error names the endpoint. May be called again after close().
    virtual core::Status listen(const std::vector<std::string>& endpoints) = 0;
    // Stops listening (removing the unix socket files it created) and closes every connection.
    // Counters are kept. Idempotent.
    virtual void close() = 0;
    // The bound endpoints in canonical form, with the real port when 0 was asked.
    virtual std::vector<std::string> local_endpoints() const = 0;
    virtual FrontendCounters counters() const = 0;
};

}  // namespace rp::frontends
