#include "store/snapshot_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "store/permit_table.hpp"
#include "util/log.hpp"
#include "util/small_file.hpp"

namespace rp::store {
namespace {

using core::make_error;

constexpr std::size_t k_header = 24;            // magic + written_us + identity
constexpr std::size_t k_fixed = 1 + 1 + 1 + 16 + 8 + 8 + 4;  // payload before the names
constexpr std::size_t k_flush_at = 1u << 20;

std::uint32_t fnv1a(std::string_view s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
}

template <typename T>
void put(std::string& out, T v) {
    char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>(static_cast<std::uint64_t>(v) >> (8 * i));
    out.append(b, sizeof b);
}

template <typename T>
T get(const char* p) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return static_cast<T>(v);
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// The payload of one record (its checksum already matched) -> r; false when malformed.
bool decode_payload(std::string_view p, SnapshotRecord& r) {
    if (p.size() < k_fixed) return false;
    const auto kind = static_cast<unsigned char>(p[0]), v4 = static_cast<unsigned char>(p[1]);
    const int prefix = static_cast<unsigned char>(p[2]);
    if (kind > 1 || v4 > 1 || prefix > (v4 ? 32 : 128)) return false;
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), p.data() + 3, 16);
    const core::Address a = v4 ? core::Address::v4(std::uint32_t{bytes[0]} << 24 | std::uint32_t{bytes[1]} << 16 |
                                                    std::uint32_t{bytes[2]} << 8 | bytes[3])
                               : core::Address::v6(bytes);
    if (a.is_v4() != (v4 == 1)) return false;  // a v4-mapped IPv6 address is stored as IPv4
    const auto ulen = get<std::uint32_t>(p.data() + 35);
    if (ulen > p.size() - k_fixed) return false;
    r.kind = kind == 0 ? Change::Kind::upsert : Change::Kind::remove;
    r.network = core::Cidr(a, prefix);
    r.granted_us = get<std::int64_t>(p.data() + 19);
    r.expires_us = get<std::int64_t>(p.data() + 27);
    r.user = p.substr(k_fixed, ulen);
    r.source = p.substr(k_fixed + ulen);
    return true;
}

}  // namespace

bool append_snapshot_record(std::string& out, const SnapshotRecord& r) {
    // The reader takes a length over the maximum for damage: never write one.
    if (r.user.size() + r.source.size() > k_snapshot_max_record - k_fixed) return false;
    const auto& a = r.network.network();
    std::string p;
    p.reserve(k_fixed + r.user.size() + r.source.size());
    p += static_cast<char>(r.kind == Change::Kind::upsert ? 0 : 1);
    p += static_cast<char>(a.is_v4() ? 1 : 0);
    p += static_cast<char>(r.network.prefix());
    p.append(reinterpret_cast<const char*>(a.bytes().data()), 16);
    put<std::int64_t>(p, r.granted_us);
    put<std::int64_t>(p, r.expires_us);
    put<std::uint32_t>(p, static_cast<std::uint32_t>(r.user.size()));
    p += r.user;
    p += r.source;
    put<std::uint32_t>(out, static_cast<std::uint32_t>(p.size()));
    out += p;
    put<std::uint32_t>(out, fnv1a(p));
    return true;
}

std::uint64_t snapshot_identity(std::string_view store_describe) {
    std::uint64_t h = 14695981039346656037u;  // FNV-1a, 64 bits
    for (unsigned char c : store_describe) h = (h ^ c) * 1099511628211u;
    return h;
}

std::string snapshot_header(std::int64_t written_us, std::uint64_t identity) {
    std::string h(k_snapshot_magic);
    put<std::int64_t>(h, written_us);
    put<std::uint64_t>(h, identity);
    return h;
}

