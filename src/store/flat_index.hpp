// FlatIndex: an open-addressing hash index of 32-bit ids (4 bytes a slot), for tables that
// keep their records in a dense vector (PermitTable's entries, StringPool's strings).
//
// The index stores only ids; the owner supplies, per call, the hash of the key looked for, an
// equality test on an id, and (where slots move) the hash of an id's record. Linear probing,
// power-of-two size, at most 3/4 full; erase() shifts the following slots back instead of
// leaving tombstones, so lookups stay short however many records came and went.
// Thread-safety: not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace rp::store {

// A 64-bit mix (splitmix64's finaliser): spreads any key bits over the whole word.
inline std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

class FlatIndex {
public:
    static constexpr std::uint32_t npos = 0xffffffffu;

    // The id whose record equals the key, or npos.
    template <class Eq>
    std::uint32_t find(std::uint64_t hash, Eq&& eq) const {
        if (slots_.empty()) return npos;
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const std::uint32_t s = slots_[i];
            if (s == 0) return npos;
            if (eq(s - 1)) return s - 1;
        }
    }

    // Adds `id` (REQUIRES: its key is not present). HashOf(id) -> hash, used when growing.
    template <class HashOf>
    void insert(std::uint64_t hash, std::uint32_t id, HashOf&& hash_of) {
        if ((count_ + 1) * 4 > slots_.size() * 3) grow(hash_of);
        place(hash, id);
        ++count_;
    }

    // Removes the slot whose id satisfies eq; returns false if none did.
    template <class Eq, class HashOf>
    bool erase(std::uint64_t hash, Eq&& eq, HashOf&& hash_of) {
        if (slots_.empty()) return false;
        std::size_t i = hash & mask_;
        for (;; i = (i + 1) & mask_) {
            if (slots_[i] == 0) return false;
            if (eq(slots_[i] - 1)) break;
        }
        // Backward shift: move later slots of the run into the hole when their home allows.
        std::size_t hole = i;
        for (std::size_t j = (i + 1) & mask_; slots_[j] != 0; j = (j + 1) & mask_) {
            const std::size_t home = hash_of(slots_[j] - 1) & mask_;
            if (((j - home) & mask_) >= ((j - hole) & mask_)) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole] = 0;
        --count_;
        return true;
    }

    // The record `from` (whose hash is `hash`) moved to id `to` (a dense vector's
    // swap-with-last): repoint its slot. REQUIRES: `from` is present.
    void renumber(std::uint64_t hash, std::uint32_t from, std::uint32_t to) {
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            if (slots_[i] == from + 1) {
                slots_[i] = to + 1;
                return;
            }
        }
    }

    std::size_t size() const { return count_; }
    std::size_t memory() const { return slots_.capacity() * sizeof(std::uint32_t); }
    void clear() {
        slots_.clear();
        slots_.shrink_to_fit();
        mask_ = 0;
        count_ = 0;
    }

private:
    void place(std::uint64_t hash, std::uint32_t id) {
        std::size_t i = hash & mask_;
        while (slots_[i] != 0) i = (i + 1) & mask_;
        slots_[i] = id + 1;
    }
    template <class HashOf>
    void grow(HashOf&& hash_of) {
        std::vector<std::uint32_t> old;
        old.swap(slots_);
        slots_.assign(old.empty() ? 16 : old.size() * 2, 0);
        mask_ = slots_.size() - 1;
        for (const auto s : old)
            if (s != 0) place(hash_of(s - 1), s - 1);
    }

    std::vector<std::uint32_t> slots_;  // id + 1; 0 = empty
    std::size_t mask_ = 0;
    std::size_t count_ = 0;
};

}  // namespace rp::store
