// Fuzz target: required_literal. Input: a regex, a newline, then subject lines. Whatever the
// regex, the reading must not crash; when PCRE2 compiles it and matches a subject line, the
// literal it gave must occur in that line (the prefilter would lose the login otherwise).
#include <pcre2.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "matching/required_literal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto nl = in.find('\n');
    const std::string_view regex = in.substr(0, nl);
    std::string_view subjects = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    const std::string lit = rp::matching::required_literal(regex, 1);
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), 0, &err, &off, nullptr);
    if (!code) return 0;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    while (!subjects.empty()) {
        const auto end = subjects.find('\n');
        const std::string_view line = subjects.substr(0, end);
        subjects = end == std::string_view::npos ? std::string_view() : subjects.substr(end + 1);
        // A match limit keeps pathological regexes from stalling the fuzzer.
        pcre2_match_context* mc = pcre2_match_context_create(nullptr);
        pcre2_set_match_limit(mc, 10000);
        const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(line.data()), line.size(), 0, 0, md, mc);
        pcre2_match_context_free(mc);
        if (rc >= 0 && !lit.empty() && line.find(lit) == std::string_view::npos) std::abort();
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return 0;
}
