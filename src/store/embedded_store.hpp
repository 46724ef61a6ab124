// EmbeddedStore: the default store, an SQLite database in WAL mode under state_dir.
//
// Why SQLite (see ARCHITECTURE.md): one file, crash-safe transactions that hold permits and
// source positions together, readable by `sqlite3` for an admin, and a read-only second opener
// (the CLI fallback) while the daemon writes. Lookups go to the PermitTable loaded at open;
// SQLite is only written, never read, while serving.
//
// Writes never happen on the loop thread (ARCHITECTURE.md, "Exactly-once from logs"):
// grant(), revoke() and expire() change the PermitTable at once (a lookup sees a grant
// immediately) and queue the durable change; a writer thread (WorkerThread) commits the queue
// in order, each delivered batch with its source checkpoints in the same transaction, so a
// checkpoint is never on disk before the permits of its batch. A failed commit (the database
// locked by another process, disk full) is retried with back-off (0.1 s .. 5 s) while the loop
// keeps answering. The queue is bounded (max_queued changes): past the bound grant() refuses a
// batch with an error, which makes a file source offer it again later, so nothing is lost.
// A crash loses what was still queued, with the checkpoints that came with it: the source
// re-reads those lines and recomputes the same permits from the lines' own times. Closing the
// store writes what is queued (retrying for up to flush_timeout).
// synchronous=NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
// on power loss the last transactions may be lost (documented).
// Thread-safety: the PermitStore methods run on the loop thread only; the writer thread owns
// the SQLite connection once open() returns; they share the queue under the writer's mutex.
#pragma once

#include <chrono>
#include <deque>
#include <functional>

#include "store/cached_store.hpp"
#include "store/worker_thread.hpp"

struct sqlite3;

namespace rp::store {

struct EmbeddedOptions {
    std::size_t max_queued = 100'000;  // changes waiting for the disk before grant() refuses
    std::size_t max_permits = 0;       // 0: unbounded (PermitTable::set_limit)
    std::chrono::milliseconds flush_timeout{5000};  // closing: how long a failing write is retried
    // Test hook, called by the writer right before each COMMIT. Returning false rolls the
    // transaction back and ends the writer as a crash at that instant would: nothing more is
    // written, and closing the store writes nothing either.
    std::function<bool()> before_commit;
};

class EmbeddedStore final : public CachedStore {
public:
    static core::Result<std::unique_ptr<EmbeddedStore>> open(const std::string& path, bool read_only,
                                                             EmbeddedOptions opts = {});
    ~EmbeddedStore() override;  // writes what is queued (see flush_timeout), then closes

    core::Result<std::vector<GrantOutcome>> grant(std::span<const core::Permit> permits,
                                                  std::span<const Checkpoint> checkpoints,
                                                  core::Time now) override;
    core::Result<std::vector<core::Permit>> revoke(const core::Address& a) override;
    core::Result<std::vector<core::Permit>> revoke_user(const std::string& user) override;
    core::Result<std::vector<core::Permit>> expire(core::Time now) override;
    std::string describe() const override { return "embedded:" + path_; }
    // Readable after each commit (or failed attempt); process_events() only drains it.
    int event_fd() const override { return writer_.loop_fd(); }
    std::size_t process_events(core::Time now) override;
    StoreStatus status() const override;

private:
    struct Op {
        bool remove;
        core::Permit permit;  // remove: only network matters
    };
    struct Batch {
        std::vector<Op> ops;
        std::vector<Checkpoint> checkpoints;
    };
    enum class Commit { ok, failed, crashed };

    EmbeddedStore(sqlite3* db, std::string path, bool read_only, EmbeddedOptions opts);
    core::Status load();
    core::Status exec(const char* sql);
    void enqueue(Batch b);
    void queue_removals(const std::vector<core::Permit>& gone);

    // writer thread
    void writer_main();
    // Moves whole queued batches into `inflight`; reads the purge wish. Returns stopping.
    bool take_work(std::vector<Batch>& inflight, std::size_t& inflight_ops, core::Time& want_purge);
    Commit commit(const std::vector<Batch>& batches, std::optional<core::Time> purge, std::string& error);
    bool write_ops(const std::vector<Batch>& batches);

    sqlite3* db_;  // the loop thread's until open() returns, then the writer's
    std::string path_;
    bool read_only_;
    EmbeddedOptions opts_;

    // shared with the writer, under writer_.mutex()
    std::deque<Batch> queue_;
    std::size_t queued_ops_ = 0;      // changes queued or being written
    core::Time purge_before_{};       // rows expiring at or before this may be deleted
    std::uint64_t written_ = 0, write_failures_ = 0, queue_full_ = 0;
    std::string last_error_;
    mutable WorkerThread writer_;
};

}  // namespace rp::store
