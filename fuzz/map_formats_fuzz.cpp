// Fuzz target for the [[export]] `static` file parsers (exports/map_formats.hpp): tcprules(1)
// text and makemap(8) text. The files are the admin's, parsed strictly: a bad line is an error
// value and the export keeps its old file. Checks beyond "no crash":
//  - tcprules: every record's value is tcprules' own encoding ("D\0" for deny, then "+VAR=value\0"
//    items; checked for text without NUL bytes), a range line expands to at most 256 keys, and the
//    records survive a round trip through the CDB image the export writes (build_cdb, then
//    read_cdb: same records, same order);
//  - makemap: keys are non-empty, lowercase, unique and hold no white space; values are non-empty
//    and do not start with white space.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "exports/map_formats.hpp"

namespace {

// "D\0"? then "+NAME=VALUE\0" items, as tcprules writes a rule's data.
bool tcprules_value(std::string_view v) {
    if (v.starts_with(std::string_view("D\0", 2))) v.remove_prefix(2);
    while (!v.empty()) {
        if (v.front() != '+') return false;
        const auto nul = v.find('\0');
        if (nul == std::string_view::npos || v.substr(0, nul).find('=') == std::string_view::npos) return false;
        v.remove_prefix(nul + 1);
    }
    return true;
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

void check_tcprules(std::string_view text) {
    const auto rules = rp::exports::parse_tcprules(text);
    if (!rules) {
        if (rules.error().message.empty()) std::abort();
        return;
    }
    std::size_t lines = 1;
    for (char c : text) lines += c == '\n' ? 1 : 0;
    if (rules->size() > lines * 256) std::abort();
    // A NUL inside a variable is kept as tcprules keeps it (the value then reads differently);
    // the encoding check holds for text without one.
    if (text.find('\0') == std::string_view::npos)
        for (const auto& [k, v] : *rules)
            if (!tcprules_value(v)) std::abort();
    const auto image = rp::exports::build_cdb(*rules);
    if (!image) std::abort();
    const auto back = rp::exports::read_cdb(*image);
    if (!back || *back != *rules) std::abort();
}

void check_makemap(std::string_view text) {
    const auto map = rp::exports::parse_makemap(text);
    if (!map) {
        if (map.error().message.empty()) std::abort();
        return;
    }
    std::set<std::string> keys;
    for (const auto& [k, v] : *map) {
        if (k.empty() || v.empty() || is_space(v.front()) || !keys.insert(k).second) std::abort();
        for (char c : k)
            if (is_space(c) || std::tolower(static_cast<unsigned char>(c)) != static_cast<unsigned char>(c)) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_tcprules(text);
    check_makemap(text);
    return 0;
}
