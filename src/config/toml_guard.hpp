// toml_guard: the config text is made pure ASCII before toml++ parses it.
//
// toml++ 3.3.0 (Debian 12's libtomlplusplus) reaches `TOML_UNREACHABLE` (undefined behaviour:
// __builtin_unreachable in a release build) when it tests some non-ASCII characters for
// whitespace: U+00A1..U+0499, U+2C1E..U+3017 and U+FB36..U+FEFE fall into buckets its generated
// table does not handle. It tests characters for whitespace in many places, error paths
// included (the config fuzz target found three: after a bare key, after a backslash in a
// multi-line string, in a number's error path), so guarding places is not enough: toml++ must
// never decode a non-ASCII character at all. This pass hands it an equivalent ASCII text:
//   - in a basic string ("..." and """..."""), each UTF-8 character becomes a \UXXXXXXXX escape,
//     which toml++ decodes to the same character: the string's value is unchanged;
//   - in a comment, each non-ASCII byte becomes '?' (comments have no value);
//   - anywhere else (bare keys, values, literal strings '...' whose text cannot hold an escape)
//     a non-ASCII byte is refused with its line, as is invalid UTF-8 in a string.
// A leading UTF-8 BOM is dropped (toml++ skips it too). Lines are kept, so toml++'s line
// numbers stay true. If this lexer ever disagrees with toml++ about where a string is, the
// result is still pure ASCII: at worst toml++ reports a syntax error.
// Thread-safety: pure function.
// Security: reads the administrator's file; errors never quote its content.
#pragma once

#include <string>
#include <string_view>
#include <variant>

namespace rp::config {

struct NonAsciiRefused {
    int line;  // 1-based
    bool in_literal_string;
};

// The ASCII text toml++ may parse, or where a non-ASCII byte cannot be carried.
std::variant<std::string, NonAsciiRefused> ascii_toml(std::string_view text);

}  // namespace rp::config
