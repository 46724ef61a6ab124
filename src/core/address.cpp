#include "core/address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace rp::core {
namespace {

constexpr std::array<std::uint8_t, 12> k_v4_mapped_prefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// inet_pton needs a NUL-terminated string; addresses are short, so copy into a stack buffer.
// A NUL inside the text would end the C string early ("192.0.2.1\0junk" read as 192.0.2.1): the
// whole text must be the address, so such text is refused (found by fuzz/address_fuzz).
bool pton6(std::string_view text, void* out) {
    char buf[64];
    if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return inet_pton(AF_INET6, buf, out) == 1;
}

// Dotted-quad IPv4 exactly as glibc's inet_pton(AF_INET) takes it (four decimal parts of 0-255,
// no leading zeros, nothing else), without its copy and strlen: `scan` parses one address per
// login line. fuzz/address_fuzz.cpp compares the two on every input.
bool parse_v4(std::string_view text, std::uint8_t* out) {
    unsigned part = 0, value = 0;
    bool digits = false;
    for (const char c : text) {
        if (c >= '0' && c <= '9') {
            if (digits && value == 0) return false;  // a leading zero
            value = value * 10 + static_cast<unsigned>(c - '0');
            if (value > 255) return false;
            digits = true;
        } else if (c == '.' && digits && part < 3) {
            out[part++] = static_cast<std::uint8_t>(value);
            value = 0;
            digits = false;
        } else {
            return false;
        }
    }
    if (!digits || part != 3) return false;
    out[3] = static_cast<std::uint8_t>(value);
    return true;
}

}  // namespace

Address Address::v4(std::uint32_t host_order) {
    Address a;
    a.family_ = Family::v4;
    a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
    a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
    a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
    a.bytes_[3] = static_cast<std::uint8_t>(host_order);
    return a;
}

Address Address::v6(const std::array<std::uint8_t, 16>& bytes) {
    Address a;
    if (std::memcmp(bytes.data(), k_v4_mapped_prefix.data(), k_v4_mapped_prefix.size()) == 0) {
        a.family_ = Family::v4;
        std::memcpy(a.bytes_.data(), bytes.data() + 12, 4);
        return a;
    }
    a.family_ = Family::v6;
    a.bytes_ = bytes;
    return a;
}

std::optional<Address> Address::parse(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    if (text.empty()) return std::nullopt;
    if (text.find(':') == std::string_view::npos) {
        // As glibc's inet_pton(AF_INET): exactly four decimal parts, no leading zeros.
        std::array<std::uint8_t, 4> b{};
        if (!parse_v4(text, b.data())) return std::nullopt;
        Address a;
        std::memcpy(a.bytes_.data(), b.data(), 4);
        return a;
    }
    std::array<std::uint8_t, 16> b{};
    if (!pton6(text, b.data())) return std::nullopt;
    return v6(b);
}

Address Address::masked(int prefix) const {
    Address a = *this;
    const int nbytes = bits() / 8;
    for (int i = 0; i < nbytes; ++i) {
        const int keep = prefix - i * 8;
        if (keep >= 8) continue;
        a.bytes_[i] = static_cast<std::uint8_t>(keep <= 0 ? 0 : a.bytes_[i] & (0xff << (8 - keep)));
    }
    return a;
}

std::string Address::to_string() const {
    std::string out;
    append_to(out);
    return out;
}

void Address::append_to(std::string& out) const {
    char buf[48];  // the longest IPv6 form has 39 characters
    char* p = buf;
    if (is_v4()) {  // by hand: glibc's inet_ntop goes through sprintf, which `scan` felt
        for (int i = 0; i < 4; ++i) {
            if (i > 0) *p++ = '.';
            p = std::to_chars(p, buf + sizeof buf, bytes_[i]).ptr;
        }
        out.append(buf, p);
        return;
    }
    // RFC 5952: lowercase hex, no leading zeros, the longest run (>= 2) of zero groups becomes
    // "::", the first one on a tie. Written by hand: inet_ntop prints some ::/96 addresses with a
    // dotted tail.
    std::uint16_t g[8];
    for (int i = 0; i < 8; ++i) g[i] = static_cast<std::uint16_t>(bytes_[2 * i] << 8 | bytes_[2 * i + 1]);
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) { ++i; continue; }
        int j = i;
        while (j < 8 && g[j] == 0) ++j;
        if (j - i > best_len) { best = i; best_len = j - i; }
        i = j;
    }
    if (best_len < 2) best = -1;
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            *p++ = ':';
            *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (p != buf && p[-1] != ':') *p++ = ':';
        p = std::to_chars(p, buf + sizeof buf, g[i], 16).ptr;
    }
    out.append(buf, p);
}

std::string Address::to_full_string() const {
    if (is_v4()) return to_string();
    std::string out;
    for (int i = 0; i < 8; ++i) {
        if (i) out += ':';
        char h[8];
        auto r = std::to_chars(h, h + sizeof h, bytes_[2 * i] << 8 | bytes_[2 * i + 1], 16);
        out.append(h, r.ptr);
    }
    return out;
}

Cidr::Cidr(Address network, int prefix) : network_(network.masked(prefix)), prefix_(prefix) {}

Result<Cidr> Cidr::parse(std::string_view text) {
    const auto slash = text.find('/');
    auto addr = Address::parse(text.substr(0, slash));
    if (!addr) return make_error("not an IP address: '" + std::string(text.substr(0, slash)) + "'");
    if (slash == std::string_view::npos) return Cidr::host(*addr);
    const auto len_text = text.substr(slash + 1);
    int len = -1;
    auto [p, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (ec != std::errc() || p != len_text.data() + len_text.size() || len_text.empty() || len < 0)
        return make_error("bad prefix length in '" + std::string(text) + "'");
    // An IPv4-mapped network written in IPv6 notation keeps its meaning for the IPv4 part.
    if (addr->is_v4() && text.substr(0, slash).find(':') != std::string_view::npos) len -= 96;
    if (len < 0 || len > addr->bits()) return make_error("prefix length out of range in '" + std::string(text) + "'");
    Cidr c(*addr, len);
    if (c.network() != *addr)
        return make_error("host bits set after the prefix in '" + std::string(text) + "' (did you mean " +
                          c.to_string() + "?)");
    return c;
}

bool Cidr::contains(const Address& a) const {
    return a.family() == network_.family() && a.masked(prefix_) == network_;
}

std::string Cidr::to_string() const {
    if (is_host()) return network_.to_string();
    return network_.to_string() + "/" + std::to_string(prefix_);
}

std::size_t CidrHash::operator()(const Cidr& c) const noexcept {
    // FNV-1a over the meaningful bytes and the prefix: cheap, and permits are few.
    std::uint64_t h = 1469598103934665603ull;
    const auto& b = c.network().bytes();
    const int n = c.network().bits() / 8;
    for (int i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    h = (h ^ static_cast<std::uint64_t>(c.prefix())) * 1099511628211ull;
    return static_cast<std::size_t>(h);
}

}  // namespace rp::core
