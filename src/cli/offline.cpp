#include "cli/offline.hpp"

#include <algorithm>

#include "daemon/login_spool.hpp"
#include "store/permit_store.hpp"

namespace rp::cli {
namespace {

bool embedded(const config::Config& cfg) {
    return cfg.store.empty() || cfg.store == "embedded" || cfg.store.starts_with("embedded:");
}

core::Result<std::unique_ptr<store::PermitStore>> open_read_only(const config::Config& cfg) {
    if (!embedded(cfg))
        return core::make_error("the daemon is not running, and a shared store is only read through it; "
                                "start the daemon (or ask a daemon on another host)");
    auto st = store::open_store({cfg.state_dir, cfg.store, cfg.store_password_file, true});
    if (!st) return core::make_error("the daemon is not running, and the permit store cannot be read: " +
                                     st.error().message);
    return std::move(*st);
}

OfflinePermit offline_permit(const core::Permit& p) {
    return {p.network.to_string(), p.user, p.source, core::format_time(p.granted), core::format_time(p.expires)};
}

}  // namespace

SpoolOutcome spool_offline(const config::Config& cfg, const core::Address& ip, const std::string& user,
                           std::optional<core::Duration> ttl, core::Time now) {
    // The daemon checks again at start (with Postfix's mynetworks too); this only keeps the
    // every-webmail-login case (IP=127.0.0.1) out of the spool.
    const auto it = std::find_if(cfg.ignore.begin(), cfg.ignore.end(), [&](const core::Cidr& c) { return c.contains(ip); });
    if (it != cfg.ignore.end()) return {SpoolOutcome::Kind::ignored, ip.to_string() + " is in ignore (" + it->to_string() + ")"};
    const auto dir = daemon::spool_dir_for(cfg.state_dir);
    if (auto st = daemon::spool_login(dir, {ip, user, now, ttl}); !st) return {SpoolOutcome::Kind::failed, st.error().message};
    return {SpoolOutcome::Kind::spooled, "spooled in " + dir + "; granted when the daemon starts, if still within " +
                                             core::format_duration(ttl.value_or(cfg.ttl))};
}

core::Status list_offline(const config::Config& cfg, core::Time now, const daemon::PermitFilter& filter,
                          const std::function<void(const nlohmann::json&)>& row) {
    auto st = open_read_only(cfg);
    if (!st) return st.error();
    const auto& table = (*st)->table();
    const auto cursor = table.open_cursor();
    while (table.scan(*cursor, now, 4096, [&](const core::Permit& p) {
        if (filter.matches(p)) row(daemon::permit_json(p));
    })) {
    }
    return core::ok();
}

core::Result<OfflineVerdict> check_offline(const config::Config& cfg, const core::Address& ip, core::Time now) {
    OfflineVerdict v;
    if (const auto it = std::find_if(cfg.allow.begin(), cfg.allow.end(), [&](const core::Cidr& c) { return c.contains(ip); });
        it != cfg.allow.end()) {
        v.permitted = true;
        v.static_allow = it->to_string();
        return v;
    }
    auto st = open_read_only(cfg);
    if (!st) return st.error();
    if (auto p = (*st)->find(ip, now)) {
        v.permitted = true;
        v.permit = offline_permit(*p);
    }
    return v;
}

}  // namespace rp::cli
