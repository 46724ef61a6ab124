// Hash flooding: keys a client can choose must not share a home slot in the permit index
// (store/flat_index.hpp, hash_seed). An IPv6 customer owns a /64: with the unseeded hash of
// c788f0b, 4096 addresses of his /64 crafted below all homed in one slot, so every insert and
// lookup walked a 4096-slot cluster (quadratic work for a flood of logins, stalled answers).
#include <gtest/gtest.h>

#include <cstring>

#include "core/time.hpp"
#include "store/permit_table.hpp"
#include "store/string_pool.hpp"

namespace rp {
namespace {

// The inverse of store::mix64 (splitmix64's finaliser): each step is a bijection.
std::uint64_t unxorshift(std::uint64_t y, int s) {
    std::uint64_t x = y;
    for (int i = 0; i < 64 / s + 1; ++i) x = y ^ (x >> s);
    return x;
}
std::uint64_t unmix64(std::uint64_t y) {
    y = unxorshift(y, 31);
    y *= 0x319642b2d24d8ec3ULL;  // inverse of 0x94d049bb133111eb mod 2^64
    y = unxorshift(y, 27);
    y *= 0x96de1b173f119089ULL;  // inverse of 0xbf58476d1ce4e5b9 mod 2^64
    return unxorshift(y, 30);
}

TEST(HashFlooding, Unmix64InvertsMix64) {
    for (std::uint64_t x : {0ULL, 1ULL, 0x0123456789abcdefULL, ~0ULL}) EXPECT_EQ(unmix64(store::mix64(x)), x);
}

TEST(HashFlooding, AddressesCraftedForOneHomeSlotDoNotFormOneCluster) {
    // One /64 (2001:db8:0:1::/64): the high word is fixed, the client picks the low word.
    std::array<std::uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
    std::uint64_t lo0;
    std::memcpy(&lo0, bytes.data(), 8);
    // The unseeded hash was mix64(lo ^ mix64(hi ^ (128 << 1))), lo = bytes 0..7, hi = bytes 8..15:
    // the client fixes bytes 0..7 too (his /64), so craft in bytes 8..15 against a fixed lo.
    const std::uint64_t k = 4096;
    const auto now = core::from_unix_seconds(1'800'000'000);
    store::PermitTable t;
    for (std::uint64_t i = 0; i < k; ++i) {
        // Wanted unseeded hash: same low 32 bits (one home slot), different high bits.
        const std::uint64_t want = i << 32 | 0x5a5a5a5aULL;
        const std::uint64_t inner = unmix64(want) ^ lo0;  // = mix64(hi ^ 256)
        const std::uint64_t h = unmix64(inner) ^ 256;
        std::memcpy(bytes.data() + 8, &h, 8);
        const core::Cidr net = core::Cidr::host(core::Address::v6(bytes));
        const core::Permit p{net, "mallory", "dovecot", now, now + std::chrono::minutes(30)};
        ASSERT_EQ(t.merge(p, now).first, store::PermitTable::Change::created);
    }
    ASSERT_EQ(t.size(), k);
    // Unseeded: one run of 4096. Seeded: random homes at load 1/2, longest run ~40; 512 leaves
    // no room for chance.
    EXPECT_LT(t.longest_probe_run(), 512u);
}

TEST(HashFlooding, HashSeedIsDrawnOncePerProcess) {
    EXPECT_EQ(store::hash_seed(), store::hash_seed());
}

}  // namespace
}  // namespace rp
