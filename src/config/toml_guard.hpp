// toml_guard: a lexical check run on the config text before toml++ parses it.
//
// TOML 1.0 allows non-ASCII only inside strings and comments. toml++ 3.3.0 (Debian 12's
// libtomlplusplus) reaches `TOML_UNREACHABLE` (undefined behaviour: __builtin_unreachable in a
// release build) when it tests such a character for whitespace, e.g. U+02CB after a bare key
// (found by the config fuzz target; reproducer in fuzz/corpus/config/). So any byte >= 0x80
// outside a string or comment is refused here, with its line, before toml++ sees the text.
// Thread-safety: pure function.
// Security: reads the administrator's file; never quotes its content in the error.
#pragma once

#include <optional>
#include <string_view>

namespace rp::config {

// The 1-based line of the first byte >= 0x80 outside a TOML string or comment, if any.
std::optional<int> non_ascii_outside_strings(std::string_view text);

}  // namespace rp::config
