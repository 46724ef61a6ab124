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

namespace {

using rp::frontends::NetstringParser;

class OddOracle final : public rp::frontends::PermitOracle {
public:
    rp::frontends::Verdict check(const rp::core::Address& a) const override {
        rp::frontends::Verdict v;
        if ((a.bytes()[0] & 1) != 0) v.kind = rp::frontends::Verdict::Kind::permit;
        return v;
    }
};

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
    while (!data.empty()) {
        std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        while (!in.empty()) {
            const auto s = p.feed(in);
            if (s.consumed > in.size()) std::abort();
            in.remove_prefix(s.consumed);
            if (s.kind == NetstringParser::Step::Kind::payload) {
                if (p.payload().size() > max) std::abort();
                bool permitted = false;
                const auto reply = rp::frontends::socketmap_answer(p.payload(), oracle, permitted);
                if (reply == "OK" || permitted != reply.starts_with("OK ")) std::abort();
                check_roundtrip(reply);
                transcript += p.payload();
                transcript += '|';
                rp::frontends::append_netstring(reply, transcript);
            } else if (s.kind == NetstringParser::Step::Kind::error) {
                if (p.error() == rp::frontends::NetstringError::none) std::abort();
                if (p.feed("1:a,").kind != NetstringParser::Step::Kind::error) std::abort();
                transcript += "error:";
                transcript += rp::frontends::describe(p.error());
                return transcript;
            } else {
                if (!in.empty()) std::abort();
            }
        }
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = static_cast<std::size_t>(data[0] % 64) + 1;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t max = (data[0] & 0x80) != 0 ? 10000 : 64;  // small limit so it is reached
    if (run(input, chunk, max) != run(input, input.size() + 1, max)) std::abort();
    return 0;
}
