// Fuzz target for the socketmap codec: the input is fed to NetstringParser in chunks whose size
// the first byte chooses, every payload is decided (socketmap_answer) against a tiny oracle and
// its reply encoded. Checks the parser's contract (consumed <= input, need_more consumes all,
// errors stick, payloads within the limit), that a reply is never a bare "OK", that every
// encoded reply parses back to itself, and that a split feed gives the same transcript as a
// whole one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "frontends/netstring_codec.hpp"
#include "chunked_feed.hpp"

namespace {

using rp::frontends::NetstringParser;

using rp::fuzz::OddOracle;

void check_roundtrip(std::string_view reply) {
    std::string encoded;
    rp::frontends::append_netstring(reply, encoded);
    NetstringParser p(reply.size());
    const auto s = p.feed(encoded);
    if (s.kind != NetstringParser::Step::Kind::payload || s.consumed != encoded.size() || p.payload() != reply)
        std::abort();
}

std::string run(std::string_view data, std::size_t chunk, std::size_t max) {
    static const OddOracle oracle;
    NetstringParser p(max);
    std::string transcript;
    const bool fed = rp::fuzz::feed_in_chunks(data, chunk, p, "1:a,", [&] {
        if (p.payload().size() > max) std::abort();
        bool permitted = false;
        const auto reply = rp::frontends::socketmap_answer(p.payload(), oracle, permitted);
        if (reply == "OK" || permitted != reply.starts_with("OK ")) std::abort();
        check_roundtrip(reply);
        // With the admin's static entries: a permit answer is still only ever OK RELAY / OK OK.
        static const auto statics = rp::frontends::make_static_answers(
            {{"to:example.net", "REJECT"}, {"connect:192.0.2", "RELAY"}, {"from:a@b", "550 no"}});
        bool via_permit = false;
        const auto with_static = rp::frontends::socketmap_answer(p.payload(), oracle, via_permit, &statics);
        if (with_static == "OK" || (via_permit && with_static != "OK RELAY" && with_static != "OK OK")) std::abort();
        transcript += p.payload();
        transcript += '|';
        rp::frontends::append_netstring(reply, transcript);
    });
    if (!fed) {
        if (p.error() == rp::frontends::NetstringError::none) std::abort();
        transcript += "error:";
        transcript += rp::frontends::describe(p.error());
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto in = rp::fuzz::split_control_byte(data, size);
    const std::size_t max = in.default_limits ? 10000 : 64;  // a small limit so that it is reached
    if (run(in.bytes, in.chunk, max) != run(in.bytes, in.bytes.size() + 1, max)) std::abort();
    return 0;
}
