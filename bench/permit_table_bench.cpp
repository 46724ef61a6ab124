// permit_table_bench: PermitTable alone at 1k / 10k / 100k / 1M permits (half IPv4 hosts, half
// IPv6 /64s, distinct users "userN@example.org"): memory added (VmRSS delta) per permit and
// lookup cost (random hits, ns each), so the table's share of a policy answer can be read
// without the noise of sockets on a shared machine. scale_bench.py measures the whole daemon.
//
// Usage: permit_table_bench [N ...]   (default 1000 10000 100000 1000000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "store/permit_table.hpp"

using namespace rp;

namespace {

long rss_kb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0;
}

core::Address address(std::uint32_t i) {
    if (i % 2 == 0) return core::Address::v4(0x0a000000u + i / 2);
    std::array<std::uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    const std::uint32_t j = i / 2;
    b[4] = static_cast<std::uint8_t>(j >> 24), b[5] = static_cast<std::uint8_t>(j >> 16);
    b[6] = static_cast<std::uint8_t>(j >> 8), b[7] = static_cast<std::uint8_t>(j);
    b[15] = 1;
    return core::Address::v6(b);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::uint32_t> sizes = {1000, 10000, 100000, 1000000};
    if (argc > 1) {
        sizes.clear();
        for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<std::uint32_t>(std::atol(argv[i])));
    }
    const auto now = core::from_unix_seconds(1'800'000'000);
    std::printf("| permits | bytes per permit (RSS delta) | lookup ns (random hits) |\n|---|---|---|\n");
    for (const auto n : sizes) {
        const long before = rss_kb();
        {
            store::PermitTable t;
            for (std::uint32_t i = 0; i < n; ++i) {
                const auto a = address(i);
                t.merge({core::Cidr(a, a.is_v4() ? 32 : 64), "user" + std::to_string(i) + "@example.org", "mail", now,
                         now + std::chrono::hours(2)},
                        now);
            }
            const long after = rss_kb();
            constexpr std::uint32_t k_lookups = 2'000'000;
            std::uint64_t x = 88172645463325252ULL, hits = 0;
            const auto t0 = std::chrono::steady_clock::now();
            for (std::uint32_t k = 0; k < k_lookups; ++k) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                hits += t.find(address(static_cast<std::uint32_t>(x % n)), now).has_value();
            }
            const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
            std::printf("| %u | %.0f | %.0f |%s\n", n, static_cast<double>(after - before) * 1024.0 / n,
                        ns / k_lookups, hits == k_lookups ? "" : " (misses!)");
        }
    }
}
