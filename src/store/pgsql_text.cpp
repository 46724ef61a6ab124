#include "store/pgsql_text.hpp"

#include <cstdint>

namespace rp::store {

// Valid UTF-8 without NUL: invalid sequences and NUL become U+FFFD.
std::string sanitize_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0x01 && c < 0x80) len = 1, cp = c;
        else if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1Fu;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0Fu;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07u;
        bool valid = len > 0 && i + len <= n;
        for (std::size_t k = 1; valid && k < len; ++k) {
            if ((p[i + k] & 0xC0u) != 0x80u) valid = false;
            else cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if (valid && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            valid = false;
        if (valid) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

// Byte length of the first `chars` UTF-8 characters of s (s is valid UTF-8); npos if short.
std::size_t utf8_prefix_bytes(std::string_view s, std::size_t chars) {
    std::size_t i = 0;
    for (std::size_t c = 0; c < chars; ++c) {
        if (i >= s.size()) return std::string_view::npos;
        const auto b = static_cast<unsigned char>(s[i]);
        i += b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    }
    return i <= s.size() ? i : std::string_view::npos;
}

}  // namespace rp::store
