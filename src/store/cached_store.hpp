// CachedStore: the part of a PermitStore that the embedded and the shared stores share: every
// lookup, listing and expiry time is answered from an in-memory PermitTable, and the source
// checkpoints are kept in memory beside it, so neither ever waits for a disk or a network
// (PermitStore's contract for find()). What is durable, and where, stays with the derived
// store: it fills table_ and checkpoints_ at open and keeps them in step with its writes
// (EmbeddedStore: its SQLite file; SharedStore: its outbox and the engine's news).
// Thread-safety: as PermitStore: the loop thread only.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/permit_store.hpp"
#include "store/permit_table.hpp"

namespace rp::store {

class CachedStore : public PermitStore {
public:
    std::optional<core::Permit> find(const core::Address& a, core::Time now) const override {
        return table_.find(a, now);
    }
    std::vector<core::Permit> list(core::Time now) const override { return table_.live(now); }
    const PermitTable& table() const override { return table_; }
    std::size_t size() const override { return table_.size(); }
    std::optional<core::Time> next_expiry() const override { return table_.next_expiry(); }
    std::optional<std::string> find_checkpoint(const std::string& key) const override {
        auto it = checkpoints_.find(key);
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }

protected:
    // grant()'s checkpoints, once they are stored or queued in order for storage.
    void remember_checkpoints(std::span<const Checkpoint> checkpoints) {
        for (const auto& c : checkpoints) checkpoints_[c.key] = c.value;
    }

    PermitTable table_;
    std::unordered_map<std::string, std::string> checkpoints_;
};

}  // namespace rp::store
