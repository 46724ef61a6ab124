// The [limits] table's budget, cap and alert keys (limits_config.hpp), read from toml++ nodes.
// Thread-safety: pure. Security: the config file is trusted; every value is checked.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "config/limits_config.hpp"

namespace rp::config {

// Reads `key` of [limits] into `out`. Returns false when the key is not one of these (the
// caller may know it, or report it unknown); otherwise true, with `error` set when the value is
// bad ("limits.recipients = \"x\": expected ..."; the caller adds FILE:LINE).
bool parse_limits_key(LimitsConfig& out, std::string_view key, const toml::node& value, std::string& error);

}  // namespace rp::config
