// FlatIndex: an open-addressing hash index of 32-bit ids, for tables that keep their records
// in a dense vector (PermitTable's entries, StringPool's strings).
//
// A slot is 8 bytes: the id and 32 bits of its key's hash (home and probe filter). The owner
// supplies, per call, the hash of the key looked for and an equality test on an id. Linear probing,
// power-of-two size, at most 3/4 full; erase() shifts the following slots back instead of
// leaving tombstones, so lookups stay short however many records came and went.
// Thread-safety: not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace rp::store {

// The process's secret hash seed, drawn once from the kernel (getrandom, never blocking: at
// early boot it falls back to the clock, the pid and ASLR). Every key hash mixes it in.
// Security: addresses and user names are chosen by clients (an IPv6 customer owns a /64); with
// a public hash anyone could pick a million keys with one home slot and turn every insert and
// lookup into a walk of that cluster (a stalled policy answer). The mixer is a bijection, so an
// unseeded hash is trivially inverted; with the seed the homes are unknown to the client.
std::uint64_t hash_seed();

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

    // The id whose record equals the key, or npos. eq(id) runs only for slots whose tag matches.
    template <class Eq>
    std::uint32_t find(std::uint64_t hash, Eq&& eq) const {
        if (slots_.empty()) return npos;
        const auto tag = tag_of(hash);
        for (std::size_t i = tag & mask_;; i = (i + 1) & mask_) {
            const Slot s = slots_[i];
            if (s.id == 0) return npos;
            if (s.tag == tag && eq(s.id - 1)) return s.id - 1;
        }
    }

    // Adds `id` (REQUIRES: its key is not present).
    void insert(std::uint64_t hash, std::uint32_t id) {
        if ((count_ + 1) * 4 > slots_.size() * 3) rehash(slots_.empty() ? 16 : slots_.size() * 2);
        place({id + 1, tag_of(hash)});
        ++count_;
    }

    // Removes `id`, whose key hashes to `hash`; returns false if it was not there.
    bool erase(std::uint64_t hash, std::uint32_t id) {
        if (slots_.empty()) return false;
        std::size_t i = tag_of(hash) & mask_;
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].id == 0) return false;
            if (slots_[i].id == id + 1) break;
        }
        // Backward shift: move later slots of the run into the hole when their home allows.
        std::size_t hole = i;
        for (std::size_t j = (i + 1) & mask_; slots_[j].id != 0; j = (j + 1) & mask_) {
            const std::size_t home = slots_[j].tag & mask_;
            if (((j - home) & mask_) >= ((j - hole) & mask_)) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole] = {};
        --count_;
        return true;
    }

    // The record `from` (whose hash is `hash`) moved to id `to` (a dense vector's
    // swap-with-last): repoint its slot. REQUIRES: `from` is present.
    void renumber(std::uint64_t hash, std::uint32_t from, std::uint32_t to) {
        for (std::size_t i = tag_of(hash) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].id == from + 1) {
                slots_[i].id = to + 1;
                return;
            }
        }
    }

    // Room for `n` ids without growing (a bulk load).
    void reserve(std::size_t n) {
        std::size_t want = slots_.empty() ? 16 : slots_.size();
        while (n * 4 > want * 3) want *= 2;
        if (want != slots_.size()) rehash(want);
    }

    std::size_t size() const { return count_; }
    std::size_t memory() const { return slots_.capacity() * sizeof(Slot); }
    void clear() {
        slots_.clear();
        slots_.shrink_to_fit();
        mask_ = 0;
        count_ = 0;
    }

    // The longest run of occupied slots (a diagnostic for tests: lookups cost up to this).
    std::size_t longest_run() const {
        std::size_t best = 0, run = 0;
        for (std::size_t k = 0; k < 2 * slots_.size(); ++k) {  // twice round: runs wrap
            run = slots_[k & mask_].id != 0 ? run + 1 : 0;
            if (run > best) best = run;
            if (run >= slots_.size()) break;
        }
        return best;
    }

private:
    // id + 1 (0 = empty) and the key hash's low 32 bits: the slot's home and a probe filter,
    // so a probe rarely touches a record that is not the one looked for, and growing or
    // erasing never asks the owner for a hash.
    struct Slot {
        std::uint32_t id = 0;
        std::uint32_t tag = 0;
    };
    static std::uint32_t tag_of(std::uint64_t hash) { return static_cast<std::uint32_t>(hash); }
    void place(Slot s) {
        std::size_t i = s.tag & mask_;
        while (slots_[i].id != 0) i = (i + 1) & mask_;
        slots_[i] = s;
    }
    void rehash(std::size_t size) {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(size, Slot{});
        mask_ = slots_.size() - 1;
        for (const auto s : old)
            if (s.id != 0) place(s);
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t count_ = 0;
};

}  // namespace rp::store
