#include "store/flat_index.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>

namespace rp::store {

std::uint64_t hash_seed() {
    static const std::uint64_t seed = [] {
        std::uint64_t s = 0;
        if (::getrandom(&s, sizeof s, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof s)) return s;
        // Entropy pool not ready (early boot): still different per process and start.
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        const int local = 0;
        return mix64(static_cast<std::uint64_t>(now) ^ mix64(static_cast<std::uint64_t>(::getpid())) ^
                     mix64(reinterpret_cast<std::uintptr_t>(&local)));
    }();
    return seed;
}

}  // namespace rp::store
