#include "util/file_reader.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

namespace rp::util {
namespace {

std::size_t page_size() {
    static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return page;
}

constexpr std::size_t k_huge_page = std::size_t{2} << 20;

// pread that retries EINTR; up to `n` bytes, 0 at end of file, -1 with errno.
ssize_t pread_some(int fd, char* buf, std::size_t n, std::size_t offset) {
    while (true) {
        const ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(offset));
        if (r >= 0 || errno != EINTR) return r;
    }
}

core::Error read_error() { return core::make_error(std::strerror(errno)); }

// Offset after the first '\n' at or after `from` in the mapping, or `size`.
std::size_t after_newline(const char* map, std::size_t from, std::size_t size) {
    if (from >= size) return size;
    const void* nl = std::memchr(map + from, '\n', size - from);
    return nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - map) + 1 : size;
}

// The mapping the calling thread reads, for the SIGBUS handler.
struct GuardRange {
    std::uintptr_t lo = 0, hi = 0;
    bool hit = false;
};
thread_local GuardRange t_guard;
std::size_t g_page = 0;  // set before the handler is installed
struct sigaction g_old_sigbus {};

// A lost page of the guarded mapping (the kernel's BUS_ADRERR at an address in it) becomes a
// zero page, and the access is retried. Any other SIGBUS: the previous handling, on the retried
// access for a fault; a signal sent with kill() (si_code <= 0: its si_addr means nothing) is
// raised again, so that it is neither taken for a lost page nor dropped.
void on_sigbus(int, siginfo_t* info, void*) {
    const bool fault = info->si_code > 0;
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    GuardRange& g = t_guard;
    if (fault && info->si_code == BUS_ADRERR && addr >= g.lo && addr < g.hi) {
        void* page = reinterpret_cast<void*>(addr & ~(g_page - 1));
        if (::mmap(page, g_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            g.hit = true;
            return;
        }
    }
    ::sigaction(SIGBUS, &g_old_sigbus, nullptr);
    if (!fault) ::raise(SIGBUS);  // SA_NODEFER: delivered now, with the previous handling
}

// While it lives, this thread's accesses to [p, p + n) cannot kill the process.
class MappedGuard {
public:
    MappedGuard(const char* p, std::size_t n) {
        static const bool installed = [] {
            g_page = page_size();
            struct sigaction sa {};
            sa.sa_sigaction = on_sigbus;
            sa.sa_flags = SA_SIGINFO | SA_NODEFER;
            sigemptyset(&sa.sa_mask);
            return ::sigaction(SIGBUS, &sa, &g_old_sigbus) == 0;
        }();
        (void)installed;
        t_guard = {reinterpret_cast<std::uintptr_t>(p), reinterpret_cast<std::uintptr_t>(p) + n, false};
    }
    ~MappedGuard() { t_guard = {}; }
    MappedGuard(const MappedGuard&) = delete;
    MappedGuard& operator=(const MappedGuard&) = delete;
    bool pages_lost() const { return t_guard.hit; }
};

// Maps every page with one call (where faults one by one are slow, as under some hypervisors);
// an older kernel refuses it and the pages fault in as they are read.
void populate(std::uintptr_t lo, std::uintptr_t hi) {
#ifdef MADV_POPULATE_READ
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_READ);
#else
    (void)lo, (void)hi;
#endif
}

core::Error shrank_error() { return core::make_error("the file shrank while it was read"); }

}  // namespace

std::optional<ReadPath> parse_read_path(std::string_view name) {
    if (name == "auto") return ReadPath::automatic;
    if (name == "read") return ReadPath::read;
    if (name == "mmap") return ReadPath::mmap;
    return std::nullopt;
}

std::string_view read_path_name(ReadPath p) {
    switch (p) {
        case ReadPath::automatic: return "auto";
        case ReadPath::read: return "read";
        case ReadPath::mmap: return "mmap";
    }
    return "?";
}

ChunkBuffer::ChunkBuffer(std::size_t size) : size_(std::max(size, page_size())) {
    const std::size_t align = size_ >= k_huge_page ? k_huge_page : page_size();
    size_ = (size_ + align - 1) / align * align;
    data_ = static_cast<char*>(std::aligned_alloc(align, size_));
    if (!data_) throw std::bad_alloc();
    if (align == k_huge_page) ::madvise(data_, size_, MADV_HUGEPAGE);  // fewer TLB misses; a hint
}

