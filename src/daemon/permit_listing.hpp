// Permit listing: the one row format of a permit on the control socket (`list`, `allow`'s reply,
// and the CLI's offline list), the filters of `list`, and `list` as a streamed reply.
//
// `list` never copies the permit table: PermitListStream walks it with a PermitTable::Cursor,
// examining at most k_list_piece records per piece (a few pieces per loop turn, and only as fast
// as the client drains its replies: control_session.hpp), so daemon memory stays constant for
// any table size and lookups keep being answered in between. The reply is the same single line
// as an unstreamed one, {"ok":true,"permits":[{...},{...}]}, in table order (not sorted).
// Each permit live during the whole walk appears exactly once; one granted or removed meanwhile
// may or may not (PermitTable's cursor contract).
// Thread-safety: the loop's thread only (the table is the daemon's). Security: user and source
// are log text; JSON escaping (invalid UTF-8 replaced) keeps each row one well-formed value.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/address.hpp"
#include "core/login_event.hpp"
#include "core/time.hpp"
#include "daemon/control_session.hpp"
#include "store/permit_table.hpp"

namespace rp::daemon {

// Which permits `list` shows; an absent field matches everything.
struct PermitFilter {
    std::optional<std::string> user;     // exactly this user ("" = permits without a user)
    std::optional<core::Cidr> network;   // permits whose network overlaps it (inside or covering)
    std::optional<std::string> source;   // exactly this source name
    bool matches(const core::Permit& p) const;
};

// The row of one permit: {"expires","granted","ip","source","user"}. Columns added later (other
// issues) go here and nowhere else.
nlohmann::json permit_json(const core::Permit& p);

inline constexpr std::size_t k_list_piece = 128;  // records examined per piece

class PermitListStream final : public ControlReplyStream {
public:
    // `table` and `clock` must outlive the stream (the daemon's store and clock).
    // Adds fields of other features to a row (the budget of [limits]); may be empty.
    using Decorate = std::function<void(const core::Permit&, nlohmann::json&)>;
    PermitListStream(const store::PermitTable& table, const core::Clock& clock, PermitFilter filter,
                     Decorate decorate = {});
    bool next(std::string& out) override;

private:
    const store::PermitTable& table_;
    const core::Clock& clock_;
    PermitFilter filter_;
    Decorate decorate_;
    std::shared_ptr<store::PermitTable::Cursor> cursor_;
    bool started_ = false;
    bool first_ = true;
};

}  // namespace rp::daemon
