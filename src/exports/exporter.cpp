#include "exports/exporter.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "exports/after_write.hpp"
#include "exports/atomic_file.hpp"
#include "exports/db_maps.hpp"
#include "exports/file_exporter.hpp"
#include "exports/map_formats.hpp"
#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"
#include "util/small_file.hpp"

namespace rp::exports {
namespace {

namespace fs = std::filesystem;

core::Status make_dirs(const std::string& dir) {
    if (dir.empty()) return core::ok();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return core::make_error("cannot create directory " + dir + ": " + ec.message());
    return core::ok();
}

// An export's current bytes, compared before a rewrite (nullopt: not written yet). The same
// reader as every other file (util/small_file.hpp); the bound only stops a runaway file.
core::Result<std::optional<std::string>> read_file(const std::string& path) {
    return util::read_small_file(path, std::size_t{4} << 30);
}

core::Status write_all(int fd, std::string_view data, const std::string& path) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return core::make_error(sys_error("cannot write " + path, errno));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return core::ok();
}

mode_t existing_mode(const std::string& path, mode_t fallback) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return st.st_mode & 07777;
    return fallback;
}

// True when the file was replaced, false when it already held `bytes`.
core::Result<bool> replace_if_changed(const std::string& path, std::string_view bytes) {
    auto current = read_file(path);
    if (!current) return current.error();
    if (current->has_value() && **current == bytes) return false;
    auto tmp = TempFile::create(path);
    if (!tmp) return tmp.error();
    if (auto s = write_all(tmp->fd(), bytes, tmp->path()); !s) return s.error();
    if (auto s = tmp->commit(path, existing_mode(path, 0644)); !s) return s.error();
    return true;
}

core::Result<std::string> read_static(const std::string& path) {
    if (path.empty()) return std::string();
    auto text = util::read_small_file(path, k_max_static_file);
    if (!text) return core::make_error("static file " + text.error().message);
    if (!text->has_value()) return core::make_error("static file " + path + " does not exist");
    return std::move(**text);
}

// postfix-cdb and tcprules-cdb: one CDB image, rewritten when its bytes change.
class CdbExporter final : public FileExporter {
public:
    CdbExporter(config::ExportConfig cfg, std::string_view relayclient)
        : FileExporter(std::move(cfg)), relay_value_(tcprules_relay_value(relayclient)) {}

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        std::vector<Record> records;
        if (cfg_.type == config::ExportType::postfix_cdb) {
            for (auto& k : live_keys(live, now, postfix_key)) records.emplace_back(std::move(k), "OK");
        } else {
            // The admin's rules first: tcpserver uses the first record of a key, so an explicit
            // static rule for an address wins over a permit (as vpopmail's roaming users do).
            auto text = read_static(cfg_.static_path);
            if (!text) return text.error();
            auto rules = parse_tcprules(*text);
            if (!rules) return core::make_error(cfg_.static_path + ": " + rules.error().message);
            records = std::move(*rules);
            for (auto& k : live_keys(live, now, tcprules_key)) records.emplace_back(std::move(k), relay_value_);
        }
        auto bytes = build_cdb(records);
        if (!bytes) return bytes.error();
        return finish(replace_if_changed(cfg_.path, *bytes));
    }

private:
    std::string relay_value_;
};

// sendmail-access: a Berkeley DB hash as `makemap hash` writes it (no NUL, lowercased keys).
class SendmailAccessExporter final : public FileExporter {
public:
    explicit SendmailAccessExporter(config::ExportConfig cfg) : FileExporter(std::move(cfg)) {}

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        auto text = read_static(cfg_.static_path);
        if (!text) return text.error();
        auto parsed = parse_makemap(*text);
        if (!parsed) return core::make_error(cfg_.static_path + ": " + parsed.error().message);
        std::vector<Record> records = std::move(*parsed);
        std::set<std::string> static_keys;
        for (const auto& r : records) static_keys.insert(r.first);
        // A static entry for the same key wins (makemap refuses duplicates; the admin decides).
        for (auto& k : live_keys(live, now, sendmail_key))
            if (!static_keys.contains(k)) records.emplace_back(std::move(k), "RELAY");

        // A long-running sendmail keeps the old file open and reopens a map when fstat() of its
        // descriptor shows a newer mtime: DbMapFile bumps the old inode's mtime after the rename.
        return finish(file_.replace_if_changed(records));
    }

private:
    DbMapFile file_{cfg_.path, DbMapFile::Kind::bdb_hash};
};

