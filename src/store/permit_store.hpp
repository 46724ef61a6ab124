// PermitStore: where permits live. The daemon and the CLI talk only to this interface; stores
// are chosen by open_store() from the `store` config value (absent = the embedded store).
//
// Contract for every store:
//  - grant() merges permits and source checkpoints in one atomic step: after a crash either
//    both the permits and the source positions that produced them are stored, or neither, so
//    a restarted source neither loses nor repeats a login. Expiry only moves later.
//  - find() answers from memory, never from disk or network, and never returns a permit whose
//    expiry has passed, whether or not it has been purged.
//  - expire() purges what has expired and returns it (for the audit log), at most a slice
//    (PermitTable::k_expire_slice) per call so a mass expiry never stalls the loop: while
//    more is due, next_expiry() is not after `now` and the daemon calls expire() again on
//    its next loop iteration.
//  - With max_permits set, a grant for a network not yet stored is refused (Change::refused,
//    counted in status().refused) once that many permits are stored; extensions still work.
// Errors are values: a refused write leaves memory and disk unchanged. The embedded store
// writes to disk on its own thread (embedded_store.hpp): grant() returns once memory holds
// the change and the durable write is queued in order behind the earlier ones.
// Shared stores (Redis, PostgreSQL, MySQL: shared_store.hpp) also change underneath: other
// daemons grant and revoke. They expose event_fd(), which becomes readable when news from the
// shared table waits; the daemon then calls process_events() on its loop thread, which applies
// it to the in-memory table. While a shared store is unreachable available() is false and the
// daemon answers lookups as configured (store_outage).
// Thread-safety: not thread-safe; the daemon uses a store from its loop thread only (a shared
// store's own worker thread never touches what these methods read).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/login_event.hpp"
#include "core/result.hpp"
#include "store/permit_table.hpp"

namespace rp::store {

using core::Checkpoint;

// What `relaypermit status` shows about the store.
struct StoreStatus {
    bool shared = false;
    bool available = true;
    std::uint64_t queued = 0;          // changes in the local outbox, not yet in the shared table
    std::uint64_t pushed = 0;          // changes written to the shared table
    std::uint64_t remote_changes = 0;  // changes applied from the shared table (incl. our own echo)
    std::uint64_t connects = 0;        // successful (re)connections
    std::uint64_t outages = 0;         // times the connection was lost or could not be made
    std::string last_error;            // never contains credentials
    std::uint64_t written = 0;         // embedded: changes committed to disk
    std::uint64_t write_failures = 0;  // embedded: failed commits (retried with back-off)
    std::uint64_t queue_full = 0;      // embedded: batches refused because the write queue was full
    std::uint64_t refused = 0;         // new permits refused because max_permits were stored
};

struct GrantOutcome {
    enum class Change { created, extended, unchanged, refused };  // as PermitTable::Change
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
    // The in-memory table lookups are answered from, for walks that must not copy it: `list`
    // streams it through a PermitTable::Cursor, a bounded number of records per loop turn.
    virtual const PermitTable& table() const = 0;
    // Permits held (live, or expired and not yet purged): O(1), for status and statistics.
    virtual std::size_t size() const = 0;
    virtual std::optional<core::Time> next_expiry() const = 0;
    virtual std::optional<std::string> find_checkpoint(const std::string& key) const = 0;
    virtual std::string describe() const = 0;  // for logs: "embedded:/var/lib/relaypermit/permits.db"

    virtual int event_fd() const { return -1; }
    // Applies news from a shared table; returns how many permits changed (0: nothing to do).
    virtual std::size_t process_events(core::Time now) {
        (void)now;
        return 0;
    }
    // The removals process_events() read from the shared table since the last call (another
    // daemon's revokes, and the echo of ours), applied to the cache or not: the daemon ends the
    // sessions behind them (docs/limits.md, "Revokes are final"). Each carries its network and
    // the row as it was removed.
    // At most one per network (the latest read).
    virtual std::vector<core::Permit> take_removed() { return {}; }
    // True when more networks were removed since the last call than the store keeps for
    // take_removed() (a burst, or forged removal notices hiding a real one): the daemon must
    // then re-check the network of every session against the table.
    virtual bool take_removed_overflow() { return false; }
    virtual bool available() const { return true; }
    virtual StoreStatus status() const { return {}; }
};

struct StoreOptions {
    std::string state_dir;
    std::string url;            // empty = embedded
    std::string password_file;  // shared stores: the password, read from this file (overrides the URL's)
    bool read_only = false;     // CLI fallbacks open the store without writing
    std::size_t max_permits = 0;  // 0: unbounded; see PermitStore's contract
};

core::Result<std::unique_ptr<PermitStore>> open_store(const StoreOptions& opts);

}  // namespace rp::store
