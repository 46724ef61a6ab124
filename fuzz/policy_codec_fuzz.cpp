// Fuzz target for the policy delegation codec: the input is fed to PolicyParser in chunks whose
// size the first byte chooses (so request boundaries fall anywhere), every complete request is
// decided against a tiny oracle and its reply formatted. Checks the parser's own contract
// (consumed never exceeds the input, need_more consumes everything, errors stick) and that a
// split feed gives the same results as one whole feed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "frontends/policy_codec.hpp"

namespace {

using rp::frontends::PolicyParser;

class OddOracle final : public rp::frontends::PermitOracle {
public:
    rp::frontends::Verdict check(const rp::core::Address& a) const override {
        rp::frontends::Verdict v;
        if ((a.bytes()[0] & 1) != 0) v.kind = rp::frontends::Verdict::Kind::permit;
        return v;
    }
};

// Feeds `data` in chunks of `chunk` bytes; returns a transcript of what came out.
std::string run(std::string_view data, std::size_t chunk, const rp::frontends::PolicyCodecLimits& limits) {
    static const OddOracle oracle;
    PolicyParser p(limits);
    std::string transcript;
    while (!data.empty()) {
        std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        while (!in.empty()) {
            const auto s = p.feed(in);
            if (s.consumed > in.size()) std::abort();
            in.remove_prefix(s.consumed);
            if (s.kind == PolicyParser::Step::Kind::request) {
                const auto& r = p.request();
                transcript += r.protocol_state;
                transcript += '|';
                transcript += r.client_address;
                transcript += '|';
                transcript += std::to_string(r.attribute_count);
                transcript += rp::frontends::policy_reply(rp::frontends::policy_permits(r, oracle));
            } else if (s.kind == PolicyParser::Step::Kind::error) {
                if (p.error() == rp::frontends::PolicyError::none) std::abort();
                if (p.feed("request=smtpd_access_policy\n\n").kind != PolicyParser::Step::Kind::error) std::abort();
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
    // Small limits so that the fuzzer reaches them; the bit 7 of the first byte picks defaults.
    const rp::frontends::PolicyCodecLimits limits =
        (data[0] & 0x80) != 0 ? rp::frontends::PolicyCodecLimits{} : rp::frontends::PolicyCodecLimits{512, 12};
    const std::string split = run(input, chunk, limits);
    const std::string whole = run(input, input.size() + 1, limits);
    if (split != whole) std::abort();
    return 0;
}
