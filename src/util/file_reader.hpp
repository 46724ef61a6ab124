// Reading files as runs of whole lines, fast: a stream (any descriptor) read into one aligned
// buffer, and a regular file read in chunks by several threads at once, each chunk either
// through read() into the thread's aligned buffer or through a shared mapping (mmap) whose pages
// are populated before and dropped after the chunk. Which of the two is faster depends on the
// host (on one virtual machine read() won by 2-3x, on another mmap did: docs/benchmarks.md), so
// ReadPathChooser decides by measuring chunks both ways, at the start and now and then after.
//
// What it is not: a parser. Bytes are handed over as they are; a line is what ends at '\n' (a
// last line without one counts too).
// Thread-safety: a ChunkedFile is read-only after open() and its read_chunk() may run on several
// threads at once, each with its own ChunkBuffer. ReadPathChooser is thread-safe.
// Security: the files are untrusted data but their bytes are not interpreted here; a line longer
// than the buffer grows it (a mapped file would hold that line anyway). A mapped file that
// shrinks loses pages under the reader: the access raises SIGBUS, which a process-wide handler
// turns into a zero page for the thread that reads that mapping (any other SIGBUS keeps its
// previous handling), and the read reports the loss so the caller throws away what it made of it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace rp::util {

enum class ReadPath { automatic, read, mmap };
std::optional<ReadPath> parse_read_path(std::string_view name);  // "auto", "read", "mmap"
std::string_view read_path_name(ReadPath p);

// A page-aligned buffer for read(); large ones are hinted for transparent huge pages.
class ChunkBuffer {
public:
    explicit ChunkBuffer(std::size_t size);
    ~ChunkBuffer();
    ChunkBuffer(const ChunkBuffer&) = delete;
    ChunkBuffer& operator=(const ChunkBuffer&) = delete;
    char* data() { return data_; }
    std::size_t size() const { return size_; }
    // Twice the size, keeping the first `keep` bytes.
    void grow(std::size_t keep);

private:
    char* data_ = nullptr;
    std::size_t size_ = 0;
};

using LinesFn = std::function<void(std::string_view lines)>;

// Reads `fd` to its end, calling on_lines with runs of whole lines (a final line without '\n'
// at the end). Error: the read's errno text.
core::Status read_lines(int fd, ChunkBuffer& buf, const LinesFn& on_lines);

// A regular file cut into chunks of about chunk_bytes: chunk i holds the lines that begin in
// [begin(i), begin(i + 1)), so no line is split and every path reads the same bytes. The first
// lead.chunks chunks may be shorter, lead.bytes each: ReadPathChooser's calibration samples
// both paths on them, and a sample of the dearer path costs less the shorter it is. The file is
// read as it was at open(): up to the size it had then.
struct ChunkLead {
    std::size_t chunks = 0, bytes = 0;  // bytes: 1 to the chunk size, else no lead
};
class ChunkedFile {
public:
    using Lead = ChunkLead;
    // `fd` is borrowed and must stay open. nullopt when it is not a regular, non-empty file
    // (then read it as a stream). Maps the file unless `path` is ReadPath::read.
    static std::optional<ChunkedFile> open(int fd, std::size_t chunk_bytes, ReadPath path, Lead lead = {});
    ChunkedFile(ChunkedFile&& o) noexcept;
    ChunkedFile& operator=(ChunkedFile&&) = delete;
    ~ChunkedFile();
    std::size_t size() const { return size_; }
    std::size_t chunks() const;
    std::size_t begin(std::size_t i) const;  // chunk i's first byte (size() from chunks() on)
    bool mapped() const { return map_ != nullptr; }
    // Calls on_lines with consecutive runs of whole lines that together are chunk i, read
    // through `path` (read, or mmap when mapped(); automatic is not a path). With read the runs
    // are in `buf`; with mmap chunk i is one run, whose pages are dropped after on_lines returns.
    // Error: the read's errno text (the file can no longer be read), or, mmap, "the file shrank
    // while it was read" (the run held zeros for the lost bytes).
    core::Status read_chunk(std::size_t i, ReadPath path, ChunkBuffer& buf, const LinesFn& on_lines) const;

private:
    ChunkedFile(int fd, std::size_t size, std::size_t chunk, Lead lead)
        : fd_(fd), size_(size), chunk_(chunk), lead_(lead) {}
    core::Status read_chunk_read(std::size_t begin, std::size_t end, ChunkBuffer& buf, const LinesFn& on_lines) const;
    core::Status read_chunk_mapped(std::size_t begin, std::size_t end, const LinesFn& on_lines) const;
    int fd_;
    std::size_t size_, chunk_;
    Lead lead_;
    const char* map_ = nullptr;
};

