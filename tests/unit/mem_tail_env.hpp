// MemTailEnv: an in-memory TailEnv for FileTailSource tests (model: LevelDB's helpers/memenv).
// Paths name inodes; an open file keeps its inode, so a renamed or unlinked file stays readable
// through it, as with a descriptor. No change notification (fd() is -1): the source's timers
// drive it. The steady clock is manual.
// Thread-safety: none (tests run the source on one thread).
#pragma once

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "sources/file_tail_env.hpp"

namespace rp::test {

class MemTailEnv final : public rp::sources::TailEnv {
public:
    struct Inode {
        std::uint64_t ino = 0;
        std::string data;
    };
    static constexpr std::uint64_t k_dev = 77;

    explicit MemTailEnv(std::string dir) : dir_(std::move(dir)) {}

    // -- changing the filesystem --
    void write(const std::string& path, const std::string& data) { node(path)->data = data; }
    void append(const std::string& path, const std::string& data) { node(path)->data += data; }
    void truncate(const std::string& path) { node(path)->data.clear(); }
    void rename(const std::string& from, const std::string& to) {
        files_[to] = files_.at(from);
        files_.erase(from);
    }
    void unlink(const std::string& path) { files_.erase(path); }
    void copy(const std::string& from, const std::string& to) { write(to, files_.at(from)->data); }  // a new inode
    std::uint64_t ino(const std::string& path) const { return files_.at(path)->ino; }
    bool exists(const std::string& path) const { return files_.count(path) != 0; }

    // -- TailEnv --
    std::unique_ptr<rp::sources::TailFile> open(const std::string& path, int& err) override {
        auto it = files_.find(path);
        if (it == files_.end()) {
            err = ENOENT;
            return nullptr;
        }
        return std::make_unique<File>(it->second);
    }
    std::optional<rp::sources::FileInfo> stat(const std::string& path, int& err) override {
        if (path == dir_) return rp::sources::FileInfo{k_dev, 1, 0, false, true};
        auto it = files_.find(path);
        if (it == files_.end()) {
            err = ENOENT;
            return std::nullopt;
        }
        return info_of(*it->second);
    }
    void list_dir(const std::string& dir,
                  const std::function<bool(const std::string&, const rp::sources::FileInfo&)>& each) override {
        if (dir != dir_) return;
        for (const auto& [path, inode] : files_)
            if (!each(path.substr(dir_.size() + 1), info_of(*inode))) return;
    }
    rp::core::Result<std::unique_ptr<rp::sources::TailWatcher>> make_watcher() override {
        return std::unique_ptr<rp::sources::TailWatcher>(std::make_unique<NoWatcher>());
    }
    rp::util::EventLoop::Steady::time_point now() override { return now_; }
    void advance(std::chrono::milliseconds d) { now_ += d; }

private:
    struct File final : rp::sources::TailFile {
        explicit File(std::shared_ptr<Inode> n) : inode(std::move(n)) {}
        rp::core::Result<std::size_t> read_at(std::uint64_t offset, char* buf, std::size_t n) override {
            if (offset >= inode->data.size()) return std::size_t{0};
            const std::size_t k = std::min<std::size_t>(n, inode->data.size() - offset);
            std::memcpy(buf, inode->data.data() + offset, k);
            return k;
        }
        std::optional<rp::sources::FileInfo> info() const override { return info_of(*inode); }
        std::shared_ptr<Inode> inode;
    };
    struct NoWatcher final : rp::sources::TailWatcher {
        int fd() const override { return -1; }
        rp::core::Status watch_dir(const std::string&) override { return rp::core::ok(); }
        int watch_file(const rp::sources::TailFile&, const std::string&) override { return next++; }
        void unwatch(int) override {}
        void drain() override {}
        int next = 1;
    };
    static rp::sources::FileInfo info_of(const Inode& n) { return {k_dev, n.ino, n.data.size(), true, false}; }
    std::shared_ptr<Inode>& node(const std::string& path) {
        auto& n = files_[path];
        if (!n) n = std::make_shared<Inode>(Inode{next_ino_++, {}});
        return n;
    }

    std::string dir_;
    std::map<std::string, std::shared_ptr<Inode>> files_;
    std::uint64_t next_ino_ = 100;
    rp::util::EventLoop::Steady::time_point now_{std::chrono::hours(1)};
};

}  // namespace rp::test
