// EmbeddedStore: the default store, an SQLite database in WAL mode under state_dir.
//
// Why SQLite (see ARCHITECTURE.md): one file, crash-safe transactions that hold permits and
// source positions together, readable by `sqlite3` for an admin, and a read-only second opener
// (the CLI fallback) while the daemon writes. Lookups go to the PermitTable loaded at open and
// kept in step with every committed write; SQLite is only written, never read, while serving.
// synchronous=NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
// on power loss the last transactions may be lost (documented).
// Thread-safety: not thread-safe.
#pragma once

#include "store/permit_store.hpp"
#include "store/permit_table.hpp"

struct sqlite3;

namespace rp::store {

class EmbeddedStore final : public PermitStore {
public:
    static core::Result<std::unique_ptr<EmbeddedStore>> open(const std::string& path, bool read_only);
    ~EmbeddedStore() override;

    core::Result<std::vector<GrantOutcome>> grant(std::span<const core::Permit> permits,
                                                  std::span<const Checkpoint> checkpoints,
                                                  core::Time now) override;
    std::optional<core::Permit> find(const core::Address& a, core::Time now) const override;
    core::Result<std::vector<core::Permit>> revoke(const core::Address& a) override;
    core::Result<std::vector<core::Permit>> revoke_user(const std::string& user) override;
    core::Result<std::vector<core::Permit>> expire(core::Time now) override;
    std::vector<core::Permit> list(core::Time now) const override;
    std::optional<core::Time> next_expiry() const override;
    std::optional<std::string> find_checkpoint(const std::string& key) const override;
    std::string describe() const override { return "embedded:" + path_; }

private:
    EmbeddedStore(sqlite3* db, std::string path, bool read_only);
    core::Status load();
    core::Status exec(const char* sql);
    core::Status delete_permits(const std::vector<core::Permit>& gone);

    sqlite3* db_;
    std::string path_;
    bool read_only_;
    PermitTable table_;
    std::unordered_map<std::string, std::string> checkpoints_;
};

}  // namespace rp::store
