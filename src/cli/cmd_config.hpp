// `relaypermit config check` and `relaypermit config show`.
//
// check: every error of the file in one run (FILE:LINE: key = value: problem, on stderr), then
// what only a whole configuration shows: the patterns compile, a shared store's URL is usable,
// each export's `static` file is readable and parses, no two listeners share an endpoint; and
// warnings (no [[source]] in a file with content, a secret in a file others can read).
// Exit 0 (ok, warnings possible) or 2 (errors).
// show: the effective configuration in TOML with every default, secrets masked, like postconf;
// --non-default: only what the file sets, like postconf -n. Exit 0, or 2 with the errors.
// Thread-safety: CLI entry points.
#pragma once

#include "cli/arg_parser.hpp"

namespace rp::cli {

int cmd_config_check(const ParsedArgs& a);
int cmd_config_show(const ParsedArgs& a);

}  // namespace rp::cli
