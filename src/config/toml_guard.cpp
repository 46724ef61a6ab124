#include "config/toml_guard.hpp"

#include <cstdint>
#include <cstdio>

namespace rp::config {
namespace {

enum class State { code, comment, basic, literal, ml_basic, ml_literal };

bool non_ascii(char ch) { return static_cast<unsigned char>(ch) >= 0x80; }

// The length of the run of `q` starting at `i`.
std::size_t run_of(std::string_view t, std::size_t i, char q) {
    std::size_t n = 0;
    while (i + n < t.size() && t[i + n] == q) ++n;
    return n;
}

// Decodes one UTF-8 character at t[i] (a byte >= 0x80): its code point and length, or 0 if the
// sequence is invalid (overlong, surrogate, beyond U+10FFFF, cut short).
std::size_t decode_utf8(std::string_view t, std::size_t i, std::uint32_t& cp) {
    const auto b0 = static_cast<unsigned char>(t[i]);
    const std::size_t n = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
    if (n == 0 || b0 >= 0xF5 || i + n > t.size()) return 0;
    cp = b0 & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(t[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (b & 0x3F);
    }
    const std::uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

struct Lexer {
    std::string_view t;
    std::string out;
    State st = State::code;
    int line = 1;
    bool literal_refused = false;

    // One step at t[i]; returns the index of the last byte consumed, or npos on a refusal.
    std::size_t step(std::size_t i);
    std::size_t string_char(std::size_t i);
    std::size_t escape(std::size_t i, bool multi_line);
};

std::size_t Lexer::string_char(std::size_t i) {  // a byte >= 0x80 in a basic string
    std::uint32_t cp = 0;
    const std::size_t n = decode_utf8(t, i, cp);
    if (n == 0) return std::string_view::npos;
    char esc[16];
    std::snprintf(esc, sizeof esc, "\\U%08X", static_cast<unsigned>(cp));
    out += esc;
    return i + n - 1;
}

std::size_t Lexer::escape(std::size_t i, bool multi_line) {  // t[i] is a backslash in a basic string
    // toml++ tests the escaped character, and after a line-ending backslash every blank up to
    // the next character, for whitespace: none of them may be non-ASCII (and none is valid).
    std::size_t j = i + 1;
    if (multi_line)
        while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\n')) line += t[j++] == '\n';
    else if (j < t.size() && t[j] == '\n') {  // a single-line string cut by a newline: toml++ reports it
        out += '\\';
        return i;
    }
    if (j < t.size() && non_ascii(t[j])) return std::string_view::npos;
    const std::size_t last = j == i + 1 ? std::min(j, t.size() - 1) : j - 1;  // the escaped char, or the last blank
    out.append(t.substr(i, last - i + 1));
    return last;
}

std::size_t Lexer::step(std::size_t i) {
    const char ch = t[i];
    if (ch == '\n') {
        ++line;
        if (st != State::ml_basic && st != State::ml_literal) st = State::code;  // ends comments, bad strings
        out += ch;
        return i;
    }
    switch (st) {
    case State::code:
        if (non_ascii(ch)) return std::string_view::npos;
        if (ch == '#') st = State::comment;
        else if (ch == '"' || ch == '\'') {
            const std::size_t n = run_of(t, i, ch);
            const std::size_t take = n >= 3 ? 3 : n == 2 ? 2 : 1;
            st = take == 2 ? State::code  // "" or '': an empty string
                 : ch == '"' ? (take == 3 ? State::ml_basic : State::basic)
                             : (take == 3 ? State::ml_literal : State::literal);
            out.append(take, ch);
            return i + take - 1;
        }
        out += ch;
        return i;
    case State::comment:
        out += non_ascii(ch) ? '?' : ch;
        return i;
    case State::basic:
    case State::ml_basic:
        if (ch == '\\') return escape(i, st == State::ml_basic);
        if (non_ascii(ch)) return string_char(i);
        break;
    case State::literal:
    case State::ml_literal:
        if (non_ascii(ch)) {
            literal_refused = true;
            return std::string_view::npos;
        }
        break;
    }
    const char q = st == State::basic || st == State::ml_basic ? '"' : '\'';
    if (ch == q) {
        const bool multi = st == State::ml_basic || st == State::ml_literal;
        const std::size_t n = multi ? run_of(t, i, q) : 1;
        if (!multi || n >= 3) st = State::code;  // up to two more quotes belong to the content
        out.append(t.substr(i, n));
        return i + n - 1;
    }
    out += ch;
    return i;
}

}  // namespace

std::variant<std::string, NonAsciiRefused> ascii_toml(std::string_view text) {
    Lexer lx{text, {}};
    lx.out.reserve(text.size());
    std::size_t i = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 BOM, which toml++ skips
    for (; i < text.size(); ++i) {
        i = lx.step(i);
        if (i == std::string_view::npos) return NonAsciiRefused{lx.line, lx.literal_refused};
    }
    return std::move(lx.out);
}

}  // namespace rp::config