ChunkBuffer::~ChunkBuffer() { std::free(data_); }

void ChunkBuffer::grow(std::size_t keep) {
    ChunkBuffer bigger(size_ * 2);
    std::memcpy(bigger.data_, data_, std::min(keep, size_));
    std::swap(data_, bigger.data_);
    std::swap(size_, bigger.size_);
}

core::Status read_lines(int fd, ChunkBuffer& buf, const LinesFn& on_lines) {
    std::size_t have = 0;
    while (true) {
        const ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            return read_error();
        }
        have += static_cast<std::size_t>(n);
        const std::string_view view(buf.data(), have);
        std::size_t cut = have;  // at the end, the last line whole
        if (n > 0) {
            const auto nl = view.rfind('\n');
            cut = nl == std::string_view::npos ? 0 : nl + 1;
        }
        if (cut > 0) {
            on_lines(view.substr(0, cut));
            std::memmove(buf.data(), buf.data() + cut, have - cut);
            have -= cut;
        } else if (have == buf.size()) {
            buf.grow(have);  // one line longer than the buffer
        }
        if (n == 0) return core::ok();
    }
}

std::optional<ChunkedFile> ChunkedFile::open(int fd, std::size_t chunk_bytes, ReadPath path, Lead lead) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return std::nullopt;
    const auto size = static_cast<std::size_t>(st.st_size);
    // A chunk longer than the file means the same as one as long: clamped, every sum and product
    // below stays within 2 * size.
    chunk_bytes = std::clamp<std::size_t>(chunk_bytes, 1, size);
    if (lead.bytes == 0 || lead.bytes > chunk_bytes) lead = {};
    if (lead.bytes) lead.chunks = std::min(lead.chunks, size / lead.bytes + 1);
    ChunkedFile f(fd, size, chunk_bytes, lead);
    if (path != ReadPath::read) {
        void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) f.map_ = static_cast<const char*>(p);
    }
    return f;
}

ChunkedFile::ChunkedFile(ChunkedFile&& o) noexcept
    : fd_(o.fd_), size_(o.size_), chunk_(o.chunk_), lead_(o.lead_), map_(o.map_) {
    o.map_ = nullptr;
}

std::size_t ChunkedFile::chunks() const {
    const auto ceil_div = [](std::size_t n, std::size_t d) { return n / d + (n % d != 0); };
    const std::size_t lead_end = lead_.chunks * lead_.bytes;  // <= size_ + lead_.bytes (open)
    if (size_ <= lead_end) return ceil_div(size_, lead_.bytes);
    return lead_.chunks + ceil_div(size_ - lead_end, chunk_);
}

std::size_t ChunkedFile::begin(std::size_t i) const {
    if (i >= chunks()) return size_;
    const std::size_t b = i < lead_.chunks ? i * lead_.bytes : lead_.chunks * lead_.bytes + (i - lead_.chunks) * chunk_;
    return std::min(b, size_);
}

ChunkedFile::~ChunkedFile() {
    if (map_) ::munmap(const_cast<char*>(map_), size_);
}

core::Status ChunkedFile::read_chunk(std::size_t i, ReadPath path, ChunkBuffer& buf, const LinesFn& on_lines) const {
    if (i >= chunks()) return core::ok();
    const std::size_t begin = this->begin(i), end = this->begin(i + 1);
    if (begin >= end) return core::ok();
    if (path == ReadPath::mmap && map_) return read_chunk_mapped(begin, end, on_lines);
    return read_chunk_read(begin, end, buf, on_lines);
}

