#include "cli/cmd_list.hpp"

#include "cli/cmd_import.hpp"

#include <cstdio>

#include "cli/offline.hpp"
#include "config/config.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/permit_listing.hpp"
#include "util/log.hpp"

namespace rp::cli {
namespace {

constexpr int k_ok = 0, k_error = 2;
constexpr int k_read_timeout_ms = 5000;  // per read: a long listing keeps coming

void err(const std::string& msg) { std::fprintf(stderr, "relaypermit: %s\n", util::escape_text(msg).c_str()); }

// Prints rows as they come: the text header or "[" before the first, "]" at the end.
class RowPrinter {
public:
    explicit RowPrinter(bool json) : json_(json) {}
    void operator()(const nlohmann::json& p) {
        start();
        if (json_) {
            std::string text = p.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
            for (std::size_t i = 0; (i = text.find('\n', i)) != std::string::npos; i += 3) text.replace(i, 1, "\n  ");
            std::printf("%s\n  %s", rows_ == 0 ? "" : ",", text.c_str());
        } else {
            std::fputs(format_permit_row(p).c_str(), stdout);
        }
        ++rows_;
    }
    void finish() {
        start();
        if (json_) std::printf(rows_ == 0 ? "]\n" : "\n]\n");
        std::fflush(stdout);
    }

private:
    void start() {
        if (started_) return;
        started_ = true;
        std::fputs(json_ ? "[" : format_permit_header().c_str(), stdout);
    }
    bool json_;
    bool started_ = false;
    std::size_t rows_ = 0;
};

core::Result<daemon::PermitFilter> filter_of(const ParsedArgs& a, nlohmann::json& req) {
    daemon::PermitFilter f;
    if (a.has("--user")) req["user"] = *(f.user = a.get("--user"));
    if (a.has("--source")) req["source"] = *(f.source = a.get("--source"));
    if (a.has("--ip")) {
        auto net = core::Cidr::parse(a.get("--ip"));
        if (!net) return core::make_error("--ip: " + net.error().message);
        f.network = *net;
        req["network"] = net->to_string();
    }
    return f;
}

}  // namespace

// The BUDGET column of `list`: "r12/100,m2/20" (recipients, messages used/limit), "-" without.
static std::string budget_cell(const nlohmann::json& permit) {
    const auto b = permit.value("budget", nlohmann::json::object());
    std::string out;
    for (const auto& [kind, tag] : {std::pair{"recipients", "r"}, std::pair{"messages", "m"}})
        if (b.contains(kind) && b[kind].is_string()) out += (out.empty() ? "" : ",") + std::string(tag) + b[kind].get<std::string>();
    return out.empty() ? "-" : out;
}

std::string format_permit_header() {
    char line[160];
    std::snprintf(line, sizeof line, "%-40s %-20s %-21s %-21s %-7s %-15s %s\n", "IP", "USER", "GRANTED", "EXPIRES", "SESSION",
                  "BUDGET", "SOURCE");
    return line;
}

std::string format_permit_row(const nlohmann::json& p) {
    const auto raw = p.value("user", "");
    const auto user = raw.empty() ? std::string("-") : util::escape_value(raw);  // one row, no terminal escapes
    const auto source = util::escape_text(p.value("source", ""));
    const auto budget = budget_cell(p);
    // open, closed or none (max_lifetime, docs/limits.md); "-" offline, where no daemon knows it
    const auto session = util::escape_text(p.value("session", "-"));
    std::string line(40 + 20 + 21 + 21 + 8 + 16 + 5 + user.size() + source.size() + budget.size() + session.size() + 64,
                     '\0');
    const int n = std::snprintf(line.data(), line.size(), "%-40s %-20s %-21s %-21s %-7s %-15s %s\n",
                                p.value("ip", "").c_str(), user.c_str(), p.value("granted", "").c_str(),
                                p.value("expires", "").c_str(), session.c_str(), budget.c_str(), source.c_str());
    line.resize(n > 0 ? std::min(static_cast<std::size_t>(n), line.size() - 1) : 0);
    return line;
}

int cmd_list(const ParsedArgs& a) {
    if (a.has("--static")) return cmd_list_static(a);
    auto cfg = config::load_config(a.get("--config", config::k_default_path), a.has("--config"));
    if (!cfg) {
        err(cfg.error().message);
        return k_error;
    }
    nlohmann::json req = {{"cmd", "list"}};
    auto filter = filter_of(a, req);
    if (!filter) {
        err(filter.error().message);
        return k_error;
    }
    RowPrinter print(a.has("--json"));
    daemon::ControlFailure why{};
    auto r = daemon::control_stream(cfg->control_socket, req, k_read_timeout_ms, std::ref(print), &why);
    if (r && !r->value("ok", false)) r = core::make_error(r->value("error", std::string("daemon refused the request")));
    if (!r && why == daemon::ControlFailure::not_running) {
        auto st = list_offline(*cfg, core::SystemClock().now(), *filter, std::ref(print));
        if (st) err(k_not_running_note);
        r = st ? core::Result<nlohmann::json>(nlohmann::json::object()) : core::Result<nlohmann::json>(st.error());
    }
    if (!r) {
        err(r.error().message);
        return k_error;
    }
    print.finish();
    return k_ok;
}

}  // namespace rp::cli
