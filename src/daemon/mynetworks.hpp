// Postfix's mynetworks as CIDRs, for `ignore_mynetworks = true`: read with
// `postconf -h mynetworks` at start and at each reload.
// Entries that are not networks (type:table lookups, hostnames) are skipped with a warning; a
// missing or failing postconf adds nothing (warning), it never stops the daemon.
// Thread-safety: blocking (runs a child process); call at start-up or reload only.
// Security: postconf's output is trusted like the config (root-owned Postfix configuration).
#pragma once

#include <vector>

#include "core/address.hpp"

namespace rp::daemon {

std::vector<core::Cidr> postfix_mynetworks();

}  // namespace rp::daemon
