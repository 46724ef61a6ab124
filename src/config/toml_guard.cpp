#include "config/toml_guard.hpp"

namespace rp::config {
namespace {

enum class State { code, comment, basic, literal, ml_basic, ml_literal };

// The length of the run of `q` starting at `i`.
std::size_t run_of(std::string_view t, std::size_t i, char q) {
    std::size_t n = 0;
    while (i + n < t.size() && t[i + n] == q) ++n;
    return n;
}

bool non_ascii(char ch) { return static_cast<unsigned char>(ch) >= 0x80; }

}  // namespace

std::optional<int> non_ascii_outside_strings(std::string_view t) {
    State st = State::code;
    int line = 1;
    std::size_t i = t.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 BOM, which toml++ skips
    for (; i < t.size(); ++i) {
        const char ch = t[i];
        if (ch == '\n') {
            ++line;
            if (st != State::ml_basic && st != State::ml_literal) st = State::code;  // ends comments, bad strings
            continue;
        }
        switch (st) {
        case State::code:
            if (non_ascii(ch)) return line;
            if (ch == '#') st = State::comment;
            else if (ch == '"' || ch == '\'') {
                const std::size_t n = run_of(t, i, ch);
                const bool multi = n >= 3;
                st = ch == '"' ? (multi ? State::ml_basic : State::basic) : (multi ? State::ml_literal : State::literal);
                if (multi) i += 2;
                else if (n == 2) { ++i; st = State::code; }  // "" or '': an empty string
            }
            break;
        case State::comment: break;
        case State::basic:
            if (ch == '\\' && i + 1 < t.size() && t[i + 1] != '\n') {  // an escaped character:
                if (non_ascii(t[++i])) return line;  // toml++ tests it for whitespace (invalid anyway)
            }
            else if (ch == '"') st = State::code;
            break;
        case State::literal:
            if (ch == '\'') st = State::code;
            break;
        case State::ml_basic:
        case State::ml_literal: {
            const char q = st == State::ml_basic ? '"' : '\'';
            if (q == '"' && ch == '\\') {
                // An escape, or a line-ending backslash: toml++ tests the next character, and
                // every one after a line-ending backslash up to the first that is not
                // whitespace, for whitespace: none of them may be non-ASCII.
                std::size_t j = i + 1;
                while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\n'))
                    line += t[j++] == '\n' ? 1 : 0;
                if (j < t.size() && non_ascii(t[j])) return line;
                i = j == i + 1 ? j : j - 1;  // past the escaped character, or to the last blank
            } else if (ch == q) {
                const std::size_t n = run_of(t, i, q);
                if (n >= 3) st = State::code;  // up to two more quotes belong to the content
                i += n - 1;
            }
            break;
        }
        }
    }
    return std::nullopt;
}

}  // namespace rp::config
