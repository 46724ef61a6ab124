// Fuzz target for the dovecot-auth-policy HTTP request parser and report interpreter: the input
// is fed to HttpRequestParser in chunks whose size the first byte chooses (so request boundaries
// fall anywhere); every complete request's body goes through interpret_report, the api_header
// check and the report-command detection. Checks the parser's contract (errors stick, the buffer
// stays bounded by the limits plus one chunk, a split feed gives the same transcript as one
// whole feed) and that a granting report always carries an address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sources/auth_policy_codec.hpp"

namespace {

using rp::sources::HttpRequest;
using rp::sources::HttpRequestParser;

std::string run(std::string_view data, std::size_t chunk, const rp::sources::HttpLimits& limits) {
    static const auto api = rp::sources::parse_api_header("X-API-Key: k");
    HttpRequestParser p(limits);
    std::string transcript;
    bool failed = false;
    while (!data.empty()) {
        const std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        p.feed(in);
        for (;;) {
            HttpRequest r;
            const auto st = p.next(&r);
            if (st == HttpRequestParser::State::need_more) break;
            if (st == HttpRequestParser::State::error) {
                if (p.error_status() != 400 && p.error_status() != 413) std::abort();
                if (!failed) transcript += "E" + std::to_string(p.error_status()) + ";";
                failed = true;
                break;
            }
            if (failed) std::abort();  // errors must stick
            if (r.body.size() > limits.max_body_bytes) std::abort();
            const auto d = rp::sources::interpret_report(r.body);
            if (d.kind == rp::sources::ReportDecision::Kind::grant && !d.address) std::abort();
            transcript += r.method + " " + r.target + " " + std::to_string(r.body.size()) + " " +
                          (r.keep_alive ? "k" : "c") + (rp::sources::is_report_command(r.target) ? "r" : "-") +
                          (rp::sources::has_api_header(r, *api) ? "a" : "-") +
                          std::to_string(static_cast<int>(d.kind)) + ";";
        }
        if (!failed && p.buffered() > limits.max_header_bytes + limits.max_body_bytes + 4 + chunk) std::abort();
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = 1 + data[0] % 64;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    rp::sources::HttpLimits limits;
    limits.max_header_bytes = 512;
    limits.max_body_bytes = 1024;
    limits.max_headers = 16;
    const auto whole = run(input, input.size() + 1, limits);
    const auto split = run(input, chunk, limits);
    // A request can only complete once all its bytes are present, whatever the split, but an
    // over-long header section is detected earlier with smaller chunks: compare up to the first
    // error only when neither failed.
    if (whole.find('E') == std::string::npos && split.find('E') == std::string::npos && whole != split) std::abort();
    return 0;
}