// The lines that begin in [begin, end): from after the first '\n' at or after begin - 1 (or 0)
// to after the first '\n' at or after end - 1 (or the end of the file).
core::Status ChunkedFile::read_chunk_mapped(std::size_t begin, std::size_t end, const LinesFn& on_lines) const {
    const std::size_t page = page_size();
    MappedGuard guard(map_, size_);
    const std::size_t first = begin == 0 ? 0 : after_newline(map_, begin - 1, size_);
    if (first >= end) return guard.pages_lost() ? shrank_error() : core::ok();  // a line from an earlier chunk covers this one
    const std::size_t last = after_newline(map_, end - 1, size_);
    const auto lo = reinterpret_cast<std::uintptr_t>(map_ + first) & ~(page - 1);
    const auto hi = reinterpret_cast<std::uintptr_t>(map_ + last);
    populate(lo, hi);
    on_lines(std::string_view(map_ + first, last - first));
    // Drop the pages read, so the unmapping is spread over the threads instead of following
    // the scan (~30 ms for 1 GB on one thread); pages shared with the neighbours are kept.
    const auto drop_lo = (reinterpret_cast<std::uintptr_t>(map_ + first) + page - 1) & ~(page - 1);
    const auto drop_hi = hi & ~(page - 1);
    if (drop_hi > drop_lo) ::madvise(reinterpret_cast<void*>(drop_lo), drop_hi - drop_lo, MADV_DONTNEED);
    if (guard.pages_lost()) return shrank_error();
    return core::ok();
}

core::Status ChunkedFile::read_chunk_read(std::size_t begin, std::size_t end, ChunkBuffer& buf,
                                          const LinesFn& on_lines) const {
    std::size_t pos = begin == 0 ? 0 : begin - 1;  // file offset of buf[have]
    bool skipping = begin > 0;                      // before the first line that begins here
    std::size_t have = 0;
    while (pos < size_) {
        const ssize_t n = pread_some(fd_, buf.data() + have, std::min(buf.size() - have, size_ - pos), pos);
        if (n < 0) return read_error();
        if (n == 0) break;  // the file shrank: what is left is read
        const std::size_t base = pos - have;  // file offset of buf[0]
        pos += static_cast<std::size_t>(n);
        have += static_cast<std::size_t>(n);
        std::string_view view(buf.data(), have);
        if (skipping) {
            const auto nl = view.find('\n');
            if (nl == std::string_view::npos) {
                if (pos >= end) return core::ok();  // no line begins in [begin, end)
                have = 0;
                continue;
            }
            if (base + nl + 1 >= end) return core::ok();
            skipping = false;
            view.remove_prefix(nl + 1);
        }
        // The chunk ends after the first '\n' at or after end - 1.
        const std::size_t from = base + (view.data() - buf.data());  // file offset of view[0]
        if (pos > end - 1) {
            const auto nl = view.find('\n', end - 1 > from ? end - 1 - from : 0);
            if (nl != std::string_view::npos) {
                on_lines(view.substr(0, nl + 1));
                return core::ok();
            }
        }
        const auto nl = view.rfind('\n');
        const std::size_t cut = nl == std::string_view::npos ? 0 : nl + 1;
        if (cut > 0) on_lines(view.substr(0, cut));
        const std::size_t rest = view.size() - cut;
        std::memmove(buf.data(), view.data() + cut, rest);
        have = rest;
        if (have == buf.size()) buf.grow(have);  // one line longer than the buffer
    }
    if (!skipping && have > 0) on_lines(std::string_view(buf.data(), have));  // the last line, without '\n'
    return core::ok();
}

core::Result<RangeRead> read_range(int fd, std::uint64_t begin, std::uint64_t end, ReadPath path, ChunkBuffer& buf,
                                   const LinesFn& on_bytes) {
    RangeRead r;
    if (path == ReadPath::mmap) {
        struct stat st {};
        if (::fstat(fd, &st) != 0) return read_error();
        end = std::min(end, static_cast<std::uint64_t>(std::max<off_t>(st.st_size, 0)));
        if (begin >= end) return r;
        const std::uint64_t base = begin & ~static_cast<std::uint64_t>(page_size() - 1);
        const auto len = static_cast<std::size_t>(end - base);
        void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(base));
        if (p != MAP_FAILED) {
            const auto* map = static_cast<const char*>(p);
            {
                MappedGuard guard(map, len);
                populate(reinterpret_cast<std::uintptr_t>(map), reinterpret_cast<std::uintptr_t>(map) + len);
                on_bytes(std::string_view(map + (begin - base), static_cast<std::size_t>(end - begin)));
                r.pages_lost = guard.pages_lost();
            }
            ::munmap(p, len);
            r.bytes = static_cast<std::size_t>(end - begin);
            return r;
        }
    }
    while (begin < end) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - begin));
        const ssize_t n = pread_some(fd, buf.data(), want, static_cast<std::size_t>(begin));
        if (n < 0) return read_error();
        if (n == 0) break;  // the file is shorter now
        on_bytes(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        begin += static_cast<std::uint64_t>(n);
        r.bytes += static_cast<std::size_t>(n);
    }
    return r;
}