// relay-ctrl-dir: one file per host permit, named by the address, mtime = grant time, content
// "USER=name\0" when the user name is safe to put into the SMTP server's environment.
class RelayCtrlDirExporter final : public FileExporter {
public:
    explicit RelayCtrlDirExporter(config::ExportConfig cfg) : FileExporter(std::move(cfg)) {}

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        struct Want {
            std::string content;
            core::Time granted;
        };
        std::map<std::string, Want> want;
        for (const auto& p : live) {
            if (p.expires <= now || !p.network.is_host()) continue;
            auto [it, fresh] = want.try_emplace(p.network.network().to_string());
            if (fresh || p.granted > it->second.granted) it->second = Want{content_for(p.user), p.granted};
        }
        // Remove the files of permits that are gone (only names that are addresses).
        std::vector<std::string> present;
        if (DIR* d = ::opendir(cfg_.path.c_str())) {
            while (auto* e = ::readdir(d)) present.emplace_back(e->d_name);
            ::closedir(d);
        } else {
            return core::make_error(sys_error(describe_ + ": cannot read the directory", errno));
        }
        std::string first_error;
        bool changed = false;
        for (const auto& name : present) {
            if (name.empty() || name[0] == '.' || !core::Address::parse(name) || want.contains(name)) continue;
            if (::unlink((cfg_.path + "/" + name).c_str()) == 0) changed = true;
            else if (errno != ENOENT && first_error.empty())
                first_error = sys_error("cannot remove " + cfg_.path + "/" + name, errno);
        }
        for (const auto& [name, w] : want) {
            const std::string file = cfg_.path + "/" + name;
            const auto us = core::to_unix_micros(w.granted);
            const struct timespec mtime{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
            struct stat st;
            if (::lstat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtim.tv_sec == mtime.tv_sec &&
                st.st_mtim.tv_nsec == mtime.tv_nsec && static_cast<std::size_t>(st.st_size) == w.content.size()) {
                auto current = read_file(file);
                if (current && current->has_value() && **current == w.content) continue;
            }
            auto s = write_one(file, w.content, mtime);
            if (s) changed = true;
            else if (first_error.empty()) first_error = s.error().message;
        }
        if (changed) ++replacements_;
        if (!first_error.empty()) return core::make_error(describe_ + ": " + first_error);
        return core::ok();
    }

private:
    static std::string content_for(const std::string& user) {
        if (user.empty() || user.size() > 255) return {};
        for (char c : user)
            if (c <= ' ' || c >= 127) return {};
        return "USER=" + user + '\0';
    }

    static core::Status write_one(const std::string& file, const std::string& content, const struct timespec& mtime) {
        auto tmp = TempFile::create(file);
        if (!tmp) return tmp.error();
        if (auto s = write_all(tmp->fd(), content, tmp->path()); !s) return s;
        return tmp->commit(file, 0644, &mtime);
    }
};

// opensmtpd-table: an OpenSMTPD file table (list of netaddr keys) for `match from src <t>`.
// smtpd 6.8 refuses a file table without entries for `from src` at start ("may not be used for
// from lookups"), so the file always holds 0.0.0.0, which no TCP client can connect from.
class OpensmtpdTableExporter final : public FileExporter {
public:
    explicit OpensmtpdTableExporter(config::ExportConfig cfg) : FileExporter(std::move(cfg)) {}

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        std::string text =
            "# relaypermit: permitted relay clients, rewritten at every change; do not edit.\n"
            "# 0.0.0.0 keeps the table usable when no one is permitted (no client has that address).\n"
            "0.0.0.0\n";
        for (const auto& k : live_keys(live, now, opensmtpd_key)) text += k + '\n';
        return finish(replace_if_changed(cfg_.path, text));
    }
};

// Any exporter plus its `after_write` command, run after each write that replaced the map and
// after the first write (the MTA may hold an older table than the file after our restart).
// write_map() (any one thread) touches only the inner exporter; map_written() and busy() (the
// loop's thread) only the command.
class AfterWriteExporter final : public Exporter {
public:
    AfterWriteExporter(std::unique_ptr<Exporter> inner, util::EventLoop& loop, const config::ExportConfig& cfg)
        : inner_(std::move(inner)),
          command_(loop, cfg.after_write,
                   std::chrono::ceil<std::chrono::milliseconds>(cfg.after_write_timeout), inner_->describe()) {}
    const std::string& describe() const override { return inner_->describe(); }

