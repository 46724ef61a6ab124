// Fuzz target: text -> the log time forms (find_leading_time, classify_time, time_instant,
// resolve_line_time, describe) and a [[pattern]]-style regex capturing (?<time>...).
// Invariants: a recognised time is a view into the input; a leading time is classified the same
// on its own; a resolved time is never after the reading time, and a time of origin `reading`
// is exactly the reading time.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "matching/log_time.hpp"
#include "matching/matcher.hpp"

namespace {

void check(const rp::matching::LineTime& t, rp::core::Time now) {
    if (t.time > now) std::abort();
    if (t.origin == rp::core::TimeOrigin::reading && t.time != now) std::abort();
    if (rp::matching::describe(t).empty()) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rp::matching;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto now = rp::core::from_unix_seconds(1'800'000'000);
    const auto lead = find_leading_time(text);
    if (!inside(lead.text, text)) std::abort();
    if (lead.format != TimeFormat::none && classify_time(lead.text).format != lead.format) std::abort();
    check(resolve_line_time(lead, now), now);
    const auto whole = classify_time(text);
    if (!inside(whole.text, text)) std::abort();
    check(resolve_line_time(whole, now), now);

    static auto matcher = *Matcher::build(
        {"dovecot"}, {{"t", "t", {}, "", R"(t\[\d+\]: at (?<time>.*?) from (?<ip>[0-9a-fA-F:.]+)$)", true}});
    MatchState state(*matcher);
    matcher->scan(text, now, state, [&](const LoginMatch& m) {
        if (m.time != m.time_detail.time || m.time_origin != m.time_detail.origin) std::abort();
        check(m.time_detail, now);
    });
    return 0;
}
