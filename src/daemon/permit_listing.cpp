#include "daemon/permit_listing.hpp"

namespace rp::daemon {

bool PermitFilter::matches(const core::Permit& p) const {
    if (user && p.user != *user) return false;
    if (source && p.source != *source) return false;
    if (network) {
        const auto& a = *network;
        const auto& b = p.network;
        const bool overlap = a.prefix() <= b.prefix() ? a.contains(b.network()) : b.contains(a.network());
        if (!overlap) return false;
    }
    return true;
}

nlohmann::json permit_json(const core::Permit& p) {
    return {{"ip", p.network.to_string()}, {"user", p.user}, {"source", p.source},
            {"granted", core::format_time(p.granted)}, {"expires", core::format_time(p.expires)}};
}

PermitListStream::PermitListStream(const store::PermitTable& table, const core::Clock& clock, PermitFilter filter,
                                   Decorate decorate)
    : table_(table), clock_(clock), filter_(std::move(filter)), decorate_(std::move(decorate)),
      cursor_(table.open_cursor()) {}

bool PermitListStream::next(std::string& out) {
    if (!started_) {
        out += R"({"ok":true,"permits":[)";  // as encode_control_reply writes it: keys sorted
        started_ = true;
    }
    const bool more = table_.scan(*cursor_, clock_.now(), k_list_piece, [&](const core::Permit& p) {
        if (!filter_.matches(p)) return;
        if (!first_) out += ',';
        first_ = false;
        auto j = permit_json(p);
        if (decorate_) decorate_(p, j);
        out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    });
    if (more) return true;
    out += "]}\n";
    return false;
}

}  // namespace rp::daemon