    core::Status write_map(std::span<const core::Permit> live, core::Time now) override {
        auto s = inner_->write_map(live, now);
        replacements_ = inner_->replacements();
        return s;
    }
    void map_written(bool replaced) override {
        if (!replaced && !first_) return;
        first_ = false;
        command_.request();
    }
    bool busy() const override { return command_.running(); }

private:
    std::unique_ptr<Exporter> inner_;
    AfterWriteCommand command_;
    bool first_ = true;
};

}  // namespace

Exporter::~Exporter() = default;

FileExporter::FileExporter(config::ExportConfig cfg)
    : cfg_(std::move(cfg)), describe_(std::string(config::to_string(cfg_.type)) + ":" + cfg_.path) {}

core::Status FileExporter::finish(const core::Result<bool>& replaced) {
    if (!replaced) return core::make_error(describe_ + ": " + replaced.error().message);
    if (*replaced) ++replacements_;
    return core::ok();
}

core::Status Exporter::write(std::span<const core::Permit> live, core::Time now) {
    const auto before = replacements_;
    auto s = write_map(live, now);
    if (s) map_written(replacements_ != before);
    return s;
}

core::Result<std::unique_ptr<Exporter>> open_exporter(const config::ExportConfig& cfg, const std::string& relayclient,
                                                      util::EventLoop* loop, StaticCheck check) {
    const std::string where = cfg.line > 0 ? "export (line " + std::to_string(cfg.line) + "): " : "export: ";
    if (cfg.path.empty()) return core::make_error(where + "path is required");
    auto ends_with = [&](std::string_view suffix) {
        return cfg.path.size() > suffix.size() && std::string_view(cfg.path).ends_with(suffix);
    };
    // Postfix reads cdb:NAME from NAME.cdb and Sendmail's hash map NAME from NAME.db.
    if (cfg.type == config::ExportType::postfix_cdb && !ends_with(".cdb"))
        return core::make_error(where + "postfix-cdb path must end in .cdb (Postfix reads cdb:NAME from NAME.cdb)");
    if (cfg.type == config::ExportType::postfix_lmdb && !ends_with(".lmdb"))
        return core::make_error(where + "postfix-lmdb path must end in .lmdb (Postfix reads lmdb:NAME from NAME.lmdb)");
    if (cfg.type == config::ExportType::postfix_hash && !ends_with(".db"))
        return core::make_error(where + "postfix-hash path must end in .db (Postfix reads hash:NAME from NAME.db)");
    if (cfg.type == config::ExportType::sendmail_access && !ends_with(".db"))
        return core::make_error(where + "sendmail-access path must end in .db (Sendmail reads hash NAME from NAME.db)");
    std::unique_ptr<Exporter> e;
    std::string dir = dir_of(cfg.path);
    if (cfg.type == config::ExportType::postfix_cdb || cfg.type == config::ExportType::tcprules_cdb) {
        if (cfg.type == config::ExportType::postfix_cdb && !cfg.static_path.empty())
            return core::make_error(where + "postfix-cdb takes no static file");
        e = std::make_unique<CdbExporter>(cfg, relayclient);
    } else if (cfg.type == config::ExportType::postfix_lmdb || cfg.type == config::ExportType::postfix_hash) {
        if (!cfg.static_path.empty())
            return core::make_error(where + std::string(config::to_string(cfg.type)) + " takes no static file");
        e = make_postfix_db_exporter(cfg);
    } else if (cfg.type == config::ExportType::sendmail_access) {
        e = std::make_unique<SendmailAccessExporter>(cfg);
    } else if (cfg.type == config::ExportType::relay_ctrl_dir) {
        if (!cfg.static_path.empty()) return core::make_error(where + "relay-ctrl-dir takes no static file");
        dir = cfg.path;
        e = std::make_unique<RelayCtrlDirExporter>(cfg);
    } else if (cfg.type == config::ExportType::opensmtpd_table) {
        if (!cfg.static_path.empty()) return core::make_error(where + "opensmtpd-table takes no static file");
        e = std::make_unique<OpensmtpdTableExporter>(cfg);
    } else {
        return core::make_error(where + "unknown export type '" + std::string(config::to_string(cfg.type)) + "'");
    }
    if (auto s = make_dirs(dir); !s) return core::make_error(where + s.error().message);
    if (!cfg.static_path.empty() && check == StaticCheck::at_open) {
        auto text = read_static(cfg.static_path);
        if (!text) return core::make_error(where + text.error().message);
    }
    if (!cfg.after_write.empty()) {
        if (loop == nullptr) return core::make_error(where + "after_write needs the daemon's event loop");
        e = std::make_unique<AfterWriteExporter>(std::move(e), *loop, cfg);
    }
    return e;
}

}  // namespace rp::exports
