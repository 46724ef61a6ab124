// Redaction of secrets in text that is printed: URLs with credentials (the `store` key) and files
// that hold a secret. Used wherever a store URL or any URL from the config reaches a log line, an
// error message, `config check` or `status`.
// Thread-safety: plain functions.
// Security: mask_url reads untrusted-shaped text (a mistyped config value) and never fails; its
// output never contains the URL's userinfo or a password-like query value, whatever the shape:
// a password holding '/', '@', ':', '#', '?' or %-escapes, a mistyped scheme (`Redis://`,
// `postgres:/`), no scheme at all (`user:pass@host`). fuzz/store_url_fuzz.cpp checks it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rp::util {

// Everything between the scheme ("name:" followed by one or more '/', kept) and the LAST '@' of
// the text becomes "***" (a password may hold '@', '/', '?', '#' unescaped, so neither the first
// '@' nor the first '/' can be trusted to end it). Without any '@', an authority whose part after
// ':' is not a port ("redis://user:secret", "user:secret") is masked whole. The value of a query
// parameter whose name holds "pass", "pwd", "secret" or "token" is masked to the end of the text.
// Text with nothing to mask is returned unchanged.
std::string mask_url(std::string_view url);

// True for a parameter name that holds a secret (see mask_url), case-insensitive.
bool is_secret_name(std::string_view name);

// A warning when the file at `path` that holds a secret (`what`: "store_password_file", ...) is
// readable or writable by others (mode & 006); nullopt when it is not, or cannot be examined
// (reading it reports that).
std::optional<std::string> secret_file_warning(const std::string& path, std::string_view what);

}  // namespace rp::util
