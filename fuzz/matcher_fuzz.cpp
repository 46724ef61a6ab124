// Fuzz target: log text -> Matcher::scan and parse_syslog_line/resolve_time.
// Every match must carry an address that round-trips through Address::parse, and the threaded
// scan (tiny chunks, 3 threads) and matching each line on its own (no prefilter) must give exactly
// the sequential results in the same order.
#include <algorithm>
#include <cstring>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "matching/matcher.hpp"
#include "matching/syslog_line.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static auto matcher = *rp::matching::Matcher::build({}, {});
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto now = rp::core::from_unix_seconds(1'800'000'000);
    auto key = [](const rp::matching::LoginMatch& m) {
        return m.ip.to_string() + '\t' + std::string(m.user) + '\t' + std::string(m.server) + '\t' +
               std::to_string(rp::core::to_unix_micros(m.time)) + '\t' + std::string(m.line);
    };
    std::vector<std::string> sequential, threaded;
    rp::matching::MatchState state(*matcher);
    matcher->scan(text, now, state, [&](const rp::matching::LoginMatch& m) {
        auto again = rp::core::Address::parse(m.ip.to_string());
        if (!again || *again != m.ip || m.time > now) std::abort();
        sequential.push_back(key(m));
    });
    // The threaded scan overwrites each chunk as soon as it is released: it must not read a
    // released byte again, so the results (users and lines included) stay the same.
    std::string copy(text);
    rp::matching::ScanOptions opts{3, 64, {}};
    opts.release = [](const char* p, std::size_t n) { std::memset(const_cast<char*>(p), 'X', n); };
    rp::matching::MatchState state2(*matcher);
    matcher->scan(copy, now, state2, [&](const rp::matching::LoginMatch& m) { threaded.push_back(key(m)); }, opts);
    if (sequential != threaded) std::abort();
    // The prefilter (Hyperscan and the pair search, merged) must skip no line that holds a
    // literal: every line matched on its own, with literals found by plain search, gives the same.
    std::vector<std::string> per_line;
    rp::matching::MatchState state3(*matcher);
    for (std::size_t pos = 0; pos < text.size();) {
        const auto end = std::min(text.find('\n', pos), text.size());
        if (auto m = matcher->match_line(text.substr(pos, end - pos), now, state3)) per_line.push_back(key(*m));
        pos = end + 1;
    }
    if (sequential != per_line) std::abort();
    if (auto l = rp::matching::parse_syslog_line(text)) {
        if (rp::matching::resolve_time(*l, now) > now) std::abort();
    }
    return 0;
}
