// LimitsConfig: the `[limits]` table's budgets, caps and alerts (issue 17; docs/limits.md,
// relaypermit.toml(5)), and the value syntaxes they share with the daemon:
//   recipients = "N/period"          messages = "N/period"        window = "sliding" | "fixed"
//   action = "DEFER_IF_PERMIT 4.7.1 relay permit limit reached"
//   addresses_per_user = N           replace_oldest = false
//   permits_per_prefix = "/24:N" or a list ("/24:N", "/64:N", "ipv4/L:N", "ipv6/L:N")
//   alert_addresses = "K/M"          on_limit = [PROGRAM, ARGS...]
// Parsed by its own function so the keys of other rooms' [limits] (session lifetime) stay apart.
// Thread-safety: values. Security: the config file is trusted (root-owned); values are
// validated anyway so a typo fails at start with FILE:LINE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace rp::config {

// "N/period": "100/1h", "20/10m", "500/d" (a unit alone means one of it).
struct Rate {
    std::uint64_t limit = 0;
    core::Duration period{};
    bool operator==(const Rate&) const = default;
};
core::Result<Rate> parse_rate(std::string_view text);
std::string format_rate(const Rate& r);  // "100/1h"

// At most `max` permits inside one /length network of the family (`permits_per_prefix`).
struct PrefixCap {
    bool v6 = false;
    int length = 24;
    std::size_t max = 0;
    bool operator==(const PrefixCap&) const = default;
};
// "/24:8" (IPv4: lengths up to 32), "/64:4" (IPv6: longer), "ipv4/16:100", "ipv6/48:20".
core::Result<PrefixCap> parse_prefix_cap(std::string_view text);
std::string format_prefix_cap(const PrefixCap& c);  // "ipv4/24:8"

struct LimitsConfig {
    std::optional<Rate> recipients;  // counted at protocol_state=RCPT
    std::optional<Rate> messages;    // counted at protocol_state=END-OF-MESSAGE
    std::string window = "sliding";  // "sliding" | "fixed"
    std::string action = "DEFER_IF_PERMIT 4.7.1 relay permit limit reached";
    std::size_t addresses_per_user = 0;  // 0: no cap
    bool replace_oldest = false;
    std::vector<PrefixCap> permits_per_prefix;
    std::optional<Rate> alert_addresses;  // K addresses in M
    std::vector<std::string> on_limit;    // argv, no shell; empty: none
    bool operator==(const LimitsConfig&) const = default;
};

// The [limits] table's parser is declared in limits_toml.hpp (it needs toml++; this header
// does not, so the daemon can use the types cheaply).

}  // namespace rp::config
