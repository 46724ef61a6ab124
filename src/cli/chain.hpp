// Exec chains: `relaypermit allow --chain -- PROGRAM [ARGS]` and
// `relaypermit check --chain -- PROGRAM [ARGS]`, run between a server and the program it starts.
//
// allow --chain (relay-ctrl-allow compatible; Dovecot post-login scripts, tcpserver/qmail-pop3d
// checkpassword chains, Courier authdaemon chains):
//   address: TCPREMOTEIP (tcpserver), else IP (Dovecot script-login). With Courier's variables
//   (AUTHUSER and AUTHARGV0 both set) a permit is granted only when AUTHENTICATED is non-empty.
//   user: USER, else AUTHUSER (may be empty).
//   Sends {"cmd":"allow","ip":..,"user":..} over the control socket, then execvp(PROGRAM). The
//   daemon's policy decides (an address in `ignore`, such as a webmail's 127.0.0.1, gets nothing,
//   silently). When the daemon is not running or does not answer in time, the login is spooled in
//   state_dir/spool (cli/offline.hpp) and granted at the daemon's start while still within ttl.
// check --chain (relay-ctrl-check / relaylock compatible; qmail-smtpd under tcpserver):
//   If RELAYCLIENT is already set, exec unchanged. Otherwise ask the daemon {"cmd":"check"} for
//   TCPREMOTEIP; if permitted set RELAYCLIENT to the config's `relayclient` (default "").
//   When the daemon cannot answer within 1 s the permit store is read read-only (embedded
//   store: SQLite in state_dir) together with the static `allow` list; if that fails too,
//   exec unchanged with a warning.
//
// Both NEVER read stdin or write stdout (they are the client's connection), and a login or an
// SMTP session never fails or stalls because of relaypermit: every failure (unreadable or bad
// config, permission denied, missing or invalid address, daemon down or frozen) is one warning
// line on stderr, then the exec. The daemon exchange is bounded by k_chain_timeout_ms in total
// (connect + send + read).
//
// Returns only when there is no program (then 0 after the grant/check, or 2 for a usage error)
// or when execvp fails (127, with a message on stderr).
// Thread-safety: call from a single-threaded process (it replaces the process image).
// Security: the environment comes from the server that runs us (trusted as far as the server is);
// the address is validated before use; the program is executed as given (never through a shell).
#pragma once

#include <string>
#include <vector>

namespace rp::cli {

inline constexpr int k_chain_timeout_ms = 1000;

int run_allow_chain(const std::string& config_path, bool explicit_config, const std::vector<std::string>& program);
int run_check_chain(const std::string& config_path, bool explicit_config, const std::vector<std::string>& program);

}  // namespace rp::cli
