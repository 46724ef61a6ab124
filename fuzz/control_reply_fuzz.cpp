// Fuzz target for the CLI's streamed reply reader (daemon/control_protocol.hpp ReplySplitter):
// the first byte chooses the chunk size, the rest is a daemon's reply line. Checks: no
// exception, no crash; a split feed gives the same elements, outcome and rest as a whole one;
// every element handed over is a JSON object; the rest stays within its bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/control_protocol.hpp"

namespace {

struct Outcome {
    bool ok = true;
    bool complete = false;
    std::vector<std::string> elements;
    std::string rest;
};

Outcome run(std::string_view in, std::size_t chunk) {
    rp::daemon::ReplySplitter s;
    Outcome o;
    auto sink = [&](const nlohmann::json& e) {
        if (!e.is_object()) std::abort();
        o.elements.push_back(e.dump());
    };
    for (std::size_t i = 0; i < in.size() && o.ok; i += chunk) o.ok = s.feed(in.substr(i, chunk), sink);
    o.complete = s.complete();
    o.rest = s.rest();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = data[0] % 64 + 1;
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto whole = run(in, in.size() + 1);
    const auto split = run(in, chunk);
    if (whole.ok != split.ok || whole.elements != split.elements) std::abort();
    if (whole.ok && (whole.complete != split.complete || whole.rest != split.rest)) std::abort();
    return 0;
}
