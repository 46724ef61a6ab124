// `relaypermit scan [FILE...]`: print IP<TAB>USER<TAB>SERVER for each successful login in the
// files (or standard input), with the daemon's pattern sets, without a daemon.
//
// A regular file is read in chunks of whole lines by up to --threads threads (util::ChunkedFile,
// util::ordered_parallel_map): each chunk is prefiltered and matched where it was read
// (Matcher::scan_chunk), and the chunks are emitted in file order (Matcher::emit_chunk), so the
// output is byte for byte that of one thread (which matches each chunk as it reads it,
// Matcher::scan, copying nothing). Each chunk is read through read() into the
// thread's buffer or through a mapping: --read-path (auto, read, mmap; default auto, which
// measures the first chunks, shorter ones, both ways: util::ReadPathChooser). A stream is read
// into one buffer.
// --stats prints the path taken and the figures behind the choice to standard error.
// Security: the USER column is the log's text, written escaped (util::append_column: control
// bytes, C1 controls, bidirectional and invisible format characters and invalid UTF-8 as \t,
// \r, \n or \xHH, a backslash as \\; other UTF-8 kept), so a tab cannot shift the columns, no
// escape sequence reaches a terminal, and every escape in the output is ours.
// Exit: 0 done (whether or not a login was found), 2 a bad option, config or unreadable file.
// Thread-safety: a CLI entry point.
#pragma once

#include "cli/arg_parser.hpp"

namespace rp::cli {

int cmd_scan(const ParsedArgs& a);

}  // namespace rp::cli
