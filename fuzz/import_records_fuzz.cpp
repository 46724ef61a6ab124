// Fuzz target for the Berkeley DB record parsers of `relaypermit import` (imports/import_parsers.hpp):
// the input is cut into key/value pairs at '\n' (a line "KEY\tVALUE"; bytes kept as they are,
// NULs included) and read as pop-before-smtp and as drac records. Every entry must carry a
// complete address; counts add up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "imports/import_parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<rp::imports::Record> records;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        const auto tab = line.find('\t');
        records.emplace_back(std::string(line.substr(0, tab)),
                             tab == std::string_view::npos ? std::string() : std::string(line.substr(tab + 1)));
    }
    for (const auto& b : {rp::imports::parse_pop_before_smtp(records), rp::imports::parse_drac(records)}) {
        if (b.entries.size() + b.malformed != records.size()) std::abort();
        if (b.examples.size() > rp::imports::k_max_examples) std::abort();
    }
    return 0;
}
