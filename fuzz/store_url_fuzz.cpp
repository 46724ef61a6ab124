// Fuzz target: parse_store_url (the `store` config value). A parsed URL's redacted form never
// shows the password, and parses again.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/shared_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto u = rp::store::parse_store_url(text);
    if (!u) return 0;
    const auto red = u->redacted();
    if (!u->password.empty() && red.find(":" + u->password + "@") != std::string::npos) std::abort();
    (void)rp::store::parse_store_url(red);
    (void)rp::store::make_backend(*u);  // validates parameters; never connects
    return 0;
}
