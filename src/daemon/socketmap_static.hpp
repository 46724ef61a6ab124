// The `[socketmap] static` file: the administrator's Sendmail access entries (makemap's text
// form, `KEY VALUE` lines, exports/map_formats.hpp parse_makemap) answered beside the permits by
// the socketmap frontend (frontends/netstring_codec.hpp, StaticAnswers).
// The daemon reads it at start (an error stops the start) and on every SIGHUP, also when the
// config text is unchanged (an error is logged and the running entries stay); `config check`
// reads it the same way.
// Thread-safety: a plain function.
// Security: the file is the administrator's (trusted) but parsed strictly; a regular file of at
// most k_max_socketmap_static bytes.
#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"
#include "frontends/netstring_codec.hpp"

namespace rp::daemon {

inline constexpr std::size_t k_max_socketmap_static = 16u << 20;

// The entries of `path`; null for an empty path (no static entries). Errors name the file.
core::Result<std::shared_ptr<const frontends::StaticAnswers>> read_socketmap_static(const std::string& path);

}  // namespace rp::daemon
