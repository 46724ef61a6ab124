// PermitStore: where permits live. The daemon and the CLI talk only to this interface; stores
// are chosen by open_store() from the `store` config value (absent = the embedded store).
//
// Contract for every store:
//  - grant() merges permits and source checkpoints in one atomic step: after a crash either
//    both the permits and the source positions that produced them are stored, or neither, so
//    a restarted source neither loses nor repeats a login. Expiry only moves later.
//  - find() answers from memory, never from disk or network, and never returns a permit whose
//    expiry has passed, whether or not it has been purged.
//  - expire() purges what has expired and returns it (for the audit log).
// Errors are values: a failed write leaves memory and disk unchanged.
// Thread-safety: not thread-safe; the daemon uses a store from its loop thread only.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/login_event.hpp"
#include "core/result.hpp"

namespace rp::store {

using core::Checkpoint;

struct GrantOutcome {
    enum class Change { created, extended, unchanged };
    Change change;
    core::Permit permit;  // as stored after the merge
};

class PermitStore {
public:
    virtual ~PermitStore() = default;

    virtual core::Result<std::vector<GrantOutcome>> grant(std::span<const core::Permit> permits,
                                                          std::span<const Checkpoint> checkpoints,
                                                          core::Time now) = 0;
    virtual std::optional<core::Permit> find(const core::Address& a, core::Time now) const = 0;
    // Removes permits covering `a`, or (revoke_user) every permit of `user`. Returns the removed.
    virtual core::Result<std::vector<core::Permit>> revoke(const core::Address& a) = 0;
    virtual core::Result<std::vector<core::Permit>> revoke_user(const std::string& user) = 0;
    virtual core::Result<std::vector<core::Permit>> expire(core::Time now) = 0;
    virtual std::vector<core::Permit> list(core::Time now) const = 0;
    virtual std::optional<core::Time> next_expiry() const = 0;
    virtual std::optional<std::string> find_checkpoint(const std::string& key) const = 0;
    virtual std::string describe() const = 0;  // for logs: "embedded:/var/lib/relaypermit/permits.db"
};

struct StoreOptions {
    std::string state_dir;
    std::string url;         // empty = embedded
    bool read_only = false;  // CLI fallbacks open the store without writing
};

core::Result<std::unique_ptr<PermitStore>> open_store(const StoreOptions& opts);

}  // namespace rp::store
