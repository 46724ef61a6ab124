// `relaypermit import FORMAT PATH` (an older system's live permits into the running daemon, each
// through its grant policy; docs/import.md) and `relaypermit list --static` (the static allow
// list: `allow` and every allow_file, with where each entry came from).
// import exit: 0 the import ran (its counts say what became of each entry), 2 an unreadable
// source, a bad option, or no daemon to talk to.
// Thread-safety: CLI entry points.
#pragma once

#include "cli/arg_parser.hpp"

namespace rp::cli {

int cmd_import(const ParsedArgs& a);
int cmd_list_static(const ParsedArgs& a);

}  // namespace rp::cli
