// Address and Cidr: the IP vocabulary of relaypermit.
//
// Address holds an IPv4 or IPv6 address. Parsing is strict (no partial dotted quads such as
// "192.168.123", no leading zeros in IPv4 octets, no zone ids, no hostnames) and canonicalises
// IPv4-mapped IPv6 (::ffff:a.b.c.d) to plain IPv4, so one client has one key. to_string() writes
// IPv4 dotted quad and IPv6 per RFC 5952 (lowercase, longest zero run compressed).
// Cidr is a network: an address with the host bits cleared and a prefix length.
// Security: parse() takes untrusted log and request text; it never reads past the view.
// Thread-safety: plain value types.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace rp::core {

class Address {
public:
    enum class Family : std::uint8_t { v4, v6 };

    Address() = default;
    static Address v4(std::uint32_t host_order);
    static Address v6(const std::array<std::uint8_t, 16>& bytes);  // canonicalises v4-mapped

    // Parses "a.b.c.d", an IPv6 text form, "::ffff:a.b.c.d", and the same inside brackets
    // ("[2001:db8::1]"). Returns nothing for anything else.
    static std::optional<Address> parse(std::string_view text);

    Family family() const { return family_; }
    bool is_v4() const { return family_ == Family::v4; }
    int bits() const { return is_v4() ? 32 : 128; }
    // Network byte order; 4 meaningful bytes for IPv4.
    const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }

    // The address with all bits after the first `prefix` cleared. REQUIRES: 0 <= prefix <= bits().
    Address masked(int prefix) const;

    std::string to_string() const;
    void append_to(std::string& out) const;  // appends to_string(), without a string of its own
    // Sendmail's uncompressed IPv6 form ("0:0:0:0:0:0:0:1"); IPv4 as to_string().
    std::string to_full_string() const;

    friend bool operator==(const Address&, const Address&) = default;
    friend auto operator<=>(const Address&, const Address&) = default;

private:
    Family family_ = Family::v4;
    std::array<std::uint8_t, 16> bytes_{};
};

class Cidr {
public:
    Cidr() = default;
    Cidr(Address network, int prefix);  // masks `network`; REQUIRES: 0 <= prefix <= bits()
    static Cidr host(const Address& a) { return Cidr(a, a.bits()); }

    // "a.b.c.d/n", "v6/n", or a bare address (a host route). Rejects host bits set after the
    // prefix ("10.1.2.3/16") with an error that says so, since that is usually a typo.
    static Result<Cidr> parse(std::string_view text);

    const Address& network() const { return network_; }
    int prefix() const { return prefix_; }
    bool contains(const Address& a) const;
    bool is_host() const { return prefix_ == network_.bits(); }
    std::string to_string() const;  // "net/len", or the bare address for a host route

    friend bool operator==(const Cidr&, const Cidr&) = default;
    friend auto operator<=>(const Cidr&, const Cidr&) = default;

private:
    Address network_;
    int prefix_ = 32;
};

struct CidrHash {
    std::size_t operator()(const Cidr& c) const noexcept;
};

}  // namespace rp::core
