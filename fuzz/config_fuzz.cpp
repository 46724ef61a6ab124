// Fuzz target: the TOML config parser and validation must return a value or an error, never
// crash or throw, whatever the file holds.
#include <cstdint>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto c = rp::config::parse_config(text, "fuzz.toml");
    (void)c.has_value();
    return 0;
}
