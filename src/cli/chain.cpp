#include "cli/chain.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "config/config.hpp"
#include "core/address.hpp"
#include "core/time.hpp"
#include "cli/offline.hpp"
#include "daemon/control_protocol.hpp"
#include "store/permit_store.hpp"
#include "util/log.hpp"

namespace rp::cli {
namespace {

// stderr only: stdin and stdout belong to the client's connection. One line in the caller's log,
// whatever the environment's values hold (util::escape_text).
void warn(const char* mode, const std::string& msg) {
    std::fprintf(stderr, "relaypermit: %s --chain: %s\n", mode, util::escape_text(msg).c_str());
    std::fflush(stderr);
}

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
}

// Replaces the process image; returns only on failure (127).
int exec_program(const char* mode, const std::vector<std::string>& program) {
    std::vector<char*> argv;
    argv.reserve(program.size() + 1);
    for (const auto& a : program) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    warn(mode, "cannot execute " + program[0] + ": " + std::strerror(errno));
    return 127;
}

struct GrantResult {
    std::string problem;  // a warning for stderr ("" = nothing to say)
    bool failed = false;  // no permit, and not on purpose
};

// Grants a permit through the daemon, or spools the login when the daemon is not running (or
// does not answer in time). Nothing to grant on purpose (Courier without AUTHENTICATED, an address
// in `ignore` such as a webmail's 127.0.0.1) is silent.
GrantResult grant(const std::string& config_path, bool explicit_config) {
    auto ip = env("TCPREMOTEIP");
    if (!ip || ip->empty()) ip = env("IP");
    if (!ip || ip->empty()) return {"no client address (neither TCPREMOTEIP nor IP is set); no permit granted", true};
    // Courier (authdaemon chains) sets AUTHUSER and AUTHARGV0, and AUTHENTICATED only on success.
    if (env("AUTHUSER") && env("AUTHARGV0")) {
        const auto authenticated = env("AUTHENTICATED");
        if (!authenticated || authenticated->empty()) return {};
    }
    auto addr = core::Address::parse(*ip);
    if (!addr) return {"not an IP address: '" + *ip + "'; no permit granted", true};
    auto user = env("USER");
    if (!user || user->empty()) user = env("AUTHUSER");

    auto cfg = config::load_config(config_path, explicit_config);
    if (!cfg) return {cfg.error().message + "; no permit granted", true};
    nlohmann::json req = {{"cmd", "allow"}, {"ip", addr->to_string()}, {"user", user.value_or("")}};
    daemon::ControlFailure why{};
    auto reply = daemon::control_call(cfg->control_socket, req, k_chain_timeout_ms, &why);
    if (!reply && (why == daemon::ControlFailure::not_running || why == daemon::ControlFailure::no_answer)) {
        const auto sp = spool_offline(*cfg, *addr, user.value_or(""), std::nullopt, core::SystemClock().now());
        if (sp.kind == SpoolOutcome::Kind::ignored) return {};
        if (sp.kind == SpoolOutcome::Kind::spooled) return {reply.error().message + "; login of " + addr->to_string() + " " + sp.message};
        return {reply.error().message + "; cannot spool the login either (" + sp.message + "); no permit granted for " +
                    addr->to_string(), true};
    }
    if (!reply) return {reply.error().message + "; no permit granted for " + addr->to_string(), true};
    if (!reply->value("ok", false)) {
        if (reply->value("refused", std::string()) == "ignored") return {};
        return {"daemon refused: " + reply->value("error", std::string("unknown error")) + "; no permit granted for " +
                    addr->to_string(), true};
    }
    return {};
}

}  // namespace

int run_allow_chain(const std::string& config_path, bool explicit_config, const std::vector<std::string>& program) {
    const auto result = grant(config_path, explicit_config);
    if (!result.problem.empty()) warn("allow", result.problem);
    if (program.empty()) return result.failed ? 2 : 0;
    return exec_program("allow", program);
}

int run_check_chain(const std::string& config_path, bool explicit_config, const std::vector<std::string>& program) {
    if (env("RELAYCLIENT")) return program.empty() ? 0 : exec_program("check", program);  // already decided upstream

    std::optional<bool> permitted;
    std::string relayclient;
    const auto ip = env("TCPREMOTEIP");
    const auto addr = ip ? core::Address::parse(*ip) : std::nullopt;
    if (!ip || ip->empty()) {
        warn("check", "TCPREMOTEIP is not set; RELAYCLIENT not set");
    } else if (!addr) {
        warn("check", "not an IP address: '" + *ip + "'; RELAYCLIENT not set");
    } else if (auto cfg = config::load_config(config_path, explicit_config); !cfg) {
        warn("check", cfg.error().message + "; RELAYCLIENT not set");
    } else {
        relayclient = cfg->relayclient;
        auto reply = daemon::control_call(cfg->control_socket, {{"cmd", "check"}, {"ip", addr->to_string()}},
                                          k_chain_timeout_ms);
        if (reply && reply->value("ok", false)) {
            permitted = reply->value("permitted", false);
        } else {
            const std::string why = reply ? reply->value("error", std::string("daemon refused")) : reply.error().message;
            // Fallback: the static allow list, then the permit store opened read-only.
            const bool static_allow = std::any_of(cfg->allow.begin(), cfg->allow.end(),
                                                  [&](const core::Cidr& c) { return c.contains(*addr); });
            if (static_allow) {
                permitted = true;
            } else {
                auto st = store::open_store({cfg->state_dir, cfg->store, cfg->store_password_file, true});
                if (st) {
                    permitted = (*st)->find(*addr, core::SystemClock().now()).has_value();
                    warn("check", why + "; answered from the permit store (read-only)");
                } else {
                    warn("check", why + "; the permit store cannot be read either (" + st.error().message +
                                      "); RELAYCLIENT not set");
                }
            }
        }
    }
    if (permitted.value_or(false) && ::setenv("RELAYCLIENT", relayclient.c_str(), 1) != 0)
        warn("check", std::string("setenv: ") + std::strerror(errno));
    if (program.empty()) return permitted ? (*permitted ? 0 : 1) : 2;
    return exec_program("check", program);
}

}  // namespace rp::cli