core::Result<SnapshotInfo> parse_snapshot(std::string_view bytes,
                                          const std::function<void(const SnapshotRecord&)>& visit) {
    if (bytes.size() < k_header || bytes.substr(0, k_snapshot_magic.size()) != k_snapshot_magic)
        return make_error("not a relaypermit snapshot (no RPSNAP2 header)");
    SnapshotInfo info;
    info.written_us = get<std::int64_t>(bytes.data() + 8);
    info.identity = get<std::uint64_t>(bytes.data() + 16);
    std::size_t at = k_header;
    while (at < bytes.size()) {
        const std::size_t left = bytes.size() - at;
        const std::uint32_t n = left >= 4 ? get<std::uint32_t>(bytes.data() + at) : 0;
        const bool whole = left >= 4 && n <= k_snapshot_max_record && std::size_t{n} + 8 <= left;
        SnapshotRecord r;
        if (whole) {
            const std::string_view payload = bytes.substr(at + 4, n);
            if (get<std::uint32_t>(bytes.data() + at + 4 + n) == fnv1a(payload) && decode_payload(payload, r)) {
                visit(r);
                ++info.records;
                at += std::size_t{n} + 8;
                continue;
            }
        }
        // Only a record genuinely cut short at the end (a crash during an append) is a torn
        // tail; a length over the maximum or a whole record with a bad checksum is damage,
        // wherever it lies: dropping it and what follows could drop a revoke.
        const bool cut_short = left < 4 || (n <= k_snapshot_max_record && std::size_t{n} + 8 > left);
        if (!cut_short) return make_error("damaged record at byte " + std::to_string(at));
        info.torn_tail = true;
        break;
    }
    return info;
}

// ---- SnapshotWriter ----

core::Status SnapshotWriter::begin(std::int64_t written_us) {
    abort();
    tmp_path_ = path_ + ".tmp";
    (void)::unlink(tmp_path_.c_str());  // O_EXCL below: never write through a planted link
    tmp_.reset(::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!tmp_) {
        // The committed file would go on taking appends while missing what this snapshot
        // reflects (changes never announced, e.g. during a disconnection): none until a commit.
        auto st = make_error(sys_error("cannot create " + tmp_path_));
        (void)::unlink(path_.c_str());
        live_ = false;
        return st;
    }
    buf_ = snapshot_header(written_us, identity_);
    failed_ = false;
    oversized_ = false;
    pending_ = 0;
    return core::ok();
}

void SnapshotWriter::add(const SnapshotRecord& r) {
    if (!tmp_ || failed_) return;
    if (!append_snapshot_record(buf_, r)) {
        failed_ = true;
        oversized_ = true;
        return;
    }
    ++pending_;
    if (buf_.size() >= k_flush_at) failed_ = !flush();
}

