#include "store/shared_backend.hpp"

#include "util/redact.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace rp::store {
namespace {

using core::make_error;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX escapes; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

}  // namespace

std::string StoreUrl::redacted() const {
    std::string out = scheme + "://";
    if (!user.empty()) out += user + (password.empty() ? "" : ":***") + "@";
    else if (!password.empty()) out += ":***@";
    if (host.find(':') != std::string::npos) out += "[" + host + "]";
    else out += host;
    if (port) out += ":" + std::to_string(port);
    if (!database.empty()) out += "/" + database;
    char sep = '?';
    for (const auto& [k, v] : params) {
        out += sep + k + "=" + (util::is_secret_name(k) ? std::string("***") : v);
        sep = '&';
    }
    return out;
}

namespace {

constexpr const char* k_url_shape = "store URL must look like scheme://host[:port][/database]";

// The scheme, lower-cased, with the aliases folded; returns what follows "://".
core::Result<std::string_view> parse_scheme(std::string_view url, StoreUrl& u) {
    const auto colon = url.find("://");
    if (colon == std::string_view::npos || colon == 0) return make_error(k_url_shape);
    u.scheme = std::string(url.substr(0, colon));
    // RFC 3986 scheme characters only: otherwise the "scheme" is text in which "://" happens to
    // occur (in a password, say), and it would be printed.
    if (std::isalpha(static_cast<unsigned char>(u.scheme[0])) == 0 ||
        !std::all_of(u.scheme.begin(), u.scheme.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '.' || c == '-';
        }))
        return make_error(k_url_shape);
    for (auto& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (u.scheme == "postgres") u.scheme = "postgresql";
    if (u.scheme == "mariadb") u.scheme = "mysql";
    return url.substr(colon + 3);
}

// What follows "://", cut into its still-encoded parts.
struct UrlParts {
    std::optional<std::string_view> info;  // user[:password]
    std::string_view host_port, path, query;
};

UrlParts split_url_rest(std::string_view rest) {
    UrlParts parts;
    // userinfo ends at the LAST '@': a password may hold '/', '?', '#', ':' or '@' unescaped, so
    // neither the first '@' nor the path or query may end it (an '@' in the database name or a
    // parameter is written %40).
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        parts.info = rest.substr(0, at);
        rest = rest.substr(at + 1);
    }
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        parts.query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (auto s = rest.find('/'); s != std::string_view::npos) {
        parts.path = rest.substr(s + 1);
        rest = rest.substr(0, s);
    }
    parts.host_port = rest;
    return parts;
}

core::Status parse_userinfo(std::string_view info, StoreUrl& u) {
    std::string_view user = info;
    std::optional<std::string_view> pass;
    if (auto c = info.find(':'); c != std::string_view::npos) {
        user = info.substr(0, c);
        pass = info.substr(c + 1);
    }
    auto du = percent_decode(user);
    if (!du) return make_error("store URL: malformed %-escape in the user name");
    u.user = *du;
    if (pass) {
        auto dp = percent_decode(*pass);
        if (!dp) return make_error("store URL: malformed %-escape in the password");
        u.password = *dp;
    }
    return core::ok();
}

// host[:port], host may be [v6]
core::Status parse_host_port(std::string_view rest, StoreUrl& u) {
    std::optional<std::string_view> port;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) return make_error("store URL: '[' without ']' around the host");
        u.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return make_error("store URL: unexpected text after ']'");
            port = rest.substr(1);
        }
    } else if (auto c = rest.rfind(':'); c != std::string_view::npos) {
        u.host = std::string(rest.substr(0, c));
        port = rest.substr(c + 1);
    } else {
        u.host = std::string(rest);
    }
    if (port) {
        int p = 0;
        auto [ptr, ec] = std::from_chars(port->data(), port->data() + port->size(), p);
        if (ec != std::errc() || ptr != port->data() + port->size() || p < 1 || p > 65535)
            return make_error("store URL: port must be a number from 1 to 65535");
        u.port = p;
    }
    return core::ok();
}

core::Status parse_query(std::string_view query, StoreUrl& u) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        auto k = percent_decode(kv.substr(0, eq));
        auto v = percent_decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
        if (!k || !v || k->empty()) return make_error("store URL: malformed query parameter");
        if (*k == "host") u.host = *v;  // libpq style: ?host=/run/postgresql for a unix socket
        else u.params[*k] = *v;
    }
    return core::ok();
}

}  // namespace

// Steps in the order the original single pass took them, so the first error reported for a URL
// with several faults stays the same: scheme, userinfo, host/port, database, query.
core::Result<StoreUrl> parse_store_url(std::string_view url) {
    StoreUrl u;
    u.original = std::string(url);
    auto rest = parse_scheme(url, u);
    if (!rest) return rest.error();
    const UrlParts parts = split_url_rest(*rest);
    if (parts.info) {
        if (auto st = parse_userinfo(*parts.info, u); !st) return st.error();
    }
    if (auto st = parse_host_port(parts.host_port, u); !st) return st.error();
    if (!parts.path.empty()) {
        auto d = percent_decode(parts.path);
        if (!d) return make_error("store URL: malformed %-escape in the database name");
        u.database = *d;
    }
    if (auto st = parse_query(parts.query, u); !st) return st.error();
    if (u.host.empty()) return make_error("store URL: no host (write e.g. " + u.scheme + "://127.0.0.1/...)");
    return u;
}

core::Status SharedBackend::snapshot_to(core::Time now, const PermitSink& sink) {
    auto rows = snapshot(now);
    if (!rows) return rows.error();
    for (const auto& p : *rows)
        sink({p.network, p.user, p.source, core::to_unix_micros(p.granted), core::to_unix_micros(p.expires)});
    return core::ok();
}

core::Result<std::vector<core::Permit>> SharedBackend::collect_snapshot(core::Time now) {
    std::vector<core::Permit> out;
    auto st = snapshot_to(now, [&](const PermitRow& r) {
        out.push_back({r.network, std::string(r.user), std::string(r.source), core::from_unix_micros(r.granted_us),
                       core::from_unix_micros(r.expires_us)});
    });
    if (!st) return st.error();
    return out;
}

core::Result<std::vector<SharedBackend::Row>> SharedBackend::read_rows(const std::string&) {
    return core::make_error(describe() + ": only SQL engines (postgresql://, mysql://) answer queries");
}

core::Result<std::unique_ptr<SharedBackend>> make_backend(const StoreUrl& url) {
    if (url.scheme == "redis" || url.scheme == "rediss") return make_redis_backend(url);  // rediss: a clear "no TLS" error
    if (url.scheme == "postgresql") return make_pgsql_backend(url);
    if (url.scheme == "mysql") return make_mysql_backend(url);
    return make_error("store URL: unknown scheme '" + url.scheme +
                      "' (known: redis://, postgresql://, mysql://; absent = the embedded store)");
}

}  // namespace rp::store
