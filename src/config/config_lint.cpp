// lint_config: what `config check` finds in a configuration that parses.
#include <optional>

#include "config/tables.hpp"
#include "util/endpoint.hpp"
#include "util/redact.hpp"

namespace rp::config {
namespace {

// One listening endpoint and who listens there ("[policy]", "source file:/x").
struct Listener {
    util::Endpoint ep;
    std::string text, owner;
};

bool wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Two endpoints the kernel would not let both bind: the same protocol and port on the same
// address, or one of them on the wildcard address; the same unix path. Port 0 (the kernel picks)
// never collides.
bool same_endpoint(const util::Endpoint& a, const util::Endpoint& b) {
    if (a.kind != b.kind) return false;
    if (a.kind == util::Endpoint::Kind::unix_stream) return a.path == b.path;
    if (a.port == 0 || a.port != b.port) return false;
    return a.host == b.host || wildcard(a.host) || wildcard(b.host);
}

std::vector<Listener> listeners(const Config& cfg) {
    std::vector<Listener> out;
    auto add = [&](const std::vector<std::string>& eps, const std::string& owner) {
        for (const auto& e : eps) {
            std::string_view text = e;
            if (text.starts_with("tls:")) text.remove_prefix(4);  // TLS runs over TCP
            if (auto ep = util::parse_endpoint(text)) out.push_back({*ep, e, owner});
        }
    };
    for (const auto t : all_of<FrontendType>())
        add(frontend_row(t).listen(cfg), "[" + std::string(to_string(t)) + "]");
    for (const auto& s : service_rows())
        if (s.listen) add(*s.listen(cfg), "[" + std::string(s.name) + "]");
    for (const auto& s : cfg.sources) add(s.listen, "source " + s.name + " (line " + std::to_string(s.line) + ")");
    return out;
}

void duplicate_endpoints(const Config& cfg, std::vector<Finding>& out) {
    const auto all = listeners(cfg);
    for (std::size_t i = 0; i < all.size(); ++i)
        for (std::size_t j = i + 1; j < all.size(); ++j)
            if (same_endpoint(all[i].ep, all[j].ep))
                out.push_back({true, cfg.file + ": " + all[i].owner + " listen = \"" + all[i].text + "\" and " +
                                         all[j].owner + " listen = \"" + all[j].text +
                                         "\" are one endpoint: only one of them could be bound"});
}

// Files holding a secret that others can read (docs/security.md, "Secrets"): the store password,
// API headers, TLS keys, and the config file itself when a password or header is written in it.
void readable_secrets(const Config& cfg, std::vector<Finding>& out) {
    auto check = [&](const std::string& path, std::string_view what) {
        if (auto w = path.empty() ? std::nullopt : util::secret_file_warning(path, what)) out.push_back({false, *w});
    };
    bool inline_secret = util::mask_url(cfg.store) != cfg.store;
    check(cfg.store_password_file, "store_password_file");
    for (const auto& s : cfg.sources) {
        check(s.api_header_file, "api_header_file");
        check(s.tls_key, "tls_key");
        inline_secret = inline_secret || (!s.api_header.empty() && s.api_header_file.empty());
    }
    if (inline_secret) check(cfg.file, "the config file (it holds a password or api_header)");
}

}  // namespace

std::vector<Finding> lint_config(const ConfigReport& report) {
    std::vector<Finding> out;
    const auto& cfg = report.config;
    duplicate_endpoints(cfg, out);
    if (report.has_content && cfg.sources.empty())
        out.push_back({false, cfg.file + ": no [[source]]: the daemon reads no logins (a file with content lists its "
                                         "sources; add a [[source]], e.g. type = \"file\", path = \"/var/log/mail.log\")"});
    readable_secrets(cfg, out);
    return out;
}

}  // namespace rp::config
