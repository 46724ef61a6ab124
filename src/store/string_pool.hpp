// StringPool: reference-counted interned strings named by 32-bit ids (PermitTable's user and
// source names: a source name is shared by every permit it granted, a user by each of its
// addresses). An id stays valid until its last reference is released; freed ids are reused.
// The index keeps 32 bits of each string's hash (FlatIndex): a probe compares those before
// bytes, and growing the index never re-hashes the strings (at 1M names both dominated a
// start-up's profile).
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "store/flat_index.hpp"

namespace rp::store {

// A string in 24 bytes: up to 22 bytes inline, longer ones in a heap block of their size.
class CompactString {
public:
    CompactString() { raw_[k_tag] = 0; }
    explicit CompactString(std::string_view s) { set(s); }
    CompactString(CompactString&& o) noexcept {
        std::memcpy(raw_, o.raw_, sizeof raw_);
        o.raw_[k_tag] = 0;  // o gave its heap block away
    }
    CompactString& operator=(CompactString&& o) noexcept {
        if (this != &o) {
            release();
            std::memcpy(raw_, o.raw_, sizeof raw_);
            o.raw_[k_tag] = 0;
        }
        return *this;
    }
    CompactString(const CompactString&) = delete;
    CompactString& operator=(const CompactString&) = delete;
    ~CompactString() { release(); }

    void assign(std::string_view s) {
        release();
        set(s);
    }
    std::string_view view() const {
        if (raw_[k_tag] != k_heap) return {reinterpret_cast<const char*>(raw_), raw_[k_tag]};
        return {heap_ptr(), heap_len()};
    }

private:
    static constexpr std::size_t k_tag = 23, k_inline = 22;
    static constexpr unsigned char k_heap = 0xff;
    void set(std::string_view s) {
        if (s.size() <= k_inline) {
            if (!s.empty()) std::memcpy(raw_, s.data(), s.size());  // an empty view may hold nullptr
            raw_[k_tag] = static_cast<unsigned char>(s.size());
            return;
        }
        char* p = static_cast<char*>(std::malloc(s.size()));
        if (p == nullptr) throw std::bad_alloc();
        std::memcpy(p, s.data(), s.size());
        const std::uint64_t len = s.size();
        std::memcpy(raw_, &p, sizeof p);
        std::memcpy(raw_ + 8, &len, sizeof len);
        raw_[k_tag] = k_heap;
    }
    void release() {
        if (raw_[k_tag] == k_heap) std::free(heap_ptr());
        raw_[k_tag] = 0;
    }
    char* heap_ptr() const {
        char* p;
        std::memcpy(&p, raw_, sizeof p);
        return p;
    }
    std::size_t heap_len() const {
        std::uint64_t len;
        std::memcpy(&len, raw_ + 8, sizeof len);
        return static_cast<std::size_t>(len);
    }
    alignas(8) unsigned char raw_[24];
};

class StringPool {
public:
    // The id of `s`, adding it if new; takes one reference.
    std::uint32_t acquire(std::string_view s) {
        const auto h = hash(s);
        std::uint32_t id = index_.find(h, [&](std::uint32_t i) { return strings_[i].view() == s; });
        if (id != FlatIndex::npos) {
            ++refs_[id];
            return id;
        }
        if (!free_.empty()) {
            id = free_.back();
            free_.pop_back();
            strings_[id].assign(s);
            refs_[id] = 1;
        } else {
            id = static_cast<std::uint32_t>(strings_.size());
            strings_.emplace_back(s);
            refs_.push_back(1);
        }
        index_.insert(h, id);
        return id;
    }
    // Room for `n` strings without growing (a bulk load).
    void reserve(std::size_t n) {
        strings_.reserve(n);
        refs_.reserve(n);
        index_.reserve(n);
    }
    // Takes another reference to an id already held.
    void retain(std::uint32_t id) { ++refs_[id]; }
    // Drops one reference; the last one frees the string.
    void release(std::uint32_t id) {
        if (--refs_[id] != 0) return;
        index_.erase(hash(strings_[id].view()), id);
        strings_[id].assign({});  // give a long string's heap block back
        free_.push_back(id);
    }
    std::string_view get(std::uint32_t id) const { return strings_[id].view(); }
    std::size_t size() const { return index_.size(); }
    void clear() { *this = StringPool(); }

private:
    static std::uint64_t hash(std::string_view s) {
        static const std::uint64_t seed = hash_seed();
        std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;  // seeded FNV-1a, then mixed: names are short
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
        return mix64(h ^ seed);
    }
    std::vector<CompactString> strings_;
    std::vector<std::uint32_t> refs_;
    std::vector<std::uint32_t> free_;
    FlatIndex index_;
};

}  // namespace rp::store
