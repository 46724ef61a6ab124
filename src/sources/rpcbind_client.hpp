// RpcbindClient: announces (SET) and withdraws (UNSET) an ONC RPC program at the local rpcbind,
// so that clients which look the program up there (clnt_create, as dracauth() does) find our
// ports. Speaks rpcbind version 4 over its local stream socket (/run/rpcbind.sock, record
// marking; drac_codec.hpp encodes the calls): Debian's rpcbind accepts SET/UNSET only there
// (over UDP/TCP loopback only with its -L option), and credits the mapping to our uid, which
// is why we register after privileges are dropped and withdraw as the same user.
//
// The exchange blocks for at most `deadline` in total; DracSource runs registration on a
// thread of its own so the loop never waits, and the withdrawal at stop is bounded the same way.
// An absent rpcbind (no socket) is an error at once, never a wait.
// Thread-safety: plain function; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "sources/drac_codec.hpp"

namespace rp::sources {

inline constexpr const char* k_rpcbind_socket = "/run/rpcbind.sock";

struct RpcbMapping {
    std::uint32_t prog = 0, vers = 0;
    std::string netid;  // "udp", "tcp", "udp6", "tcp6"; "" with UNSET: every transport
    std::string uaddr;  // universal address; ignored by UNSET
};

// Sends `proc` for each mapping, in order, on one connection. Returns rpcbind's answer for each
// (false: e.g. SET of a mapping that another owner holds), or an error when rpcbind cannot be
// reached or does not answer within `deadline`.
core::Result<std::vector<bool>> rpcbind_exchange(const std::string& socket_path, RpcbProc proc,
                                                 const std::vector<RpcbMapping>& mappings,
                                                 std::chrono::milliseconds deadline);

}  // namespace rp::sources
