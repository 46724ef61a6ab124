#include "daemon/login_spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "daemon/control_codec.hpp"
#include "util/unique_fd.hpp"

namespace rp::daemon {
namespace {

using Json = nlohmann::json;

constexpr std::string_view k_prefix = "login.";
constexpr std::string_view k_tmp_prefix = ".tmp.";
constexpr mode_t k_dir_mode = 03770;  // setgid + sticky, rwx for owner and group
constexpr mode_t k_file_mode = 0640;
constexpr auto k_tmp_max_age = std::chrono::hours(1);

core::Error sys_error(const std::string& what) { return core::make_error(what + ": " + std::strerror(errno)); }

util::UniqueFd open_dir(const std::string& path) {
    return util::UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

util::UniqueFd open_dir_at(int parent, const char* name) {
    return util::UniqueFd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const auto n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// "<time_us>.<pid>.<16 hex digits>": unique without coordination between writers.
std::string unique_suffix(core::Time t) {
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r))
        r = static_cast<std::uint64_t>(core::to_unix_micros(t)) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%lld.%ld.%016llx", static_cast<long long>(core::to_unix_micros(t)),
                  static_cast<long>(::getpid()), static_cast<unsigned long long>(r));
    return buf;
}

core::Result<std::string> read_small_file(int dir, const std::string& name) {
    util::UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return sys_error("cannot open");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error("cannot stat");
    if (!S_ISREG(st.st_mode)) return core::make_error("not a regular file");
    if (st.st_size > static_cast<off_t>(k_spool_max_file)) return core::make_error("larger than 4 KiB");
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t have = 0;
    while (have < text.size()) {
        const auto n = ::read(fd.get(), text.data() + have, text.size() - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error("cannot read");
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    text.resize(have);
    return text;
}

}  // namespace

std::string spool_dir_for(const std::string& state_dir) { return state_dir + "/" + k_spool_subdir; }

std::string encode_spooled_login(const SpooledLogin& login) {
    Json j = {{"ip", login.ip.to_string()}, {"user", login.user}, {"time_us", core::to_unix_micros(login.time)}};
    if (login.ttl) j["ttl_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(*login.ttl).count();
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

core::Result<SpooledLogin> parse_spooled_login(std::string_view text) {
    const Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return core::make_error("not a JSON object");
    SpooledLogin out;
    bool have_ip = false, have_time = false;
    for (const auto& [key, v] : j.items()) {
        if (key == "ip") {
            auto ip = parse_ip_field(v);
            if (!ip) return ip.error();
            out.ip = *ip;
            have_ip = true;
        } else if (key == "user") {
            auto user = parse_user_field(v);
            if (!user) return user.error();
            out.user = std::move(*user);
        } else if (key == "time_us") {
            if (!v.is_number_integer() || v.get<std::int64_t>() <= 0)  // unsigned beyond int64 is not "integer"
                return core::make_error("field 'time_us' must be a positive integer");
            out.time = core::from_unix_micros(v.get<std::int64_t>());
            have_time = true;
        } else if (key == "ttl_ms") {
            auto ttl = parse_ttl_field(v);
            if (!ttl) return ttl.error();
            out.ttl = *ttl;
        } else {
            return core::make_error("unknown field '" + key.substr(0, 64) + "'");
        }
    }
    if (!have_ip || !have_time) return core::make_error("needs the fields 'ip' and 'time_us'");
    return out;
}

core::Status spool_login(const std::string& dir, const SpooledLogin& login) {
    const auto d = open_dir(dir);
    if (!d) return sys_error("spool directory " + dir);
    struct stat dst {};
    if (::fstat(d.get(), &dst) != 0) return sys_error("spool directory " + dir);
    const std::string suffix = unique_suffix(login.time);
    const std::string tmp = std::string(k_tmp_prefix) + suffix, final_name = std::string(k_prefix) + suffix;
    util::UniqueFd fd(::openat(d.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, k_file_mode));
    if (!fd) return sys_error("cannot create a file in " + dir);
    // The group must be the directory's, so the daemon can read what root (or anyone) wrote.
    struct stat fst {};
    bool ok = ::fchmod(fd.get(), k_file_mode) == 0 && ::fstat(fd.get(), &fst) == 0 &&
              (fst.st_gid == dst.st_gid || ::fchown(fd.get(), static_cast<uid_t>(-1), dst.st_gid) == 0) &&
              write_all(fd.get(), encode_spooled_login(login)) && ::fsync(fd.get()) == 0;
    if (ok) ok = ::renameat(d.get(), tmp.c_str(), d.get(), final_name.c_str()) == 0;
    if (!ok) {
        const auto err = sys_error("cannot write " + dir + "/" + tmp);
        ::unlinkat(d.get(), tmp.c_str(), 0);
        return err;
    }
    if (::fsync(d.get()) != 0) return sys_error("cannot sync " + dir);
    return core::ok();
}

core::Status prepare_spool_dir(const std::string& state_dir, uid_t uid, gid_t gid) {
    const auto parent = open_dir(state_dir);
    if (!parent) return sys_error("state_dir " + state_dir);
    if (::mkdirat(parent.get(), k_spool_subdir, 0700) != 0 && errno != EEXIST)
        return sys_error("cannot create " + spool_dir_for(state_dir));
    const auto d = open_dir_at(parent.get(), k_spool_subdir);
    if (!d) return sys_error(spool_dir_for(state_dir) + " (must be a directory, not a symlink)");
    struct stat st {};
    if (::fstat(d.get(), &st) != 0) return sys_error(spool_dir_for(state_dir));
    if ((uid != static_cast<uid_t>(-1) && st.st_uid != uid) || (gid != static_cast<gid_t>(-1) && st.st_gid != gid))
        if (::fchown(d.get(), uid, gid) != 0) return sys_error("cannot chown " + spool_dir_for(state_dir));
    if ((st.st_mode & 07777) != k_dir_mode && ::fchmod(d.get(), k_dir_mode) != 0)
        return sys_error("cannot chmod " + spool_dir_for(state_dir));
    if (gid == static_cast<gid_t>(-1)) return core::ok();
    // Writers reach the spool through state_dir: let the group search it (not list it).
    if (::fstat(parent.get(), &st) != 0) return sys_error(state_dir);
    if (st.st_gid != gid) {
        if (::fchown(parent.get(), static_cast<uid_t>(-1), gid) != 0) return sys_error("cannot chgrp " + state_dir);
        st.st_mode &= ~static_cast<mode_t>(S_IRGRP | S_IWGRP);
    }
    if ((st.st_mode & S_IXGRP) == 0 || st.st_gid != gid)
        if (::fchmod(parent.get(), (st.st_mode & 07777) | S_IXGRP) != 0) return sys_error("cannot chmod " + state_dir);
    return core::ok();
}

core::Result<std::vector<SpoolEntry>> read_spool(const std::string& dir, std::size_t max) {
    auto d = open_dir(dir);
    if (!d) {
        if (errno == ENOENT) return std::vector<SpoolEntry>{};
        return sys_error("spool directory " + dir);
    }
    const int list_fd = ::dup(d.get());
    DIR* listing = list_fd >= 0 ? ::fdopendir(list_fd) : nullptr;
    if (!listing) {
        if (list_fd >= 0) ::close(list_fd);
        return sys_error("cannot list " + dir);
    }
    std::vector<std::string> names;
    const auto tmp_limit = std::chrono::system_clock::now() - k_tmp_max_age;
    while (const dirent* e = ::readdir(listing)) {
        const std::string_view name = e->d_name;
        if (name.starts_with(k_prefix)) {
            names.emplace_back(name);
        } else if (name.starts_with(k_tmp_prefix)) {
            struct stat st {};  // a writer that died between create and rename
            if (::fstatat(d.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                std::chrono::system_clock::from_time_t(st.st_mtime) < tmp_limit)
                ::unlinkat(d.get(), e->d_name, 0);
        }
    }
    ::closedir(listing);
    std::sort(names.begin(), names.end());
    if (names.size() > max) names.resize(max);
    std::vector<SpoolEntry> out;
    out.reserve(names.size());
    for (auto& name : names) {
        auto text = read_small_file(d.get(), name);
        out.push_back({std::move(name), text ? parse_spooled_login(*text) : core::Result<SpooledLogin>(text.error())});
    }
    return out;
}

core::Status remove_spooled(const std::string& dir, const std::string& name) {
    const auto d = open_dir(dir);
    if (!d) return sys_error("spool directory " + dir);
    if (::unlinkat(d.get(), name.c_str(), 0) != 0 && errno != ENOENT) return sys_error("cannot remove " + dir + "/" + name);
    return core::ok();
}

}  // namespace rp::daemon
