#include "cli/cmd_exports.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdio>
#include <cstring>

#include "config/config.hpp"
#include "exports/export_scheduler.hpp"
#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace rp::cli {
namespace {

// True when something accepts connections on the control socket: a daemon is running. After a
// crash the file is left behind, but nobody listens (ECONNREFUSED).
bool daemon_listening(const std::string& path) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sun.sun_path) return false;
    std::memcpy(sun.sun_path, path.data(), path.size());
    util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
}

}  // namespace

int cmd_exports_clean(const ParsedArgs& a) {
    auto cfg = config::load_config(a.get("--config", config::k_default_path), a.has("--config"));
    if (!cfg) {
        std::fprintf(stderr, "relaypermit: %s\n", cfg.error().message.c_str());
        return 2;
    }
    if (daemon_listening(cfg->control_socket)) {
        std::fprintf(stderr, "relaypermit: a daemon answers on %s; it keeps the exports current itself\n",
                     cfg->control_socket.c_str());
        return 2;
    }
    util::EventLoop loop;  // runs the after_write commands
    core::SystemClock clock;
    std::vector<std::unique_ptr<exports::Exporter>> all;
    for (const auto& x : cfg->exports) {
        auto e = exports::open_exporter(x, cfg->relayclient, &loop, exports::StaticCheck::at_write);
        if (!e) {
            std::fprintf(stderr, "relaypermit: %s:%d: export: %s\n", cfg->file.c_str(), x.line, e.error().message.c_str());
            return 2;
        }
        all.push_back(std::move(*e));
    }
    exports::ExportScheduler sched(loop, clock, [](core::Time) { return std::vector<core::Permit>(); });
    sched.set_exporters(std::move(all));
    sched.stop();  // the static parts only, and the after_write commands
    int failed = 0;
    for (const auto& s : sched.status()) failed += s.failures > 0 ? 1 : 0;
    std::printf("%zu export(s) rewritten without permits%s\n", cfg->exports.size() - static_cast<std::size_t>(failed),
                failed ? ", some failed (see above)" : "");
    return failed ? 2 : 0;
}

void print_export_status(const nlohmann::json& exports) {
    for (const auto& e : exports) {
        const std::string last = e.value("last_success", "");
        const std::string error = e.value("last_error", "");
        const bool failing = e.value("failing", false);
        std::printf("export %s: last write %s, writes %llu, failures %llu%s%s\n", e.value("export", "").c_str(),
                    last.empty() ? "never" : last.c_str(), e.value("writes", 0ULL), e.value("failures", 0ULL),
                    failing ? "; FAILING: " : error.empty() ? "" : "; last error: ", error.c_str());
    }
}

}  // namespace rp::cli
