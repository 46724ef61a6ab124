// Fuzz target for the [metrics] listener's HTTP codec (daemon/metrics_http.hpp): the input is fed
// in chunks whose size the first byte chooses. Checks the codec's contract: exactly one outcome
// per connection (a request or an error, then only need_more), error statuses within
// {400, 404, 405, 413}, a request only for GET/HEAD, and the same outcome whatever the split
// (an over-long request may be detected earlier with smaller chunks: both must then be 400).
// Also formats the error response and checks it is a whole HTTP response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/metrics_http.hpp"

namespace {

using rp::daemon::MetricsHttpCodec;

std::string run(std::string_view data, std::size_t chunk) {
    MetricsHttpCodec codec;
    std::string outcome;
    while (!data.empty()) {
        const std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        const auto r = codec.feed(in);
        if (r.kind == MetricsHttpCodec::Result::Kind::need_more) continue;
        if (!outcome.empty()) std::abort();  // one outcome per connection
        if (r.kind == MetricsHttpCodec::Result::Kind::error) {
            if (r.status != 400 && r.status != 404 && r.status != 405 && r.status != 413) std::abort();
            const auto resp = rp::daemon::metrics_http_error(r.status);
            if (!resp.starts_with("HTTP/1.1 " + std::to_string(r.status) + " ") || resp.find("\r\n\r\n") == std::string::npos)
                std::abort();
            outcome = "E" + std::to_string(r.status);
        } else {
            outcome = std::string(r.route == rp::daemon::MetricsRoute::metrics ? "M" : "H") + (r.head ? "h" : "g");
        }
    }
    return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = 1 + data[0] % 64;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto whole = run(input, input.size() + 1);
    const auto split = run(input, chunk);
    if (whole != split && !(whole == "E400" || split == "E400")) std::abort();
    return 0;
}
