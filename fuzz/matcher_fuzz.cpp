// Fuzz target: log text -> Matcher::scan and parse_syslog_line/resolve_time.
// Every match must carry an address that round-trips through Address::parse.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "matching/matcher.hpp"
#include "matching/syslog_line.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static auto matcher = *rp::matching::Matcher::build({}, {});
    static rp::matching::MatchState state(*matcher);
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto now = rp::core::from_unix_seconds(1'800'000'000);
    matcher->scan(text, now, state, [&](const rp::matching::LoginMatch& m) {
        auto again = rp::core::Address::parse(m.ip.to_string());
        if (!again || *again != m.ip || m.time > now) std::abort();
    });
    if (auto l = rp::matching::parse_syslog_line(text)) {
        if (rp::matching::resolve_time(*l, now) > now) std::abort();
    }
    return 0;
}
