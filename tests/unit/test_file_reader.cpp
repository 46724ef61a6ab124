// util::ordered_parallel_map and util::ChunkedFile: results in order whatever the threads, and
// every read path hands over exactly the file's bytes as runs of whole lines.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "util/file_reader.hpp"
#include "util/parallel_map.hpp"

namespace {

using rp::util::ChunkBuffer;
using rp::util::ChunkedFile;
using rp::util::ReadPath;

TEST(ParallelMap, ResultsArriveInOrderOnAnyNumberOfThreads) {
    for (unsigned threads : {1u, 2u, 3u, 8u}) {
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{200}}) {
            int caller_local = 0;
            std::vector<std::size_t> got;
            rp::util::ordered_parallel_map<std::size_t>(
                n, rp::util::ParallelOptions{threads, 2}, caller_local, [] { return std::make_unique<int>(0); },
                [](std::size_t i, int&) { return i * i; },
                [&](std::size_t i, std::size_t&& r) {
                    EXPECT_EQ(r, i * i);
                    got.push_back(i);
                });
            ASSERT_EQ(got.size(), n) << threads;
            for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(got[i], i);
        }
    }
}

TEST(ParallelMap, SparePoolHandsBackWhatWasGivenWithItsCapacity) {
    rp::util::SparePool<std::string> pool;
    EXPECT_TRUE(pool.take().empty());  // nothing given yet: a new one
    std::string s(1000, 'x');
    s.clear();
    const auto cap = s.capacity();
    pool.give(std::move(s));
    const auto again = pool.take();
    EXPECT_TRUE(again.empty());
    EXPECT_EQ(again.capacity(), cap);
    EXPECT_TRUE(pool.take().empty());
}

TEST(ParallelMap, LineCutsEndAtNewlines) {
    const std::string text = "a\nbb\n\nccc\ndddd";
    const auto cuts = rp::util::line_cuts(text, 2);
    ASSERT_EQ(cuts.front(), 0u);
    ASSERT_EQ(cuts.back(), text.size());
    for (std::size_t i = 1; i + 1 < cuts.size(); ++i) EXPECT_EQ(text[cuts[i] - 1], '\n');
    EXPECT_EQ(rp::util::line_cuts("", 8), std::vector<std::size_t>{0});
}

// Every chunk through `path`: each run must end at a line end (or the file's end), and the runs
// of all chunks in order must be the file.
std::string read_all(int fd, std::size_t chunk, ReadPath path, std::size_t buffer, rp::util::ChunkLead lead = {}) {
    auto f = ChunkedFile::open(fd, chunk, path, lead);
    EXPECT_TRUE(f.has_value());
    std::string out;
    ChunkBuffer buf(buffer);
    for (std::size_t i = 0; f && i < f->chunks(); ++i) {
        auto st = f->read_chunk(i, path, buf, [&](std::string_view lines) {
            EXPECT_FALSE(lines.empty());
            out.append(lines);
            if (out.size() < f->size()) {
                EXPECT_EQ(lines.back(), '\n');
            }
        });
        EXPECT_TRUE(st.has_value());
    }
    return out;
}

TEST(FileReader, EveryPathAndChunkSizeReadsTheSameLines) {
    const auto path = std::filesystem::temp_directory_path() / ("rp_file_reader_" + std::to_string(::getpid()));
    std::string text;
    for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i) + std::string(i % 97, 'x') + "\n";
    text += std::string(20000, 'L') + "\n\n\nlast line without newline";  // a line longer than the buffer
    std::ofstream(path, std::ios::binary) << text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{100}, std::size_t{4096}, std::size_t{65536}, text.size() + 7}) {
        EXPECT_EQ(read_all(fd, chunk, ReadPath::read, 4096), text) << chunk;
        EXPECT_EQ(read_all(fd, chunk, ReadPath::mmap, 4096), text) << chunk;
    }
    // Shorter lead chunks (the read-path calibration's), some of them past the end, many, or
    // longer than a chunk (ignored).
    for (rp::util::ChunkLead lead : {rp::util::ChunkLead{3, 50}, {6, 4096}, {1000000, 1}, {2, 1 << 20}, {6, 65536}})
        for (auto how : {ReadPath::read, ReadPath::mmap})
            EXPECT_EQ(read_all(fd, 65536, how, 4096, lead), text) << lead.chunks << " x " << lead.bytes;
    ChunkBuffer buf(4096);
    std::string streamed;
    ASSERT_TRUE(::lseek(fd, 0, SEEK_SET) == 0);
    ASSERT_TRUE(rp::util::read_lines(fd, buf, [&](std::string_view l) { streamed.append(l); }).has_value());
    EXPECT_EQ(streamed, text);
    ::close(fd);
    std::filesystem::remove(path);
}

