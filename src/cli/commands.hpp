// The admin subcommands of the one `relaypermit` executable. main() only calls dispatch().
// Exit codes everywhere: 0 success / permitted, 1 no / not permitted / nothing matched,
// 2 error (bad usage, bad config, daemon unreachable, bad address).
#pragma once

#include <string>
#include <vector>

namespace rp::cli {

int dispatch(const std::vector<std::string>& argv);

}  // namespace rp::cli
