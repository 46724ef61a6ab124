// The drop-in protocols' pure codecs (drac_codec, whoson_codec, relay_ctrl_codec): messages
// built by hand from each protocol's definition, table-driven, including hostile input.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sources/drac_codec.hpp"
#include "sources/relay_ctrl_codec.hpp"
#include "sources/whoson_codec.hpp"

namespace rp::sources {
namespace {

std::string be32(std::uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string words(std::initializer_list<std::uint32_t> ws) {
    std::string s;
    for (auto w : ws) s += be32(w);
    return s;
}

// CALL header with AUTH_NONE cred and verf.
std::string call(std::uint32_t xid, std::uint32_t prog, std::uint32_t vers, std::uint32_t proc,
                 std::uint32_t rpcvers = 2) {
    return words({xid, 0, rpcvers, prog, vers, proc, 0, 0, 0, 0});
}

std::uint32_t word(const std::string& s, std::size_t i) {
    return (std::uint32_t(std::uint8_t(s[4 * i])) << 24) | (std::uint32_t(std::uint8_t(s[4 * i + 1])) << 16) |
           (std::uint32_t(std::uint8_t(s[4 * i + 2])) << 8) | std::uint32_t(std::uint8_t(s[4 * i + 3]));
}

// ---- DRAC -------------------------------------------------------------------------------------

TEST(DracCodec, Version1AddCarriesTheAddressInNetworkOrder) {
    const auto r = decode_drac_request(call(7, k_drac_program, 1, 1) + be32(0xc0000207));
    ASSERT_EQ(r.kind, DracRequest::Kind::add);
    EXPECT_EQ(r.xid, 7u);
    EXPECT_EQ(r.version, 1u);
    EXPECT_EQ(r.address->to_string(), "192.0.2.7");
    EXPECT_FALSE(r.malformed);
}

TEST(DracCodec, Version2AddDecodesSignExtendedChars) {
    // 2001:db8::ff80 as rpcgen's xdr_char sends it: 0xff and 0x80 become negative ints.
    const std::uint8_t bytes[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x80};
    std::string args;
    for (auto b : bytes) args += be32(static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::int8_t>(b))));
    const auto r = decode_drac_request(call(9, k_drac_program, 2, 1) + args);
    ASSERT_EQ(r.kind, DracRequest::Kind::add);
    EXPECT_EQ(r.address->to_string(), "2001:db8::ff80");
    // A v4-mapped address becomes IPv4; plain 0..255 values are accepted too.
    std::string mapped;
    for (int i = 0; i < 10; ++i) mapped += be32(0);
    mapped += words({0xff, 0xff, 192, 0, 2, 9});
    EXPECT_EQ(decode_drac_request(call(9, k_drac_program, 2, 1) + mapped).address->to_string(), "192.0.2.9");
}

TEST(DracCodec, AnswersRpcLevelErrorsAndNull) {
    struct Row {
        std::string msg;
        std::vector<std::uint32_t> reply;  // expected words
        bool malformed;
    };
    const std::string v2_bad = [] {
        std::string a;
        for (int i = 0; i < 15; ++i) a += be32(0);
        return a + be32(256);  // not a char
    }();
    const Row rows[] = {
        {call(1, k_drac_program, 1, 0), {1, 1, 0, 0, 0, 0}, false},                 // NULL: empty success
        {call(2, 100003, 1, 1), {2, 1, 0, 0, 0, 1}, true},                          // PROG_UNAVAIL
        {call(3, k_drac_program, 3, 1), {3, 1, 0, 0, 0, 2, 1, 2}, true},            // PROG_MISMATCH 1..2
        {call(4, k_drac_program, 1, 2), {4, 1, 0, 0, 0, 3}, true},                  // PROC_UNAVAIL
        {call(5, k_drac_program, 1, 1), {5, 1, 0, 0, 0, 4}, true},                  // no argument: GARBAGE_ARGS
        {call(6, k_drac_program, 2, 1) + v2_bad, {6, 1, 0, 0, 0, 4}, true},         // GARBAGE_ARGS
        {call(8, k_drac_program, 1, 1, 3), {8, 1, 1, 0, 2, 2}, true},               // RPC_MISMATCH
    };
    for (const auto& row : rows) {
        const auto r = decode_drac_request(row.msg);
        ASSERT_EQ(r.kind, DracRequest::Kind::answer) << word(row.msg, 0);
        EXPECT_EQ(r.malformed, row.malformed) << word(row.msg, 0);
        ASSERT_EQ(r.reply.size(), 4 * row.reply.size()) << word(row.msg, 0);
        for (std::size_t i = 0; i < row.reply.size(); ++i) EXPECT_EQ(word(r.reply, i), row.reply[i]) << word(row.msg, 0);
    }
}

TEST(DracCodec, DropsWhatIsNotACall) {
    const std::string rows[] = {
        "",
        "abc",
        words({1, 1, 0, 0, 0, 0}),                             // a reply
        words({1, 0, 2, k_drac_program, 1}),                   // truncated header
        words({1, 0, 2, k_drac_program, 1, 1, 0, 401}),        // auth body over 400 bytes
        words({1, 0, 2, k_drac_program, 1, 1, 0, 8, 0}),       // auth body longer than the message
        words({1, 0, 2, k_drac_program, 1, 1, 0, 0xfffffff0}),  // length that would wrap
    };
    for (const auto& m : rows) {
        const auto r = decode_drac_request(m);
        EXPECT_EQ(r.kind, DracRequest::Kind::drop) << m.size();
        EXPECT_TRUE(r.malformed);
        EXPECT_TRUE(r.reply.empty());
    }
}

TEST(DracCodec, SkipsCredentialsAndEncodesAddstat) {
    // AUTH_SYS credentials (flavor 1) of 5 bytes, padded to 8.
    const std::string m = words({11, 0, 2, k_drac_program, 1, 1, 1, 5}) + std::string("abcde\0\0\0", 8) +
                          words({0, 0}) + be32(0x7f000005);
    const auto r = decode_drac_request(m);
    ASSERT_EQ(r.kind, DracRequest::Kind::add);
    EXPECT_EQ(r.address->to_string(), "127.0.0.5");
    EXPECT_EQ(encode_drac_reply(11, AddStat::perm), words({11, 1, 0, 0, 0, 0, 1}));
    EXPECT_EQ(encode_drac_reply(12, AddStat::success), words({12, 1, 0, 0, 0, 0, 0}));
}

TEST(DracCodec, RecordMarkingReassemblesFragmentsFedInPieces) {
    const std::string a = "first-", b = "record";
    const std::string stream = be32(static_cast<std::uint32_t>(a.size())) + a + be32(0x80000000u | static_cast<std::uint32_t>(b.size())) + b +
                               frame_record("second");
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 100u}) {
        RecordReader rr;
        std::vector<std::string> got;
        for (std::size_t i = 0; i < stream.size(); i += chunk) {
            rr.feed(std::string_view(stream).substr(i, chunk));
            std::string rec;
            while (rr.next(rec) == RecordReader::State::record) got.push_back(rec);
        }
        EXPECT_EQ(got, (std::vector<std::string>{"first-record", "second"})) << chunk;
    }
    RecordReader small(16);
    small.feed(be32(10) + "0123456789" + be32(0x80000000u | 10));
    std::string rec;
    EXPECT_EQ(small.next(rec), RecordReader::State::error);  // 20 bytes > 16
    small.feed(frame_record("x"));
    EXPECT_EQ(small.next(rec), RecordReader::State::error);  // stays failed
}

