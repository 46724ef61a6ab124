#include "exports/map_formats.hpp"

#include <arpa/inet.h>
#include <cdb.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "util/unique_fd.hpp"

namespace rp::exports {
namespace {

std::string ntop(const core::Address& a) {
    char buf[INET6_ADDRSTRLEN];
    const int af = a.is_v4() ? AF_INET : AF_INET6;
    if (::inet_ntop(af, a.bytes().data(), buf, sizeof buf) == nullptr) return a.to_string();
    return buf;
}

// The first `groups` parts of an address: IPv4 octets joined by '.', IPv6 16-bit groups (hex, no
// leading zeros) joined by ':'.
std::string leading_parts(const core::Address& a, int groups) {
    std::string out;
    const auto& b = a.bytes();
    for (int i = 0; i < groups; ++i) {
        char h[8];
        if (a.is_v4()) {
            if (i) out += '.';
            out += std::to_string(b[static_cast<std::size_t>(i)]);
        } else {
            if (i) out += ':';
            const unsigned v = static_cast<unsigned>(b[static_cast<std::size_t>(2 * i)]) << 8 |
                               b[static_cast<std::size_t>(2 * i + 1)];
            const int n = std::snprintf(h, sizeof h, "%x", v);
            out.append(h, static_cast<std::size_t>(n));
        }
    }
    return out;
}

// The line's text is not quoted: the file may not be the one the administrator meant (a link to
// a file the daemon must not show, read as root), and the number finds the line.
std::string line_error(std::size_t line, std::string_view what) {
    return "line " + std::to_string(line) + ": " + std::string(what);
}

// scan_ulong + "nothing after the digits", as tcprules' getnum().
std::optional<unsigned long> getnum(std::string_view s) {
    unsigned long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        if (v > 100000000UL) return std::nullopt;  // tcprules would wrap; we refuse
        v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    return v;
}

util::UniqueFd memfd() { return util::UniqueFd(::memfd_create("rp-cdb", MFD_CLOEXEC)); }

// Calls entry(line, lineno) for each line of `text` (without its '\n') that is neither empty nor
// a '#' comment, as tcprules and makemap skip them; stops at the first error entry returns.
template <typename Fn>
core::Status each_entry(std::string_view text, Fn entry) {
    std::size_t lineno = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view x = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++lineno;
        if (x.empty() || x[0] == '#') continue;
        if (auto s = entry(x, lineno); !s) return s;
    }
    return core::ok();
}

// The data of a tcprules rule, what follows "ADDRESS:": `deny` or `allow`, then any number of
// `,VAR="value"` (any quote character) as tcprules stores it ("D\0" for deny, "+VAR=value\0" per
// variable). nullopt: unable to parse.
std::optional<std::string> tcprules_data(std::string_view x) {
    std::string data;
    if (x.starts_with("deny")) {
        data.append("D\0", 2);
        x.remove_prefix(4);
    } else if (x.starts_with("allow")) {
        x.remove_prefix(5);
    } else {
        return std::nullopt;
    }
    while (!x.empty()) {
        if (x[0] != ',') return std::nullopt;
        const auto eq = x.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        data += '+';
        data.append(x.substr(1, eq));  // "VAR="
        x.remove_prefix(eq + 1);
        if (x.empty()) return std::nullopt;
        const char quote = x[0];
        x.remove_prefix(1);
        const auto end = x.find(quote);
        if (end == std::string_view::npos) return std::nullopt;
        data.append(x.substr(0, end));
        data += '\0';
        x.remove_prefix(end + 1);
    }
    return data;
}

// Appends the records of one rule: one per address of an a.b.c.X-Y range (tcprules'
// doaddressdata(), only in keys without '=' and '@'), else the key as written. False: a bad range.
bool add_tcprules_keys(std::string_view address, std::string data, std::vector<Record>& out) {
    const auto dash = address.find('-');
    if (address.find('=') != std::string_view::npos || address.find('@') != std::string_view::npos ||
        dash == std::string_view::npos) {
        out.emplace_back(std::string(address), std::move(data));
        return true;
    }
    const auto dot = address.substr(0, dash).rfind('.');
    const std::size_t left = dot == std::string_view::npos ? 0 : dot + 1;
    auto right = address.find('.', dash + 1);
    if (right == std::string_view::npos) right = address.size();
    const auto bot = getnum(address.substr(left, dash - left));
    auto top = getnum(address.substr(dash + 1, right - dash - 1));
    if (!bot || !top) return false;
    if (*top > 255) top = 255;
    for (unsigned long n = *bot; n <= *top; ++n) {
        std::string key(address.substr(0, left));
        key += std::to_string(n);
        key += address.substr(right);
        out.emplace_back(std::move(key), data);
    }
    return true;
}

}  // namespace

std::optional<std::string> postfix_key(const core::Cidr& network) {
    if (!network.is_host()) return std::nullopt;
    return ntop(network.network());
}

std::optional<std::string> opensmtpd_key(const core::Cidr& network) {
    if (network.is_host()) return ntop(network.network());
    if (network.prefix() == 0) return std::nullopt;
    return ntop(network.network()) + "/" + std::to_string(network.prefix());
}