TEST(FileReader, LeadChunksAreShorterAndTheRestKeepTheirSize) {
    const auto path = std::filesystem::temp_directory_path() / ("rp_file_lead_" + std::to_string(::getpid()));
    std::ofstream(path, std::ios::binary) << std::string(10'000, 'x');
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto f = ChunkedFile::open(fd, 4096, ReadPath::read, {3, 1000});
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->chunks(), 3u + 2u);  // 3 x 1000, then 4096 and the last 2904
    for (std::size_t i = 0; i <= 5; ++i)
        EXPECT_EQ(f->begin(i), (std::vector<std::size_t>{0, 1000, 2000, 3000, 7096, 10'000}[i])) << i;
    EXPECT_EQ(f->begin(6), 10'000u);  // past the last chunk: the end
    EXPECT_EQ(f->begin(std::size_t{1} << 60), 10'000u);
    auto all_lead = ChunkedFile::open(fd, 4096, ReadPath::read, {20, 1000});  // the lead covers the file
    ASSERT_TRUE(all_lead.has_value());
    EXPECT_EQ(all_lead->chunks(), 10u);
    EXPECT_EQ(all_lead->begin(10), 10'000u);
    auto none = ChunkedFile::open(fd, 4096, ReadPath::read, {3, 5000});  // longer than a chunk: no lead
    ASSERT_TRUE(none.has_value());
    EXPECT_EQ(none->chunks(), 3u);
    auto same = ChunkedFile::open(fd, 4096, ReadPath::read, {2, 4096});  // as long as a chunk
    ASSERT_TRUE(same.has_value());
    EXPECT_EQ(same->chunks(), 3u);
    auto no_count = ChunkedFile::open(fd, 4096, ReadPath::read, {0, 1000});
    ASSERT_TRUE(no_count.has_value());
    EXPECT_EQ(no_count->chunks(), 3u);
    // Sizes beyond the file (or any size_t) mean one chunk, and one lead chunk of 10 bytes
    // leaves the rest to the second.
    const std::size_t huge = ~std::size_t{0};
    auto big = ChunkedFile::open(fd, huge, ReadPath::read, {1, 10});
    ASSERT_TRUE(big.has_value());
    EXPECT_EQ(big->chunks(), 2u);
    EXPECT_EQ(big->begin(1), 10u);
    auto big_lead = ChunkedFile::open(fd, huge, ReadPath::read, {huge, huge});
    ASSERT_TRUE(big_lead.has_value());
    EXPECT_EQ(big_lead->chunks(), 1u);
    ::close(fd);
    std::filesystem::remove(path);
}

TEST(FileReader, ChooserTakesTheCheaperPathAfterCalibration) {
    rp::util::ReadPathChooser c(ReadPath::automatic);
    EXPECT_EQ(c.path_for(0), ReadPath::read);
    EXPECT_EQ(c.path_for(1), ReadPath::mmap);
    c.report(ReadPath::read, 1000, std::chrono::nanoseconds(500));
    c.report(ReadPath::mmap, 1000, std::chrono::nanoseconds(300));
    EXPECT_EQ(c.path_for(100), ReadPath::mmap);
    EXPECT_EQ(rp::util::ReadPathChooser(ReadPath::read).path_for(1), ReadPath::read);
    EXPECT_EQ(rp::util::ReadPathChooser(ReadPath::automatic, false).path_for(1), ReadPath::read);
    EXPECT_EQ(rp::util::parse_read_path("mmap"), ReadPath::mmap);
    EXPECT_FALSE(rp::util::parse_read_path("MMAP").has_value());
}

// Seen on a host under a nested hypervisor: mmap cost 0.19 ns/B on most chunks and 2-4x that
// on a quarter of them; the best sample said mmap, the whole file read 20% faster with read().
// The mean decides, each path's first (cold) sample left out, and later probes revise it; the
// probes are rarer the dearer the other path.
TEST(FileReader, ChooserGoesByTheMeanAndRevisesItsChoice) {
    using rp::util::ReadPathChooser;
    using std::chrono::nanoseconds;
    ReadPathChooser c(ReadPath::automatic);
    c.report(ReadPath::read, 1000, nanoseconds(900));  // cold: left out
    c.report(ReadPath::mmap, 1000, nanoseconds(600));  // cold: left out
    for (int i = 0; i < 2; ++i) {
        c.report(ReadPath::read, 1000, nanoseconds(250));
        c.report(ReadPath::mmap, 1000, nanoseconds(i == 0 ? 190 : 700));  // cheap, then an outlier
    }
    EXPECT_EQ(c.path_for(6), ReadPath::read) << "0.445 ns/B on average against 0.25";
    EXPECT_EQ(c.describe(), "read (auto: read 0.250 ns/B, mmap 0.445 ns/B)");
    // mmap 1.78x dearer: a probe every 0.78 / 2% = 39 chunks, not every 16.
    EXPECT_EQ(c.path_for(ReadPathChooser::k_probe_every - 1), ReadPath::read);
    EXPECT_EQ(c.path_for(38), ReadPath::mmap) << "a probe of the other path";
    EXPECT_EQ(c.path_for(39), ReadPath::read);
    // read turns dearer later in the file: the probes and the chunks read tell, and it switches
    // (read 0.5125 ns/B on average, mmap 0.26125: a probe of read every 48 chunks).
    for (int i = 0; i < 6; ++i) {
        c.report(ReadPath::read, 1000, nanoseconds(600));
        c.report(ReadPath::mmap, 1000, nanoseconds(200));
    }
    EXPECT_EQ(c.path_for(6), ReadPath::mmap);
    EXPECT_EQ(c.path_for(47), ReadPath::read);
    EXPECT_EQ(c.path_for(48), ReadPath::mmap);
    // A close call: probes every k_probe_every chunks, no more often.
    ReadPathChooser close(ReadPath::automatic);
    for (int i = 0; i < 2; ++i) {
        close.report(ReadPath::read, 1000, nanoseconds(260));
        close.report(ReadPath::mmap, 1000, nanoseconds(250));
    }
    EXPECT_EQ(close.path_for(ReadPathChooser::k_probe_every - 2), ReadPath::mmap);
    EXPECT_EQ(close.path_for(ReadPathChooser::k_probe_every - 1), ReadPath::read);
    // A path forced, or no mapping: never a probe.
    EXPECT_EQ(ReadPathChooser(ReadPath::mmap).path_for(38), ReadPath::mmap);
    EXPECT_EQ(ReadPathChooser(ReadPath::automatic, false).path_for(38), ReadPath::read);
}

// Calibration stops after each path's second sample when both samples of one path cost at
// least twice the other's mean (on the nested-hypervisor host a third mapped chunk cost ~1.5%
// of a one-thread scan); a closer call, or one outlier, alternates to the end.
TEST(FileReader, ChooserEndsCalibrationEarlyOnAClearRatio) {
    using rp::util::ReadPathChooser;
    using std::chrono::nanoseconds;
    ReadPathChooser clear(ReadPath::automatic), close(ReadPath::automatic), outlier(ReadPath::automatic);
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(clear.path_for(2 * i), ReadPath::read);
        EXPECT_EQ(clear.path_for(2 * i + 1), ReadPath::mmap);
        clear.report(ReadPath::read, 1000, nanoseconds(i == 0 ? 400 : 290));  // cold, then 290
        clear.report(ReadPath::mmap, 1000, nanoseconds(i == 0 ? 900 : 800));  // 2.76x dearer at best
        close.report(ReadPath::read, 1000, nanoseconds(290));
        close.report(ReadPath::mmap, 1000, nanoseconds(500));  // 1.72x
        outlier.report(ReadPath::read, 1000, nanoseconds(290));
        outlier.report(ReadPath::mmap, 1000, nanoseconds(i == 0 ? 300 : 800));  // one dear sample
    }
    EXPECT_EQ(clear.path_for(4), ReadPath::read);
    EXPECT_EQ(clear.path_for(5), ReadPath::read) << "no third mapped chunk";
    EXPECT_EQ(close.path_for(5), ReadPath::mmap) << "calibration goes on";
    EXPECT_EQ(outlier.path_for(5), ReadPath::mmap) << "one outlier ends nothing";
    // With only first (cold) samples, nothing is clear yet, however far apart.
    ReadPathChooser cold(ReadPath::automatic);
    cold.report(ReadPath::read, 1000, nanoseconds(100));
    cold.report(ReadPath::mmap, 1000, nanoseconds(900));
    EXPECT_EQ(cold.path_for(3), ReadPath::mmap);
}

// A file of `text` in the temporary directory, open for reading; removed at the end.
class TempFile {
public:
    explicit TempFile(const std::string& text, const char* tag)
        : path_(std::filesystem::temp_directory_path() / ("rp_range_" + std::string(tag) + std::to_string(::getpid()))) {
        std::ofstream(path_, std::ios::binary) << text;
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        EXPECT_GE(fd_, 0);
    }
    ~TempFile() {
        ::close(fd_);
        std::filesystem::remove(path_);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    int fd() const { return fd_; }
    void shrink_to(off_t size) const { EXPECT_EQ(::truncate(path_.c_str(), size), 0); }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

struct RangeOut {
    std::string bytes;
    rp::util::RangeRead r;
};

// read_range over [begin, end), its runs joined; `during` runs after the first run arrived.
RangeOut read_range_all(int fd, std::uint64_t begin, std::uint64_t end, ReadPath path,
                        const std::function<void()>& during = {}) {
    RangeOut out;
    ChunkBuffer buf(4096);
    bool first = true;
    auto r = rp::util::read_range(fd, begin, end, path, buf, [&](std::string_view run) {
        if (first && during) during();
        first = false;
        out.bytes.append(run.data(), run.size());  // reads every byte, lost pages too
    });
    EXPECT_TRUE(r.has_value());
    if (r) out.r = *r;
    EXPECT_EQ(out.r.bytes, out.bytes.size());
    return out;
}

std::string sample_log() {
    std::string text;
    for (int i = 0; i < 700; ++i) text += "Dec  5 12:00:00 host imap-login: Login: user=<u" + std::to_string(i) + ">\n";
    return text + "a last line without newline";
}

// The file source's backlog reads through read_range: read() and mmap must hand over the same
// bytes for any range, a last line without '\n', a file shorter than asked, and an empty file.
TEST(FileReader, ReadRangeGivesTheSameBytesThroughEitherPath) {
    const std::string text = sample_log();
    TempFile f(text, "same");
    const std::uint64_t n = text.size();
    for (auto [b, e] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
             {0, n}, {3, n}, {4095, 9000}, {4096, 8192}, {n - 5, n}, {0, n + 100}, {n, n + 10}}) {
        const auto want = text.substr(b, std::min(e, n) - b);
        EXPECT_EQ(read_range_all(f.fd(), b, e, ReadPath::read).bytes, want) << b << ".." << e;
        EXPECT_EQ(read_range_all(f.fd(), b, e, ReadPath::mmap).bytes, want) << b << ".." << e;
    }
    TempFile empty("", "empty");
    for (auto path : {ReadPath::read, ReadPath::mmap}) {
        const auto got = read_range_all(empty.fd(), 0, 4096, path);
        EXPECT_EQ(got.bytes, "");
        EXPECT_FALSE(got.r.pages_lost);
    }
}

// A file that shrinks while it is read: read() gives what is left; mmap reports the lost pages
// (which read as zeros) instead of dying of SIGBUS, and a second read gives what is left. A
// reader that drops what it made of a lost read (FileTailSource does) ends with the same bytes.
TEST(FileReader, ReadRangeOfAFileThatShrinksWhileReadEndsWithTheSameBytes) {
    const std::string text = sample_log();
    ASSERT_GT(text.size(), 5 * 4096u);
    const off_t keep = 4096 + 100;
    {
        TempFile f(text, "shrink_read");
        const auto got = read_range_all(f.fd(), 0, text.size(), ReadPath::read, [&] { f.shrink_to(keep); });
        EXPECT_FALSE(got.r.pages_lost);
        EXPECT_EQ(got.bytes, text.substr(0, keep));
    }
    {
        TempFile f(text, "shrink_mmap");
        const auto got = read_range_all(f.fd(), 0, text.size(), ReadPath::mmap, [&] { f.shrink_to(keep); });
        EXPECT_TRUE(got.r.pages_lost);
        EXPECT_EQ(got.bytes.substr(0, keep), text.substr(0, keep));
        EXPECT_EQ(read_range_all(f.fd(), 0, text.size(), ReadPath::mmap).bytes, text.substr(0, keep));
    }
    {
        TempFile f(text, "chunk_mmap");  // scan: an error, no crash
        auto chunked = ChunkedFile::open(f.fd(), 1 << 20, ReadPath::mmap);
        ASSERT_TRUE(chunked && chunked->mapped());
        ChunkBuffer buf(4096);
        std::size_t sum = 0;
        auto st = chunked->read_chunk(0, ReadPath::mmap, buf, [&](std::string_view lines) {
            f.shrink_to(keep);
            for (char c : lines) sum += static_cast<unsigned char>(c);
        });
        ASSERT_FALSE(st.has_value());
        EXPECT_EQ(st.error().message, "the file shrank while it was read");
        EXPECT_GT(sum, 0u);
    }
}

// A SIGBUS sent with kill() while a mapping is read is no lost page: it is neither taken for one
// (its si_addr is the sender's pid and uid) nor dropped, but handled as before the reader (the
// default action: the process dies).
TEST(FileReaderDeathTest, SigbusSentWhileMappedIsNotTakenForALostPage) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const std::string text = sample_log();
    TempFile f(text, "sent_sigbus");
    EXPECT_DEATH(
        {
            auto chunked = ChunkedFile::open(f.fd(), 1 << 20, ReadPath::mmap);
            ChunkBuffer buf(4096);
            if (chunked) (void)chunked->read_chunk(0, ReadPath::mmap, buf, [](std::string_view) { ::raise(SIGBUS); });
            std::fprintf(stderr, "survived\n");
            std::_Exit(0);
        },
        "");
}

}  // namespace
