// PermitAccess: the narrow view of the live permits that the drop-in protocol sources need beyond
// LoginSink (which only grants). whoson's LOGOUT revokes an address and its QUERY asks who holds
// one; nothing else of the store is visible to a source. The daemon implements it over its
// PermitStore (daemon/grant_core.cpp), logging and counting a revoke like the control socket's.
// Thread-safety: loop thread only, like every Source and the daemon.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/result.hpp"

namespace rp::sources {

class PermitAccess {
public:
    virtual ~PermitAccess() = default;
    // Removes every live permit that covers `a`; `source` names the caller for the audit line.
    // Returns how many were removed (0: there was none). An error leaves the store unchanged.
    virtual core::Result<std::size_t> revoke(const core::Address& a, std::string_view source) = 0;
    // The live (unexpired) permit covering `a`, if any. Static `allow` entries are not permits.
    virtual std::optional<core::Permit> find(const core::Address& a) const = 0;
};

}  // namespace rp::sources
