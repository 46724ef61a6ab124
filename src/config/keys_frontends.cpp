// The MTA frontend tables: [policy] (Postfix policy service) and the listen-only frontends
// [socketmap], [readsocket], [opensmtpd]. One FrontendRow per FrontendType; the daemon builds the
// frontend itself (daemon/wiring.cpp, its row per FrontendType).
#include "config/tables.hpp"

namespace rp::config {
namespace {

core::Status set_policy_listen(PolicyConfig& p, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_strings(c, n, key);
    if (!v) return v.error();
    for (const auto& e : *v)
        if (e.starts_with("udp:")) return c.err(n, key, "the policy service needs a stream endpoint, not " + e);
    if (auto st = check_endpoints(c, n, key, *v, false, false); !st) return st;
    p.listen = *v;
    return core::ok();
}

const KeyRow<PolicyConfig> k_policy_keys[] = {
    {{"listen", "endpoints", "where the policy service listens; empty = off"},
     set_policy_listen, show_member<&PolicyConfig::listen>},
    {{"max_request_bytes", "integer", "the longest request (1024 to 16 MiB)"},
     set_int<&PolicyConfig::max_request_bytes, 1024, 1 << 24>, show_member<&PolicyConfig::max_request_bytes>},
    {{"max_attributes", "integer", "the most attributes in one request"},
     set_int<&PolicyConfig::max_attributes, 8, 100000>, show_member<&PolicyConfig::max_attributes>},
    {{"idle_timeout", "duration", "a connection idle this long is closed (at least 1s)"},
     set_duration<&PolicyConfig::idle_timeout, 1>, show_member<&PolicyConfig::idle_timeout>},
    {{"max_clients", "integer", "connections at once; past it the longest-idle one is closed"},
     set_int<&PolicyConfig::max_clients, 1, 1000000>, show_member<&PolicyConfig::max_clients>},
};

template <typename T, bool UnixOnly>
core::Status set_listen(T& l, const Ctx& c, const toml::node& n, const std::string& key) {
    auto v = get_strings(c, n, key);
    if (!v) return v.error();
    for (const auto& e : *v)
        if (UnixOnly && !e.starts_with("unix:")) return c.err(n, key, "needs a unix:/path endpoint, not " + e);
    if (auto st = check_endpoints(c, n, key, *v, false, false); !st) return st;
    l.listen = *v;
    return core::ok();
}

const KeyRow<SocketmapConfig> k_socketmap_keys[] = {
    {{"listen", "endpoints", "where it listens; empty = off"}, set_listen<SocketmapConfig, false>,
     show_member<&SocketmapConfig::listen>},
    {{"static", "path", "Sendmail access entries (makemap text) answered beside the permits; re-read on SIGHUP"},
     set_abs_path<&SocketmapConfig::static_path>, show_path<&SocketmapConfig::static_path>},
};
const KeyRow<ListenerConfig> k_listen_keys[] = {
    {{"listen", "endpoints", "where it listens; empty = off"}, set_listen<ListenerConfig, false>,
     show_member<&ListenerConfig::listen>},
};
const KeyRow<ListenerConfig> k_unix_listen_keys[] = {
    {{"listen", "endpoints", "unix: endpoints where it listens; empty = off"}, set_listen<ListenerConfig, true>,
     show_member<&ListenerConfig::listen>},
};

// The helpers each row is made of, over the table's member of Config and its key rows.
template <auto Member>
using TableOf = typename MemberOf<Member>::Value;

template <FrontendType Type, auto Member, const auto& Rows>
void parse_frontend(Config& cfg, const Ctx& c, const toml::node& n) {
    parse_sub_table<Member>(cfg, c, n, std::string(to_string(Type)), std::span<const KeyRow<TableOf<Member>>>(Rows));
}

template <auto Member, const auto& Rows>
std::vector<ShownRow> show_frontend(const Config& cfg) {
    return show_rows(std::span<const KeyRow<TableOf<Member>>>(Rows), cfg.*Member);
}

template <auto Member>
const std::vector<std::string>& listen_of(const Config& cfg) {
    return (cfg.*Member).listen;
}

template <FrontendType Type, auto Member, const auto& Rows>
constexpr FrontendRow row(std::string_view doc) {
    return {Type, doc, parse_frontend<Type, Member, Rows>, show_frontend<Member, Rows>, listen_of<Member>};
}

// In FrontendType order (checked below).
const FrontendRow k_frontends[] = {
    row<FrontendType::policy, &Config::policy, k_policy_keys>("Postfix policy delegation: action=OK or DUNNO"),
    row<FrontendType::socketmap, &Config::socketmap, k_socketmap_keys>("netstring socketmap for Postfix and Sendmail"),
    row<FrontendType::readsocket, &Config::readsocket, k_listen_keys>("Exim ${readsocket}: yes or no"),
    row<FrontendType::opensmtpd, &Config::opensmtpd, k_unix_listen_keys>("OpenSMTPD table-socketmap lines"),
};
static_assert(std::size(k_frontends) == static_cast<std::size_t>(FrontendType::opensmtpd) + 1);

}  // namespace

const FrontendRow& frontend_row(FrontendType t) { return k_frontends[static_cast<std::size_t>(t)]; }

}  // namespace rp::config
