// PermitOracle: the one question every MTA frontend asks: may this client relay now?
//
// The daemon implements it from the static `allow` list and the permit store's in-memory
// table; frontends only decode their protocol, ask, and encode the answer. Answering never
// blocks and never touches disk.
// Thread-safety: called on the loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/time.hpp"

namespace rp::frontends {

struct Verdict {
    enum class Kind { permit, static_allow, none };
    Kind kind = Kind::none;
    std::optional<core::Time> expires;  // for Kind::permit
    std::string user;                   // for Kind::permit
    bool permitted() const { return kind != Kind::none; }
};

class PermitOracle {
public:
    virtual ~PermitOracle() = default;
    virtual Verdict check(const core::Address& client) const = 0;

    // Budgets (`[limits] recipients`, `messages`; docs/limits.md): the policy service calls this
    // for each request whose client `v` permits through a permit (Kind::permit), with the
    // request's protocol_state ("RCPT", "END-OF-MESSAGE", ...) and recipient_count (0 when
    // absent). It counts the request against the permit's budget and returns the action to answer
    // instead of OK once a budget is spent (e.g. "DEFER_IF_PERMIT 4.7.1 relay permit limit
    // reached"), or an empty view to answer as `v` says. Never blocks. Default: no budgets.
    virtual std::string_view spend(const core::Address& client, const Verdict& v, std::string_view protocol_state,
                                   std::uint64_t recipient_count) const {
        (void)client, (void)v, (void)protocol_state, (void)recipient_count;
        return {};
    }
};

// Per-frontend counters, reported by `relaypermit status`.
struct FrontendCounters {
    std::uint64_t connections = 0;
    std::uint64_t requests = 0;
    std::uint64_t permitted = 0;
    std::uint64_t malformed = 0;  // requests rejected as malformed (connection closed)
    std::uint64_t active = 0;     // open connections now
    std::uint64_t refused = 0;    // connections closed to make room (max_clients, per-peer cap) or by a filter
};

}  // namespace rp::frontends