TEST(DracCodec, RpcbindCallsAndReplies) {
    const auto c = encode_rpcb_call(5, RpcbProc::set, k_drac_program, 2, "udp", "0.0.0.0.3.232", "x");
    EXPECT_EQ(c.substr(0, 48), words({5, 0, 2, 100000, 4, 1, 0, 0, 0, 0, k_drac_program, 2}));
    EXPECT_EQ(c.substr(48), be32(3) + std::string("udp\0", 4) + be32(13) + "0.0.0.0.3.232" + std::string(3, '\0') +
                                be32(1) + std::string("x\0\0\0", 4));
    EXPECT_TRUE(*parse_rpcb_reply(words({5, 1, 0, 0, 0, 0, 1}), 5));
    EXPECT_FALSE(*parse_rpcb_reply(words({5, 1, 0, 0, 0, 0, 0}), 5));
    EXPECT_FALSE(parse_rpcb_reply(words({6, 1, 0, 0, 0, 0, 1}), 5));  // another xid
    EXPECT_FALSE(parse_rpcb_reply(words({5, 1, 1, 1, 1}), 5));        // denied
    EXPECT_FALSE(parse_rpcb_reply(words({5, 1, 0, 0, 0, 0}), 5));     // short
    EXPECT_EQ(universal_address(*core::Address::parse("127.0.0.1"), 1000), "127.0.0.1.3.232");
    EXPECT_EQ(universal_address(*core::Address::parse("::"), 65535), "::.255.255");
}

TEST(DracCodec, DracdAllowLines) {
    std::vector<std::string> skipped;
    const auto nets = parse_dracd_allow(
        "# trusted POP servers\n"
        "255.255.255.0\t198.51.100.0\n"
        "  255.255.255.255 127.0.0.1  # loopback\r\n"
        "\n"
        "255.0.255.0 10.0.0.0\n"        // non-contiguous mask
        "255.255.255.0 192.0.2.7\n"     // host bits: never matches in rpc.dracd
        "198.51.100.0\n"                // one field
        "255.255.0.0 2001:db8::\n",     // not IPv4
        skipped);
    ASSERT_EQ(nets.size(), 2u);
    EXPECT_EQ(nets[0].to_string(), "198.51.100.0/24");
    EXPECT_EQ(nets[1].to_string(), "127.0.0.1");
    ASSERT_EQ(skipped.size(), 4u);
    EXPECT_EQ(skipped[0].substr(0, 7), "line 5:");
    EXPECT_EQ(parse_dracd_allow("0.0.0.0 0.0.0.0\n", skipped).front().to_string(), "0.0.0.0/0");
}

