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

}  // namespace

std::optional<int> non_ascii_outside_strings(std::string_view t) {
    State st = State::code;
    int line = 1;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const char ch = t[i];
        if (ch == '\n') {
            ++line;
            if (st != State::ml_basic && st != State::ml_literal) st = State::code;  // ends comments, bad strings
            continue;
        }
        switch (st) {
        case State::code:
            if (static_cast<unsigned char>(ch) >= 0x80) return line;
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
            if (ch == '\\' && i + 1 < t.size() && t[i + 1] != '\n') ++i;  // an escaped character
            else if (ch == '"') st = State::code;
            break;
        case State::literal:
            if (ch == '\'') st = State::code;
            break;
        case State::ml_basic:
        case State::ml_literal: {
            const char q = st == State::ml_basic ? '"' : '\'';
            if (q == '"' && ch == '\\') {
                if (i + 1 < t.size() && t[i + 1] == '\n') ++line;
                ++i;
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
