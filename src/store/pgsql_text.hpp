// pgsql_text: the text rules of PostgreSQL's permit table (pgsql_backend.cpp): text columns hold
// valid UTF-8 without NUL, and notification payloads count characters, not bytes.
// Thread-safety: pure functions.
// Security: both read bytes from logs (user names) or from notifications any database user may
// send; they never read past the input.
#pragma once

#include <string>
#include <string_view>

namespace rp::store {

// Valid UTF-8 without NUL: invalid sequences and NUL become U+FFFD.
std::string sanitize_utf8(const std::string& s);

// Byte length of the first `chars` UTF-8 characters of s (s is valid UTF-8); npos if short.
std::size_t utf8_prefix_bytes(std::string_view s, std::size_t chars);

}  // namespace rp::store
