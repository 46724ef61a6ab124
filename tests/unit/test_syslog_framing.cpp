// StreamFramer and frame_datagram: RFC 6587 octet counting and LF/NUL framing detected per frame,
// mixed on one stream, split at every byte boundary, limits (oversize frames dropped, garbage
// octet counts break the stream), end of stream, and datagrams.
#include "sources/syslog_framing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using rp::sources::FramingStats;
using rp::sources::StreamFramer;
using rp::sources::SyslogFramingLimits;

struct Outcome {
    std::string out;
    FramingStats stats;
    bool ok = true;
};

Outcome feed_split(std::string_view in, std::size_t chunk, SyslogFramingLimits limits = {}) {
    Outcome o;
    StreamFramer f(limits);
    for (std::size_t i = 0; i < in.size(); i += chunk) o.ok = f.feed(in.substr(i, chunk), o.out, o.stats) && o.ok;
    return o;
}

TEST(SyslogFraming, TableOfStreams) {
    struct Case {
        const char* name;
        std::string in;
        std::string want;
        std::uint64_t messages, oversize, malformed;
        bool ok;
    };
    const std::vector<Case> cases = {
        {"lf", "<13>a b\n<14>c\n", "<13>a b\n<14>c\n", 2, 0, 0, true},
        {"crlf and empty frames", "\n\r\n<13>a\r\n\n\n<14>b\n", "<13>a\n<14>b\n", 2, 0, 0, true},
        {"nul terminated", std::string("<13>a\0<14>b\0", 12), "<13>a\n<14>b\n", 2, 0, 0, true},
        {"octet counted", "5 <13>a7 <14>b c", "<13>a\n<14>b c\n", 2, 0, 0, true},
        {"octet counted with embedded newline", "9 <13>a\nb\nc", "<13>a b c\n", 1, 0, 0, true},
        {"octet counted with trailing newline", "7 <13>ab\n", "<13>ab\n", 1, 0, 0, true},
        {"mixed on one stream", "5 <13>a<14>b\n6 <15>cd", "<13>a\n<14>b\n<15>cd\n", 3, 0, 0, true},
        {"octet counted then lf separator", "5 <13>a\n5 <14>b\n", "<13>a\n<14>b\n", 2, 0, 0, true},
        {"oversize lf dropped, next kept", "<13>" + std::string(30, 'x') + "\n<14>ok\n", "<14>ok\n", 1, 1, 0, true},
        {"oversize counted skipped, next kept", "34 <13>" + std::string(30, 'x') + "7 <14>ok!", "<14>ok!\n", 1, 1, 0, true},
        {"exactly max is kept", "<13>" + std::string(16, 'x') + "\n", "<13>" + std::string(16, 'x') + "\n", 1, 0, 0, true},
        {"garbage count", "5 <13>a12x<14>b\n", "<13>a\n", 1, 0, 1, false},
        {"leading zero count", "05 <13>a", "", 0, 0, 1, false},
        {"count too long", "12345678901 x", "", 0, 0, 1, false},
    };
    SyslogFramingLimits limits;
    limits.max_frame_bytes = 20;
    for (const auto& c : cases) {
        for (std::size_t chunk : {c.in.size() + 1, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
            if (chunk == 0) continue;
            const Outcome o = feed_split(c.in, chunk, limits);
            EXPECT_EQ(o.out, c.want) << c.name << " chunk " << chunk;
            EXPECT_EQ(o.stats.messages, c.messages) << c.name << " chunk " << chunk;
            EXPECT_EQ(o.stats.oversize, c.oversize) << c.name << " chunk " << chunk;
            EXPECT_EQ(o.stats.malformed, c.malformed) << c.name << " chunk " << chunk;
            EXPECT_EQ(o.ok, c.ok) << c.name << " chunk " << chunk;
        }
    }
}

TEST(SyslogFraming, BrokenStreamIgnoresLaterInput) {
    StreamFramer f;
    std::string out;
    FramingStats st;
    EXPECT_FALSE(f.feed("abc\n1x", out, st));
    EXPECT_TRUE(f.broken());
    EXPECT_FALSE(f.feed("<13>more\n", out, st));
    EXPECT_EQ(out, "abc\n");
    EXPECT_EQ(f.buffered(), 0u);
}

TEST(SyslogFraming, OversizeLfFrameIsSkippedWithoutBuffering) {
    SyslogFramingLimits limits;
    limits.max_frame_bytes = 100;
    StreamFramer f(limits);
    std::string out;
    FramingStats st;
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(f.feed(std::string(64, 'y'), out, st));
        EXPECT_LE(f.buffered(), 100u);
    }
    EXPECT_TRUE(f.feed("tail\n<13>next\n", out, st));
    EXPECT_EQ(out, "<13>next\n");
    EXPECT_EQ(st.oversize, 1u);
}

TEST(SyslogFraming, FinishEmitsUnterminatedLfFrameAndDropsPartialCount) {
    {
        StreamFramer f;
        std::string out;
        FramingStats st;
        EXPECT_TRUE(f.feed("<13>a\n<14>last", out, st));
        EXPECT_FALSE(f.finish(out, st));
        EXPECT_EQ(out, "<13>a\n<14>last\n");
    }
    {
        StreamFramer f;
        std::string out;
        FramingStats st;
        EXPECT_TRUE(f.feed("10 <13>ab", out, st));
        EXPECT_TRUE(f.finish(out, st));
        EXPECT_EQ(out, "");
        EXPECT_EQ(st.truncated, 1u);
    }
}

TEST(SyslogFraming, Datagrams) {
    SyslogFramingLimits limits;
    limits.max_frame_bytes = 10;
    std::string out;
    FramingStats st;
    rp::sources::frame_datagram("<13>a\n", out, st, limits);
    rp::sources::frame_datagram(std::string("<13>b\0", 6), out, st, limits);
    rp::sources::frame_datagram("<13>c\nd\r\n", out, st, limits);
    rp::sources::frame_datagram("\n", out, st, limits);
    rp::sources::frame_datagram("", out, st, limits);
    rp::sources::frame_datagram("<13>toolong", out, st, limits);
    EXPECT_EQ(out, "<13>a\n<13>b\n<13>c d\n");
    EXPECT_EQ(st.messages, 3u);
    EXPECT_EQ(st.oversize, 1u);
}

}  // namespace
