// StringPool: reference-counted interned strings named by 32-bit ids (PermitTable's user and
// source names: a source name is shared by every permit it granted, a user by each of its
// addresses). An id stays valid until its last reference is released; freed ids are reused.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/flat_index.hpp"

namespace rp::store {

class StringPool {
public:
    // The id of `s`, adding it if new; takes one reference.
    std::uint32_t acquire(std::string_view s) {
        const auto h = hash(s);
        std::uint32_t id = index_.find(h, [&](std::uint32_t i) { return strings_[i] == s; });
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
        index_.insert(h, id, [this](std::uint32_t i) { return hash(strings_[i]); });
        return id;
    }
    // Takes another reference to an id already held.
    void retain(std::uint32_t id) { ++refs_[id]; }
    // Drops one reference; the last one frees the string.
    void release(std::uint32_t id) {
        if (--refs_[id] != 0) return;
        index_.erase(hash(strings_[id]), [id](std::uint32_t i) { return i == id; },
                     [this](std::uint32_t i) { return hash(strings_[i]); });
        std::string().swap(strings_[id]);  // give a long string's heap block back
        free_.push_back(id);
    }
    const std::string& get(std::uint32_t id) const { return strings_[id]; }
    std::size_t size() const { return index_.size(); }
    void clear() { *this = StringPool(); }

private:
    static std::uint64_t hash(std::string_view s) {
        std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then mixed: names are short
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
        return mix64(h);
    }
    std::vector<std::string> strings_;
    std::vector<std::uint32_t> refs_;
    std::vector<std::uint32_t> free_;
    FlatIndex index_;
};

}  // namespace rp::store
