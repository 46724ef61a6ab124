// Fuzz target for the syslog stream framer (RFC 6587): the input is fed in chunks whose size the
// first byte chooses. Checks the framer's contract: the buffer stays bounded, every output line
// ends in '\n' and contains no other '\n', and a split feed gives the same output as a whole one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sources/syslog_framing.hpp"

namespace {

using rp::sources::FramingStats;
using rp::sources::StreamFramer;

std::string run(std::string_view data, std::size_t chunk, const rp::sources::SyslogFramingLimits& limits) {
    StreamFramer f(limits);
    std::string out;
    FramingStats st;
    for (std::size_t i = 0; i < data.size(); i += chunk) {
        f.feed(data.substr(i, chunk), out, st);
        if (f.buffered() > limits.max_frame_bytes) std::abort();
    }
    f.finish(out, st);
    if (!out.empty() && out.back() != '\n') std::abort();
    std::size_t lines = 0;
    for (char c : out) lines += c == '\n' ? 1 : 0;
    if (lines != st.messages) std::abort();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = 1 + bytes[0] % 17;
    const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    rp::sources::SyslogFramingLimits limits;
    limits.max_frame_bytes = 64;
    const std::string whole = run(data, data.size() + 1, limits);
    const std::string split = run(data, chunk, limits);
    if (whole != split) std::abort();
    std::string out;
    FramingStats st;
    rp::sources::frame_datagram(data, out, st, limits);
    return 0;
}
