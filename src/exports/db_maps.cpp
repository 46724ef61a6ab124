#include "exports/db_maps.hpp"

#include <db.h>
#include <lmdb.h>
#include <sys/stat.h>

#include <algorithm>

#include "exports/atomic_file.hpp"
#include "exports/file_exporter.hpp"

namespace rp::exports {
namespace {

core::Error db_error(const char* what, const char* text) { return core::make_error(std::string(what) + ": " + text); }

// One byte string with every record, to tell whether a rewrite would change anything.
std::string fingerprint(std::span<const Record> records) {
    std::string out;
    for (const auto& [k, v] : records) {
        out += std::to_string(k.size()) + ':' + k + std::to_string(v.size()) + ':' + v;
    }
    return out;
}

class PostfixDbExporter final : public FileExporter {
public:
    explicit PostfixDbExporter(config::ExportConfig cfg)
        : FileExporter(std::move(cfg)),
          file_(cfg_.path, cfg_.type == config::ExportType::postfix_lmdb ? DbMapFile::Kind::lmdb : DbMapFile::Kind::bdb_hash) {}

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        // postmap's keys and values carry their trailing NUL (db_maps.hpp).
        auto with_nul = [](const core::Cidr& network) {
            auto k = postfix_key(network);
            if (k) *k += '\0';
            return k;
        };
        std::vector<Record> records;
        for (auto& k : live_keys(live, now, with_nul)) records.emplace_back(std::move(k), std::string("OK\0", 3));
        return finish(file_.replace_if_changed(records));
    }

private:
    DbMapFile file_;
};

}  // namespace

core::Status write_bdb_hash(const std::string& path, std::span<const Record> records) {
    DB* db = nullptr;
    if (int e = db_create(&db, nullptr, 0); e != 0) return db_error("db_create", db_strerror(e));
    auto fail = [&](const char* what, int e) {
        db->close(db, 0);
        return db_error(what, db_strerror(e));
    };
    // DB_TRUNCATE: mkostemp made an empty file, which DB_CREATE alone would not accept.
    if (int e = db->open(db, nullptr, path.c_str(), nullptr, DB_HASH, DB_CREATE | DB_TRUNCATE, 0600); e != 0)
        return fail("db open", e);
    for (const auto& [k, v] : records) {
        DBT key{}, val{};
        key.data = const_cast<char*>(k.data());
        key.size = static_cast<u_int32_t>(k.size());
        val.data = const_cast<char*>(v.data());
        val.size = static_cast<u_int32_t>(v.size());
        if (int e = db->put(db, nullptr, &key, &val, 0); e != 0) return fail("db put", e);
    }
    if (int e = db->close(db, 0); e != 0) return db_error("db close", db_strerror(e));
    return core::ok();
}

core::Status write_lmdb(const std::string& path, std::span<const Record> records) {
    MDB_env* env = nullptr;
    if (int e = mdb_env_create(&env); e != 0) return db_error("mdb_env_create", mdb_strerror(e));
    std::size_t bytes = 0;
    for (const auto& [k, v] : records) bytes += k.size() + v.size() + 64;
    // Room for the B-tree's pages with a wide margin; the file only grows to what is used.
    const std::size_t map_size = std::max<std::size_t>(16u << 20, bytes * 4 + (1u << 20));
    auto fail = [&](const char* what, int e) {
        mdb_env_close(env);
        return db_error(what, mdb_strerror(e));
    };
    if (int e = mdb_env_set_mapsize(env, map_size); e != 0) return fail("mdb_env_set_mapsize", e);
    // One file (NOSUBDIR), no lock file (NOLOCK: only we write it, before anyone can open it),
    // no sync of our own (TempFile::commit fsyncs the file before the rename).
    if (int e = mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600); e != 0)
        return fail("mdb_env_open", e);
    MDB_txn* txn = nullptr;
    if (int e = mdb_txn_begin(env, nullptr, 0, &txn); e != 0) return fail("mdb_txn_begin", e);
    MDB_dbi dbi = 0;
    if (int e = mdb_dbi_open(txn, nullptr, 0, &dbi); e != 0) {
        mdb_txn_abort(txn);
        return fail("mdb_dbi_open", e);
    }
    for (const auto& [k, v] : records) {
        MDB_val key{k.size(), const_cast<char*>(k.data())}, val{v.size(), const_cast<char*>(v.data())};
        if (int e = mdb_put(txn, dbi, &key, &val, 0); e != 0) {
            mdb_txn_abort(txn);
            return fail("mdb_put", e);
        }
    }
    if (int e = mdb_txn_commit(txn); e != 0) return fail("mdb_txn_commit", e);
    if (int e = mdb_env_sync(env, 1); e != 0) return fail("mdb_env_sync", e);
    mdb_env_close(env);
    return core::ok();
}

core::Result<bool> DbMapFile::replace_if_changed(std::span<const Record> records) {
    auto content = fingerprint(records);
    struct stat st;
    const bool exists = ::stat(path_.c_str(), &st) == 0;
    if (exists && content == last_content_ && st.st_ino == last_ino_ && st.st_dev == last_dev_ &&
        st.st_size == last_size_)
        return false;
    auto tmp = TempFile::create(path_);
    if (!tmp) return tmp.error();
    auto w = kind_ == Kind::lmdb ? write_lmdb(tmp->path(), records) : write_bdb_hash(tmp->path(), records);
    if (!w) return w.error();
    auto old = open_current(path_);
    if (auto c = tmp->commit(path_, exists ? st.st_mode & 07777 : 0644); !c) return c.error();
    bump_replaced(old);
    last_content_ = std::move(content);
    if (::stat(path_.c_str(), &st) == 0) {
        last_ino_ = st.st_ino;
        last_dev_ = st.st_dev;
        last_size_ = st.st_size;
    }
    return true;
}

std::unique_ptr<Exporter> make_postfix_db_exporter(const config::ExportConfig& cfg) {
    return std::make_unique<PostfixDbExporter>(cfg);
}

}  // namespace rp::exports
