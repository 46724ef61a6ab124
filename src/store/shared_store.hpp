// SharedStore: a permit table shared by several daemons through Redis, PostgreSQL or MySQL.
//
// Data flow (ARCHITECTURE.md, "Shared stores"):
//
//   grant/revoke (loop thread)                     worker thread
//     1. merge into the in-memory cache            connect (backoff 0.1 s .. 10 s), snapshot
//     2. append to the local outbox (SQLite,   ->  push outbox ops in order (SharedBackend)
//        with the source checkpoints, one txn)     read changes (pub/sub, NOTIFY, polled log)
//     3. wake the worker                       <-  news: snapshot / changes / acks / outage
//   process_events(): apply news to the cache, delete acknowledged ops from the outbox
//
// Every lookup is answered from the cache, so lookups cost the same as with the embedded store
// and never wait on the network. The outbox makes grants durable before the shared table has
// them: after a crash or during an outage they are replayed, in order, on (re)connection (a
// permit that expired meanwhile is dropped). Changes from other daemons arrive as Change
// records; a removal only deletes a cached permit granted no later than the removed one, so a
// stale removal cannot undo a newer grant. Expiry needs no messages: every cache expires its
// permits at their exact time (hosts must keep their clocks in sync, e.g. with NTP).
// Thread-safety: the PermitStore methods run on the loop thread only; the worker thread owns
// the backend; they share only the op queue and the news list, under worker_.mutex().
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "store/cached_store.hpp"
#include "store/shared_backend.hpp"
#include "store/snapshot_file.hpp"
#include "store/worker_thread.hpp"

struct sqlite3;

namespace rp::store {

class SharedStore final : public CachedStore {
public:
    // Opens (creating) the local state file `local_path` and starts the worker. read_only: no
    // outbox and no worker; the backend is connected once, synchronously, and its snapshot is
    // the table (for CLI fallbacks). snapshot_path: the local copy of the engine's table
    // (store/snapshot_file.hpp; "" for none), rewritten by the worker after each snapshot it
    // reads; when the first connection attempt fails, the worker loads it and the cache holds
    // the permits last seen (the outbox laid over them) until the engine answers (served while
    // store_outage = "cache").
    static core::Result<std::unique_ptr<SharedStore>> open(const std::string& local_path,
                                                           std::unique_ptr<SharedBackend> backend, bool read_only,
                                                           std::size_t max_permits = 0,
                                                           const std::string& snapshot_path = "");
    ~SharedStore() override;

    core::Result<std::vector<GrantOutcome>> grant(std::span<const core::Permit> permits,
                                                  std::span<const Checkpoint> checkpoints,
                                                  core::Time now) override;
    core::Result<std::vector<core::Permit>> revoke(const core::Address& a) override;
    core::Result<std::vector<core::Permit>> revoke_user(const std::string& user) override;
    core::Result<std::vector<core::Permit>> expire(core::Time now) override;
    std::string describe() const override { return describe_; }

    int event_fd() const override { return worker_.loop_fd(); }
    std::size_t process_events(core::Time now) override;
    std::vector<core::Permit> take_removed() override;
    bool take_removed_overflow() override { return std::exchange(removed_overflow_, false); }
    // Distinct networks kept for take_removed() between two calls; more raise the overflow.
    static constexpr std::size_t k_max_removed = 100'000;
    bool available() const override { return up_; }
    StoreStatus status() const override;

private:
    struct Op {
        std::int64_t id;
        Change::Kind kind;
        core::Permit permit;  // remove: only network (and granted) matter
    };
    struct News {
        enum class Kind { up, down, changes, acked, local } kind;
        std::unique_ptr<PermitTable> snapshot;  // up: the engine's table; local: the local copy
        std::vector<Change> changes;         // changes
        std::vector<std::int64_t> acked;     // acked
        std::string error;                   // down
        bool resync = false;                 // up: a refresh of the local copy, not a reconnection
    };

    SharedStore(sqlite3* db, std::unique_ptr<SharedBackend> backend, std::string describe);
    core::Status exec(const char* sql);
    core::Status load_local();
    // Appends ops (ids assigned) and checkpoints to the outbox in one transaction.
    core::Status write_outbox(std::vector<Op>& ops, std::span<const Checkpoint> checkpoints);
    void enqueue(const std::vector<Op>& ops);
    void delete_acked(const std::vector<std::int64_t>& ids);

    void worker_main();
    // worker_main's steps; an error means the connection is lost.
    core::Status worker_connect();       // connects and reads the snapshot
    core::Status worker_push();          // pushes the queued ops in order, posting the acknowledged
    bool worker_busy();                  // ops are still queued: do not wait
    core::Status worker_read_changes();  // posts the engine's news (and keeps the local copy)
    void post(News n);
    // Reads the engine's snapshot (and writes the local copy); on success posts it.
    core::Status worker_load(bool resync);
    // Appends this daemon's acknowledged removals to the local copy: the outbox forgets them at
    // the acknowledgement, and an engine that dies before it announces them back would leave
    // the copy serving a revoked permit at the next start with the engine down.
    void append_acknowledged(std::span<const Op> ops);
    // Once, when the first connection fails: posts the local copy (kind local) if there is one.
    void worker_load_local();
    void apply_snapshot(News& n, core::Time now);
    void note_removed(const core::Permit& p);

    // loop thread
    sqlite3* db_ = nullptr;
    std::string describe_;
    std::deque<Op> pending_;  // ops not yet acknowledged, in order
    bool up_ = false;
    bool read_only_ = false;
    std::string last_error_;
    std::map<core::Cidr, core::Permit> removed_;  // removals read since take_removed(), by network
    bool removed_overflow_ = false;                // a removal did not fit in removed_
    std::uint64_t remote_changes_ = 0, connects_ = 0, outages_ = 0, pushed_ = 0;

    // shared with the worker, under worker_.mutex()
    std::deque<Op> todo_;
    std::vector<News> news_;

    // worker thread
    std::unique_ptr<SharedBackend> backend_;
    std::unique_ptr<SnapshotWriter> snapshot_writer_;  // null: no local copy
    std::size_t limit_ = 0;                            // max_permits
    // The local copy is read at most once, and only before the first connection: after one,
    // the cache is newer than the copy (own grants acknowledged but not yet echoed are in the
    // cache only), and an outage must keep serving the cache, never fall back to the copy.
    bool local_copy_done_ = false;                     // worker_load_local() ran, or the engine's table was loaded
    WorkerThread worker_;
};

// `store = URL` parsed, with the password from store_password_file when one is named.
core::Result<StoreUrl> resolve_store_url(const StoreOptions& opts);

}  // namespace rp::store
