// Fuzz target for the DRAC wire format (sources/drac_codec.hpp): the input (after the control
// byte) is both one RPC message for decode_drac_request and a record-marked stream fed to
// RecordReader in chunks the control byte chooses, every record decoded too; and it is read as a
// dracd.allow text and an rpcbind reply. Checks: an add always carries an address and a
// decodable xid, an answer is a whole number of XDR units starting with the call's xid, a drop
// sends nothing, records stay within the limit, a split feed gives the same records as a whole
// feed, and errors stick.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "chunked_feed.hpp"
#include "sources/drac_codec.hpp"

namespace {

using rp::sources::DracRequest;
using rp::sources::RecordReader;

void check_message(std::string_view msg) {
    const auto r = rp::sources::decode_drac_request(msg);
    switch (r.kind) {
        case DracRequest::Kind::drop:
            if (!r.reply.empty() || !r.malformed) std::abort();
            break;
        case DracRequest::Kind::answer:
            if (r.reply.size() < 24 || r.reply.size() % 4 != 0 || r.reply.substr(0, 4) != msg.substr(0, 4)) std::abort();
            break;
        case DracRequest::Kind::add:
            if (!r.address || r.malformed || (r.version != 1 && r.version != 2)) std::abort();
            if (rp::sources::encode_drac_reply(r.xid, rp::sources::AddStat::perm).size() != 28) std::abort();
            break;
    }
}

std::string records(std::string_view data, std::size_t chunk, std::size_t max) {
    RecordReader rr(max);
    std::string transcript;
    bool failed = false;
    for (std::size_t i = 0; i < data.size(); i += chunk) {
        rr.feed(data.substr(i, chunk));
        std::string rec;
        for (;;) {
            const auto st = rr.next(rec);
            if (st == RecordReader::State::need_more) break;
            if (st == RecordReader::State::error) {
                failed = true;
                break;
            }
            if (failed || rec.size() > max) std::abort();  // errors stick; records within the limit
            check_message(rec);
            transcript += std::to_string(rec.size()) + ":" + rec + ",";
        }
        if (failed) {
            std::string rec2;
            if (rr.next(rec2) != RecordReader::State::error) std::abort();
            return transcript + "error";
        }
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto in = rp::fuzz::split_control_byte(data, size);
    check_message(in.bytes);
    const std::size_t max = in.default_limits ? 8192 : 64;
    if (records(in.bytes, in.chunk, max) != records(in.bytes, in.bytes.size() + 1, max)) std::abort();
    std::vector<std::string> skipped;
    for (const auto& net : rp::sources::parse_dracd_allow(in.bytes, skipped))
        if (!net.network().is_v4()) std::abort();
    (void)rp::sources::parse_rpcb_reply(in.bytes, 1);
    return 0;
}