// What read_range handed over.
struct RangeRead {
    std::size_t bytes = 0;    // handed to on_bytes, from `begin` on
    bool pages_lost = false;  // mmap: the file shrank while mapped; the run held zeros where its
                              // bytes were. The caller discards what it made of the runs.
};

// The bytes of [begin, end) of the regular file `fd` as it is now (a file that has become
// shorter gives what it still has), handed to on_bytes in runs that are not cut at lines, through
// `path`: read() into `buf` (runs of at most buf.size()), or mmap: the range mapped and populated,
// one run. A range that cannot be mapped is read. The file source's backlog goes through here, so
// it reads the way ReadPathChooser measured to be cheaper, like `scan`. Error: errno text.
// REQUIRES: path is read or mmap.
core::Result<RangeRead> read_range(int fd, std::uint64_t begin, std::uint64_t end, ReadPath path, ChunkBuffer& buf,
                                   const LinesFn& on_bytes);

// The CPU time the calling thread has used (its own work, not the waits of a busy host).
std::chrono::nanoseconds thread_cpu_time();

// Picks the read path for each chunk. read or mmap as requested: always that one. automatic:
// the first 2 * k_samples chunks alternate (read first), each reporting the CPU time it took
// (of the reading thread: the faults and copies count, time lost to other processes does not),
// or fewer when both samples of one path (once each path has two) cost k_clear_ratio times the
// other's (with one thread; several take the first chunks before any sample is in);
// later chunks take the path whose samples cost less per byte on average, and now and then a
// chunk takes the other path (every k_probe_every-th chunk at most, rarer the dearer that path
// is, so the probes cost ~k_probe_budget of the time), so a choice that turns dearer later in
// the file is revised. The average, not the best sample: on some hosts a path is cheap on most chunks
// and several times dearer on a quarter of them (mmap under a nested hypervisor,
// docs/benchmarks.md), which only the mean counts. Each path's first sample (cold caches, first
// use of the scratch and the buffer) is left out once it has another. Until both paths have a
// sample, read.
class ReadPathChooser {
public:
    static constexpr std::size_t k_samples = 3;
    static constexpr std::size_t k_probe_every = 16;  // at most this often
    static constexpr std::size_t k_probe_rarest = 1024;  // at least this often
    static constexpr double k_probe_budget = 0.02;     // probes cost at most ~2% more than the best path
    static constexpr double k_clear_ratio = 2.0;       // calibration ends early at this ratio
    explicit ReadPathChooser(ReadPath requested, bool mmap_possible = true);
    ReadPath path_for(std::size_t chunk) const;
    void report(ReadPath path, std::size_t bytes, std::chrono::nanoseconds cpu);
    // The path the chooser now takes, e.g. "read", and for automatic why: "read (auto: read
    // 0.21 ns/B, mmap 0.48 ns/B)", each the mean of that path's samples.
    std::string describe() const;

private:
    struct Samples {
        double first = -1;     // ns per byte of the first sample; -1: none yet
        double sum = 0;        // of the later samples
        std::size_t later = 0;
        double mean() const { return later ? sum / static_cast<double>(later) : first; }
    };
    ReadPath best_locked() const;
    bool clear_locked() const;
    std::size_t probe_every_locked() const;
    ReadPath requested_;
    bool mmap_possible_;
    mutable std::mutex mu_;
    Samples samples_[2];  // read, mmap
};

}  // namespace rp::util
