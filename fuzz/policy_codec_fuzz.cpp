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
#include "chunked_feed.hpp"

namespace {

using rp::frontends::PolicyParser;

using rp::fuzz::OddOracle;

// Feeds `data` in chunks of `chunk` bytes; returns a transcript of what came out.
std::string run(std::string_view data, std::size_t chunk, const rp::frontends::PolicyCodecLimits& limits) {
    static const OddOracle oracle;
    PolicyParser p(limits);
    std::string transcript;
    const bool fed = rp::fuzz::feed_in_chunks(data, chunk, p, "request=smtpd_access_policy\n\n", [&] {
        const auto& r = p.request();
        transcript += r.protocol_state;
        transcript += '|';
        transcript += r.client_address;
        transcript += '|';
        transcript += std::to_string(r.attribute_count);
        transcript += rp::frontends::policy_reply(rp::frontends::policy_permits(r, oracle));
    });
    if (!fed) {
        if (p.error() == rp::frontends::PolicyError::none) std::abort();
        transcript += "error:";
        transcript += rp::frontends::describe(p.error());
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto in = rp::fuzz::split_control_byte(data, size);
    // Small limits so that the fuzzer reaches them.
    const rp::frontends::PolicyCodecLimits limits =
        in.default_limits ? rp::frontends::PolicyCodecLimits{} : rp::frontends::PolicyCodecLimits{512, 12};
    const std::string split = run(in.bytes, in.chunk, limits);
    const std::string whole = run(in.bytes, in.bytes.size() + 1, limits);
    if (split != whole) std::abort();
    return 0;
}