core::Status SnapshotWriter::flush() {
    std::size_t done = 0;
    while (done < buf_.size()) {
        const ssize_t w = ::write(tmp_.get(), buf_.data() + done, buf_.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return make_error(sys_error("cannot write " + tmp_path_));
        done += static_cast<std::size_t>(w);
    }
    buf_.clear();
    return core::ok();
}

core::Status SnapshotWriter::commit() {
    if (!tmp_) return make_error("no snapshot begun");
    auto st = oversized_ ? make_error("a permit's names exceed the record maximum")
              : failed_  ? make_error(sys_error("cannot write " + tmp_path_))
                         : flush();
    if (st && ::fsync(tmp_.get()) != 0) st = make_error(sys_error("cannot fsync " + tmp_path_));
    if (st && ::rename(tmp_path_.c_str(), path_.c_str()) != 0)
        st = make_error(sys_error("cannot rename " + tmp_path_ + " to " + path_));
    if (!st) {  // an older file would miss the revokes since: better none
        abort();
        (void)::unlink(path_.c_str());
        live_ = false;
        return st;
    }
    tmp_.reset();
    tmp_path_.clear();
    const auto slash = path_.rfind('/');
    util::UniqueFd dir(::open(slash == std::string::npos ? "." : path_.substr(0, slash + 1).c_str(),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) (void)::fsync(dir.get());  // the rename itself durable; best effort
    committed_ = pending_;
    appended_ = 0;
    live_ = true;
    return core::ok();
}

void SnapshotWriter::abort() {
    if (!tmp_path_.empty()) (void)::unlink(tmp_path_.c_str());
    tmp_.reset();
    tmp_path_.clear();
    buf_.clear();
    buf_.shrink_to_fit();
}

core::Status SnapshotWriter::append(std::span<const Change> changes) {
    if (changes.empty() || !live_) return core::ok();
    appended_ += changes.size();
    std::string out;
    bool fits = true;
    for (const auto& c : changes)
        fits = fits && append_snapshot_record(out, {c.kind, c.permit.network, c.permit.user, c.permit.source,
                                                    core::to_unix_micros(c.permit.granted),
                                                    core::to_unix_micros(c.permit.expires)});
    util::UniqueFd fd(fits ? ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW) : -1);
    core::Status st = !fits ? make_error("a change's names exceed the record maximum")
                      : fd  ? core::ok()
                            : make_error(sys_error("cannot open " + path_));
    for (std::size_t done = 0; st && done < out.size();) {
        const ssize_t w = ::write(fd.get(), out.data() + done, out.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) st = make_error(sys_error("cannot append to " + path_));
        else done += static_cast<std::size_t>(w);
    }
    if (st && ::fdatasync(fd.get()) != 0) st = make_error(sys_error("cannot fdatasync " + path_));
    if (!st) {  // a file missing these changes (a revoke) must not be read at the next start
        (void)::unlink(path_.c_str());
        live_ = false;
    }
    return st;
}

// ---- loading ----

core::Result<std::unique_ptr<PermitTable>> fetch_snapshot(SharedBackend& backend, core::Time now, std::size_t limit,
                                                          SnapshotWriter* writer) {
    auto table = std::make_unique<PermitTable>();
    table->set_limit(limit);
    table->begin_load(0);
    if (writer)
        if (auto st = writer->begin(core::to_unix_micros(now)); !st) {
            util::log(util::Level::warning, "store {}: local snapshot not written: {}", backend.describe(),
                      st.error().message);
            writer = nullptr;
        }
    auto st = backend.snapshot_to(now, [&](const PermitRow& r) {
        table->load(r.network, r.user, r.source, r.granted_us, r.expires_us);
        if (writer) writer->add({Change::Kind::upsert, r.network, r.user, r.source, r.granted_us, r.expires_us});
    });
    table->end_load();
    if (!st) {
        if (writer) writer->abort();
        return st.error();
    }
    return table;
}

core::Result<LocalSnapshot> load_snapshot_file(const std::string& path, std::uint64_t identity, PermitTable& table,
                                              core::Time now) {
    auto bytes = util::read_private_file(path, std::size_t{4} << 30);  // no link, ours, not shared
    if (!bytes) return bytes.error();
    LocalSnapshot out;
    if (!*bytes) return out;
    if ((*bytes)->size() >= k_header && get<std::uint64_t>((*bytes)->data() + 16) != identity)
        return core::make_error(path + ": written for another store (its URL, key prefix or database changed)");
    const auto now_us = core::to_unix_micros(now);
    PermitTable fresh;
    fresh.set_limit(table.limit());
    fresh.begin_load((*bytes)->size() / 64);
    // In file order: a removal deletes what came before it, a grant after it stays.
    auto info = parse_snapshot(**bytes, [&](const SnapshotRecord& r) {
        if (r.kind == Change::Kind::upsert) {
            if (r.expires_us > now_us) fresh.load(r.network, r.user, r.source, r.granted_us, r.expires_us);
        } else if (auto cached = fresh.find_exact(r.network);
                   cached && core::to_unix_micros(cached->granted) <= r.granted_us) {
            fresh.remove_exact(r.network);
        }
    });
    fresh.end_load();
    if (!info) return core::make_error(path + ": " + info.error().message);
    table.replace_with(std::move(fresh));
    out.written_us = info->written_us;
    out.live = table.size();
    return out;
}

}  // namespace rp::store
