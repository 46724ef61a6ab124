// util::ordered_parallel_map and util::ChunkedFile: results in order whatever the threads, and
// every read path hands over exactly the file's bytes as runs of whole lines.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
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
std::string read_all(int fd, std::size_t chunk, ReadPath path, std::size_t buffer) {
    auto f = ChunkedFile::open(fd, chunk, path);
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
    ChunkBuffer buf(4096);
    std::string streamed;
    ASSERT_TRUE(::lseek(fd, 0, SEEK_SET) == 0);
    ASSERT_TRUE(rp::util::read_lines(fd, buf, [&](std::string_view l) { streamed.append(l); }).has_value());
    EXPECT_EQ(streamed, text);
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

}  // namespace
