// Fuzz target for the whoson wire format (sources/whoson_codec.hpp): the input (after the control
// byte) is fed to WhosonFramer in chunks the control byte chooses; each request line is parsed
// and answered with whoson_reply; the whole input is also parsed as one datagram. Checks: a split
// feed gives the same requests as a whole feed, the buffered request stays within the limit,
// errors stick, a parsed LOGIN has a name of at most 255 bytes without control characters, a bad
// request says why, and a reply is one line (its text never holds CR or LF) plus the empty line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "chunked_feed.hpp"
#include "sources/whoson_codec.hpp"

namespace {

using rp::sources::WhosonFramer;
using rp::sources::WhosonRequest;

void check_request(const WhosonRequest& r) {
    if (r.kind == WhosonRequest::Kind::login) {
        if (r.name.empty() || r.name.size() > 255) std::abort();
        for (char c : r.name)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
    }
    if (r.kind == WhosonRequest::Kind::bad && r.error.empty()) std::abort();
    const auto reply = rp::sources::whoson_reply(r.kind == WhosonRequest::Kind::bad ? '*' : '+',
                                                 r.kind == WhosonRequest::Kind::login ? r.name : r.error);
    if (!reply.ends_with("\r\n\r\n") || reply.find_first_of("\r\n") != reply.size() - 4) std::abort();
}

std::string run(std::string_view data, std::size_t chunk, std::size_t max) {
    WhosonFramer f(max);
    std::string transcript;
    for (std::size_t i = 0; i < data.size(); i += chunk) {
        f.feed(data.substr(i, chunk));
        std::string line;
        for (;;) {
            const auto st = f.next(line);
            if (st == WhosonFramer::State::need_more) break;
            if (st == WhosonFramer::State::error) {
                if (f.next(line) != WhosonFramer::State::error) std::abort();
                return transcript + "error";
            }
            if (line.size() > max) std::abort();
            check_request(rp::sources::parse_whoson_request(line));
            transcript += line + "|";
        }
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto in = rp::fuzz::split_control_byte(data, size);
    const std::size_t max = in.default_limits ? 1024 : 48;
    // The framer may report an over-long request earlier or later depending on the split, so the
    // transcripts are compared up to an error only when neither failed.
    const auto split = run(in.bytes, in.chunk, max), whole = run(in.bytes, in.bytes.size() + 1, max);
    if (!split.ends_with("error") && !whole.ends_with("error") && split != whole) std::abort();
    check_request(rp::sources::parse_whoson_datagram(in.bytes));
    return 0;
}