std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

ReadPathChooser::ReadPathChooser(ReadPath requested, bool mmap_possible)
    : requested_(mmap_possible ? requested : ReadPath::read), mmap_possible_(mmap_possible) {}

ReadPath ReadPathChooser::best_locked() const {
    const double r = samples_[0].mean(), m = samples_[1].mean();
    return r >= 0 && m >= 0 && m < r ? ReadPath::mmap : ReadPath::read;
}

ReadPath ReadPathChooser::path_for(std::size_t chunk) const {
    if (requested_ != ReadPath::automatic) return requested_;
    std::lock_guard lock(mu_);
    const bool calibrating = chunk < 2 * k_samples && !clear_locked();
    if (calibrating) return chunk % 2 == 0 ? ReadPath::read : ReadPath::mmap;
    const ReadPath best = best_locked();
    if (chunk < 2 * k_samples) return best;  // calibration ended early: no probe yet
    const std::size_t every = probe_every_locked();
    if (chunk % every != every - 1) return best;
    return best == ReadPath::read ? ReadPath::mmap : ReadPath::read;  // a probe of the other path
}

// Whether calibration can stop: each path has a sample besides its first, and BOTH samples of
// one path cost at least k_clear_ratio times the other path's mean (its first, cold sample left
// out), so that one outlier cannot end it; a third sample of the dearer path would cost more
// than it could tell, and later probes still revise the choice.
bool ReadPathChooser::clear_locked() const {
    if (samples_[0].later == 0 || samples_[1].later == 0) return false;
    const auto dearer_by_far = [](const Samples& d, const Samples& c) {
        return c.mean() > 0 && std::min(d.first, d.mean()) >= k_clear_ratio * c.mean();
    };
    return dearer_by_far(samples_[1], samples_[0]) || dearer_by_far(samples_[0], samples_[1]);
}

// The dearer the other path, the rarer its probes: each costs (ratio - 1) chunks' worth, so
// probing every (ratio - 1) / k_probe_budget chunks keeps them under that share of the time.
std::size_t ReadPathChooser::probe_every_locked() const {
    const double r = samples_[0].mean(), m = samples_[1].mean();
    if (r <= 0 || m <= 0) return k_probe_every;
    const double ratio = std::max(r, m) / std::min(r, m);
    const double every = (ratio - 1) / k_probe_budget;
    if (every < static_cast<double>(k_probe_every)) return k_probe_every;
    if (every > static_cast<double>(k_probe_rarest)) return k_probe_rarest;
    return static_cast<std::size_t>(std::lround(every));
}

void ReadPathChooser::report(ReadPath path, std::size_t bytes, std::chrono::nanoseconds cpu) {
    if (path == ReadPath::automatic || bytes == 0) return;
    const double per_byte = static_cast<double>(cpu.count()) / static_cast<double>(bytes);
    std::lock_guard lock(mu_);
    Samples& s = samples_[path == ReadPath::mmap ? 1 : 0];
    if (s.first < 0) {
        s.first = per_byte;
    } else {
        s.sum += per_byte;
        ++s.later;
    }
}

std::string ReadPathChooser::describe() const {
    std::lock_guard lock(mu_);
    if (requested_ != ReadPath::automatic)
        return std::string(read_path_name(requested_)) + (mmap_possible_ ? "" : " (the file cannot be mapped)");
    auto figure = [](double v) {
        if (v < 0) return std::string("-");
        char b[32];
        std::snprintf(b, sizeof b, "%.3f ns/B", v);
        return std::string(b);
    };
    return std::string(read_path_name(best_locked())) + " (auto: read " + figure(samples_[0].mean()) + ", mmap " +
           figure(samples_[1].mean()) + ")";
}

}  // namespace rp::util
