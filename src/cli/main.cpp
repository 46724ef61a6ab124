// relaypermit: POP/IMAP-before-SMTP relay permits. Everything lives in the libraries; see
// ARCHITECTURE.md for the map and relaypermit(8) for the commands.
#include <string>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
    return rp::cli::dispatch(std::vector<std::string>(argv + 1, argv + argc));
}
