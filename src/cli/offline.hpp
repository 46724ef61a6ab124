// What the command line does when the daemon is not running (issue 12 item 15).
//
// - A push (`allow --chain`, `relaypermit allow`) is spooled in state_dir/spool
//   (daemon/login_spool.hpp) with its own time; the daemon grants it at start, through its
//   policy, only while it is still within its ttl. An address in `ignore` is not spooled.
// - `list` and `check` answer from the embedded store opened read-only (SQLite allows that while
//   nobody writes, and while the daemon writes too). A shared store is not read here: its
//   cache and outbox belong to the daemon, so the answer is "the daemon is not running".
// Thread-safety: single-threaded CLI helpers. Security: runs as the invoking user (root, the
// daemon's user, or a control_group member); opens nothing it could not open anyway.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "daemon/permit_listing.hpp"

namespace rp::cli {

struct SpoolOutcome {
    enum class Kind { spooled, ignored, failed } kind = Kind::failed;
    std::string message;  // ignored: "127.0.0.1 is in ignore (127.0.0.0/8)"; failed: why
};

// Spools a login of `ip` at `now` for the daemon's next start.
SpoolOutcome spool_offline(const config::Config& cfg, const core::Address& ip, const std::string& user,
                           std::optional<core::Duration> ttl, core::Time now);

// A permit in the store, for `check` without the daemon.
struct OfflinePermit {
    std::string ip, user, source, granted, expires;
};
// `list`: each live permit that `filter` matches, as its row (daemon::permit_json, the daemon's
// own format), in table order; or why they cannot be read.
core::Status list_offline(const config::Config& cfg, core::Time now, const daemon::PermitFilter& filter,
                          const std::function<void(const nlohmann::json&)>& row);
// `check`: the static allow entry or the permit covering `ip` ("" = not permitted).
struct OfflineVerdict {
    bool permitted = false;
    std::string static_allow;             // the `allow` network, when that is why
    std::optional<OfflinePermit> permit;  // the permit, when that is why
};
core::Result<OfflineVerdict> check_offline(const config::Config& cfg, const core::Address& ip, core::Time now);

inline constexpr const char* k_not_running_note =
    "the daemon is not running; answered from the permit store, read-only";

}  // namespace rp::cli
