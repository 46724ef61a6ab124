// Shared by the fuzz targets of the frontends' incremental codecs (netstring, policy, line):
// the input's first byte chooses how the rest is cut into chunks, as a socket would deliver it,
// and each target checks that a split feed gives the same transcript as a whole one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "frontends/permit_oracle.hpp"

namespace rp::fuzz {

// Permits the addresses whose first byte is odd.
class OddOracle final : public frontends::PermitOracle {
public:
    frontends::Verdict check(const core::Address& a) const override {
        frontends::Verdict v;
        if ((a.bytes()[0] & 1) != 0) v.kind = frontends::Verdict::Kind::permit;
        return v;
    }
};

// The fuzz input split into its control byte and the bytes to feed: chunks of 1 to 64 bytes,
// and bit 7 asking for the codec's default limits instead of small ones the fuzzer can reach.
struct ChunkedInput {
    std::size_t chunk;
    bool default_limits;
    std::string_view bytes;
};

inline ChunkedInput split_control_byte(const std::uint8_t* data, std::size_t size) {
    return {static_cast<std::size_t>(data[0] % 64) + 1, (data[0] & 0x80) != 0,
            std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
}

// Feeds `data` to `parser` in chunks of `chunk` bytes and calls on_item() for each complete
// item (payload, request, line). Checks the contract every codec shares: a step never consumes
// more than it was given, need_more consumes everything, and an error sticks (feeding
// `valid_item` afterwards is still an error). Returns false if the feed ended in an error.
template <class Parser, class OnItem>
bool feed_in_chunks(std::string_view data, std::size_t chunk, Parser& parser, std::string_view valid_item,
                    OnItem&& on_item) {
    using Kind = typename Parser::Step::Kind;
    while (!data.empty()) {
        std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        while (!in.empty()) {
            const auto s = parser.feed(in);
            if (s.consumed > in.size()) std::abort();
            in.remove_prefix(s.consumed);
            if (s.kind == Kind::error) {
                if (parser.feed(valid_item).kind != Kind::error) std::abort();
                return false;
            }
            if (s.kind == Kind::need_more) {
                if (!in.empty()) std::abort();
            } else {
                on_item();
            }
        }
    }
    return true;
}

}  // namespace rp::fuzz
