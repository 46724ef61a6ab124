// Fuzz target: parse_tail_checkpoint (a file source's stored position). Never throws; a parsed
// value formats and parses back to itself.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sources/file_tail_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto cp = rp::sources::parse_tail_checkpoint(text);
    if (!cp) return 0;
    auto again = rp::sources::parse_tail_checkpoint(rp::sources::format_tail_checkpoint(*cp));
    if (!again || !(*again == *cp)) std::abort();
    return 0;
}