std::optional<std::string> sendmail_key(const core::Cidr& network) {
    const auto& a = network.network();
    if (network.is_host()) {
        return a.is_v4() ? "connect:" + a.to_string() : "connect:ipv6:" + a.to_full_string();
    }
    const int unit = a.is_v4() ? 8 : 16;
    if (network.prefix() == 0 || network.prefix() % unit != 0) return std::nullopt;
    return std::string(a.is_v4() ? "connect:" : "connect:ipv6:") +
           leading_parts(a, network.prefix() / unit);
}

std::optional<std::string> tcprules_key(const core::Cidr& network) {
    const auto& a = network.network();
    if (network.is_host()) return a.to_string();
    if (!a.is_v4() || network.prefix() == 0 || network.prefix() % 8 != 0) return std::nullopt;
    return leading_parts(a, network.prefix() / 8) + ".";
}

std::string tcprules_relay_value(std::string_view relayclient) {
    std::string v = "+RELAYCLIENT=";
    v += relayclient;
    v += '\0';
    return v;
}

core::Result<std::vector<Record>> parse_tcprules(std::string_view text) {
    std::vector<Record> out;
    auto s = each_entry(text, [&](std::string_view x, std::size_t lineno) -> core::Status {
        while (!x.empty() && (x.back() == ' ' || x.back() == '\t')) x.remove_suffix(1);
        const auto colon = x.find(':');
        if (colon == std::string_view::npos) return core::ok();
        const std::string_view address = x.substr(0, colon);
        auto data = tcprules_data(x.substr(colon + 1));
        if (!data || !add_tcprules_keys(address, std::move(*data), out))
            return core::make_error(line_error(lineno, "unable to parse this line"));
        return core::ok();
    });
    if (!s) return s.error();
    return out;
}

core::Result<std::vector<Record>> parse_makemap(std::string_view text) {
    std::vector<Record> out;
    std::set<std::string> seen;
    auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    auto s = each_entry(text, [&](std::string_view x, std::size_t lineno) -> core::Status {
        if (is_space(x[0])) return core::make_error(line_error(lineno, "syntax error (leading space)"));
        std::size_t k = 0;
        while (k < x.size() && !is_space(x[k])) ++k;
        std::string key(x.substr(0, k));
        std::size_t v = k;
        while (v < x.size() && is_space(x[v])) ++v;
        if (v >= x.size()) return core::make_error(line_error(lineno, "no RHS for LHS"));
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!seen.insert(key).second) return core::make_error(line_error(lineno, "duplicate key"));
        out.emplace_back(std::move(key), std::string(x.substr(v)));
        return core::ok();
    });
    if (!s) return s.error();
    return out;
}

core::Result<std::string> build_cdb(std::span<const Record> records) {
    auto fd = memfd();
    if (!fd) return core::make_error(std::string("memfd_create: ") + std::strerror(errno));
    struct cdb_make cm;
    if (cdb_make_start(&cm, fd.get()) < 0) return core::make_error("cdb_make_start failed");
    for (const auto& [k, v] : records) {
        if (cdb_make_add(&cm, k.data(), static_cast<unsigned>(k.size()), v.data(),
                         static_cast<unsigned>(v.size())) < 0) {
            const int err = errno;
            (void)cdb_make_finish(&cm);  // frees the table
            return core::make_error(std::string("cdb_make_add: ") + std::strerror(err));
        }
    }
    if (cdb_make_finish(&cm) < 0) return core::make_error(std::string("cdb_make_finish: ") + std::strerror(errno));
    std::string out;
    char buf[65536];
    off_t pos = 0;
    for (;;) {
        const ssize_t n = ::pread(fd.get(), buf, sizeof buf, pos);
        if (n < 0) return core::make_error(std::string("reading CDB image: ") + std::strerror(errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        pos += n;
    }
    return out;
}

core::Result<std::vector<Record>> read_cdb(std::string_view image) {
    auto fd = memfd();
    if (!fd) return core::make_error(std::string("memfd_create: ") + std::strerror(errno));
    if (::write(fd.get(), image.data(), image.size()) != static_cast<ssize_t>(image.size()))
        return core::make_error("writing CDB image failed");
    struct cdb c;
    if (cdb_init(&c, fd.get()) < 0) return core::make_error("not a CDB file");
    std::vector<Record> out;
    unsigned pos;
    cdb_seqinit(&pos, &c);
    int r;
    while ((r = cdb_seqnext(&pos, &c)) > 0) {
        std::string k(cdb_keylen(&c), '\0'), v(cdb_datalen(&c), '\0');
        if (cdb_read(&c, k.data(), cdb_keylen(&c), cdb_keypos(&c)) < 0 ||
            cdb_read(&c, v.data(), cdb_datalen(&c), cdb_datapos(&c)) < 0) {
            r = -1;
            break;
        }
        out.emplace_back(std::move(k), std::move(v));
    }
    cdb_free(&c);
    if (r < 0) return core::make_error("corrupt CDB file");
    return out;
}

}  // namespace rp::exports
