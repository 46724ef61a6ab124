// `relaypermit exports clean`: rewrites every [[export]] without dynamic permits, without a daemon.
//
// The unit runs it as ExecStopPost=, so after a crash (kill -9, OOM, abort) no map file keeps
// permits that nobody expires any more: the MTA would let their clients relay until the next
// start. A graceful stop does the same inside the daemon; this covers the rest. It refuses while
// a daemon answers on the control socket (the daemon keeps the files current itself).
// Exit: 0 every export rewritten, 2 a bad config, a running daemon, or a failed write (logged).
// Thread-safety: a CLI entry point.
#pragma once

#include <nlohmann/json.hpp>

#include "cli/arg_parser.hpp"

namespace rp::cli {

int cmd_exports_clean(const ParsedArgs& a);

// `relaypermit status` (text): one line per [[export]] from the reply's "exports" array: last
// successful write, writes, failures, and the error while it is failing.
void print_export_status(const nlohmann::json& exports);

}  // namespace rp::cli
