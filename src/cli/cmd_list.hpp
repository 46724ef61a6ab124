// `relaypermit list [--user NAME] [--ip CIDR] [--source NAME] [--json]`: the live permits.
//
// Streams: the daemon produces the reply while we read it (daemon/permit_listing.hpp), and each
// permit is printed as soon as it has arrived, so a million permits need neither a large buffer
// here nor a long wait for the first row. Rows come in the daemon's table order, not sorted.
// With the daemon stopped, the embedded store is read read-only (cli/offline.hpp), same filters.
// format_permit_row is the one text format of a row (later columns go there).
// Exit: 0 listed (possibly nothing), 2 an error.
// Thread-safety: a CLI entry point. Security: user names are log text: escaped before printing.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "cli/arg_parser.hpp"

namespace rp::cli {

int cmd_list(const ParsedArgs& a);

// The header line of the text listing, and one row from a permit's JSON (daemon::permit_json).
std::string format_permit_header();
std::string format_permit_row(const nlohmann::json& permit);

}  // namespace rp::cli