// ---- whoson -----------------------------------------------------------------------------------

TEST(WhosonCodec, Requests) {
    using K = WhosonRequest::Kind;
    struct Row {
        const char* line;
        K kind;
        const char* ip;
        const char* name;
    };
    const Row rows[] = {
        {"LOGIN 192.0.2.7 alice", K::login, "192.0.2.7", "alice"},
        {"login 2001:db8::1  bob smith ", K::login, "2001:db8::1", "bob smith"},
        {"LOGOUT 192.0.2.7", K::logout, "192.0.2.7", ""},
        {"Query 192.0.2.7", K::query, "192.0.2.7", ""},
        {"QUIT", K::quit, "0.0.0.0", ""},
        {"LOGIN 192.0.2.7", K::bad, "0.0.0.0", ""},          // no name
        {"LOGIN 192.0.2.777 a", K::bad, "0.0.0.0", ""},      // bad address
        {"QUERY 192.0.2.7 extra", K::bad, "0.0.0.0", ""},
        {"LIST", K::bad, "0.0.0.0", ""},
        {"", K::bad, "0.0.0.0", ""},
        {"LOGIN 192.0.2.7 a\x01b", K::bad, "0.0.0.0", ""},   // control character in the name
    };
    for (const auto& row : rows) {
        const auto r = parse_whoson_request(row.line);
        EXPECT_EQ(r.kind, row.kind) << row.line;
        if (r.kind == K::bad) {
            EXPECT_FALSE(r.error.empty()) << row.line;
            continue;
        }
        EXPECT_EQ(r.ip.to_string(), row.ip) << row.line;
        EXPECT_EQ(r.name, row.name) << row.line;
    }
    EXPECT_EQ(parse_whoson_request("LOGIN 192.0.2.7 " + std::string(256, 'a')).kind, K::bad);
}

TEST(WhosonCodec, FramerNeedsTheEmptyLineAndCopesWithAnySplit) {
    const std::string stream = "\r\nQUERY 192.0.2.7\r\n\r\nLOGIN 192.0.2.8 carol\nX-Extra: ignored\n\nQUIT\r\n\r\n";
    for (std::size_t chunk : {1u, 2u, 5u, 100u}) {
        WhosonFramer f;
        std::vector<std::string> got;
        for (std::size_t i = 0; i < stream.size(); i += chunk) {
            f.feed(std::string_view(stream).substr(i, chunk));
            std::string line;
            while (f.next(line) == WhosonFramer::State::request) got.push_back(line);
        }
        EXPECT_EQ(got, (std::vector<std::string>{"QUERY 192.0.2.7", "LOGIN 192.0.2.8 carol", "QUIT"})) << chunk;
    }
    WhosonFramer f(64);
    std::string line;
    f.feed("QUERY 192.0.2.7\r\n");
    EXPECT_EQ(f.next(line), WhosonFramer::State::need_more);  // no empty line yet
    f.feed(std::string(100, 'x'));
    EXPECT_EQ(f.next(line), WhosonFramer::State::error);
}

TEST(WhosonCodec, RepliesAndDatagrams) {
    EXPECT_EQ(whoson_reply('+', "alice"), "+alice\r\n\r\n");
    EXPECT_EQ(whoson_reply('-'), "-\r\n\r\n");
    EXPECT_EQ(whoson_reply('+', "a\r\nb"), "+a??b\r\n\r\n");  // a name never breaks the framing
    EXPECT_EQ(parse_whoson_datagram("QUERY 192.0.2.7\r\n\r\n").kind, WhosonRequest::Kind::query);
    EXPECT_EQ(parse_whoson_datagram("LOGOUT 192.0.2.7").kind, WhosonRequest::Kind::logout);
    EXPECT_EQ(parse_whoson_datagram("\r\n").kind, WhosonRequest::Kind::bad);
}

// ---- relay-ctrl -------------------------------------------------------------------------------

TEST(RelayCtrlCodec, Datagrams) {
    EXPECT_EQ(parse_relay_ctrl_datagram("192.0.2.7")->to_string(), "192.0.2.7");
    EXPECT_EQ(parse_relay_ctrl_datagram(std::string("192.0.2.7\0", 10))->to_string(), "192.0.2.7");
    EXPECT_EQ(parse_relay_ctrl_datagram("2001:db8::5\n")->to_string(), "2001:db8::5");
    for (std::string bad : {std::string(), std::string("\n"), std::string("192.0.2.7 x"), std::string("host.example"),
                            std::string(100, '1'), std::string("192.0.2.7\0junk", 14)})
        EXPECT_FALSE(parse_relay_ctrl_datagram(bad)) << bad;
}

}  // namespace
}  // namespace rp::sources
