// Fuzz target: util::mask_url and the store URL parser on URLs built around a known password.
// The input is SCHEME \x01 USER \x01 PASSWORD \x01 REST (any bytes, any shape: "Redis://",
// "postgres:/", no scheme, a password holding '/', '@', ':', '#', '?' or %-escapes); the URL is
// SCHEME USER ':' PASSWORD '@' REST. Oracle: the password never appears in mask_url's output,
// nor in the parsed URL's redacted() form, unless it is text that is shown anyway (it occurs in
// the scheme, user or rest, is only slashes, which a scheme's "//" may take, or holds '*').
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/shared_backend.hpp"
#include "util/redact.hpp"

namespace {

std::string_view next_part(std::string_view& in) {
    const auto cut = in.find('\x01');
    const auto part = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 1);
    return part;
}

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

// Whether `pw` may legitimately show: it is part of what is printed anyway.
bool shown_anyway(std::string_view pw, std::string_view scheme, std::string_view user, std::string_view rest) {
    // Too short to mean anything, only slashes, or holding the mask's own '*' (":/" + "***").
    if (pw.size() < 4 || pw.find_first_not_of('/') == std::string_view::npos || contains(pw, "*")) return true;
    std::string lower(scheme);
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    const std::string visible = std::string(scheme) + lower + std::string(user) + ":***@" + std::string(rest) +
                                "postgresql://mysql://redis://";
    return contains(visible, pw);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto scheme = next_part(in);
    const auto user = next_part(in);
    const auto pw = next_part(in);
    const auto rest = in;
    const std::string url = std::string(scheme) + std::string(user) + ":" + std::string(pw) + "@" + std::string(rest);
    const std::string masked = rp::util::mask_url(url);
    if (!shown_anyway(pw, scheme, user, rest) && contains(masked, pw)) std::abort();
    (void)rp::util::mask_url(std::string_view(url).substr(0, url.size() / 2));  // totality on cut text
    // The parser: a password without URL delimiters can only show inside one field, so it must not
    // show at all (fields derive from scheme, user and rest; percent-decoding may create text).
    auto u = rp::store::parse_store_url(url);
    if (u && pw.find_first_of(":/?#@&=[]%*") == std::string_view::npos && !contains(rest, "%") &&
        !contains(user, "%") && !shown_anyway(pw, scheme, user, rest) && contains(u->redacted(), pw))
        std::abort();
    return 0;
}
