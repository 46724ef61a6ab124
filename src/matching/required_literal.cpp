#include "matching/required_literal.hpp"

#include <cctype>
#include <cstring>
#include <optional>

namespace rp::matching {

namespace {

bool is_ascii_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The index just past the character class that starts at re[i] == '[', or nullopt.
std::optional<std::size_t> skip_class(std::string_view re, std::size_t i) {
    ++i;
    if (i < re.size() && re[i] == '^') ++i;
    if (i < re.size() && re[i] == ']') ++i;  // a ']' first is a member
    while (i < re.size()) {
        if (re[i] == '\\') {
            i += 2;
        } else if (re[i] == '[' && i + 1 < re.size() && (re[i + 1] == ':' || re[i + 1] == '.' || re[i + 1] == '=')) {
            const auto close = re.find(std::string{re[i + 1], ']'}, i + 2);  // [:alpha:]
            if (close == std::string_view::npos) return std::nullopt;
            i = close + 2;
        } else if (re[i] == ']') {
            return i + 1;
        } else {
            ++i;
        }
    }
    return std::nullopt;
}

// The index just past the group that starts at re[i] == '(', or nullopt.
std::optional<std::size_t> skip_group(std::string_view re, std::size_t i) {
    int depth = 0;
    while (i < re.size()) {
        const char c = re[i];
        if (c == '\\') {
            i += 2;
        } else if (c == '[') {
            auto next = skip_class(re, i);
            if (!next) return std::nullopt;
            i = *next;
        } else {
            if (c == '(') ++depth;
            if (c == ')' && --depth == 0) return i + 1;
            ++i;
        }
    }
    return std::nullopt;
}

// If re[i] starts a {n}, {n,} or {n,m} quantifier, the index just past it.
std::optional<std::size_t> counted_quantifier(std::string_view re, std::size_t i) {
    std::size_t j = i + 1;
    const std::size_t digits_from = j;
    while (j < re.size() && is_digit(re[j])) ++j;
    if (j == digits_from) return std::nullopt;
    if (j < re.size() && re[j] == ',') {
        ++j;
        while (j < re.size() && is_digit(re[j])) ++j;
    }
    if (j < re.size() && re[j] == '}') return j + 1;
    return std::nullopt;
}

}  // namespace

std::string required_literal(std::string_view re, std::size_t min_size) {
    if (re.find("\\Q") != std::string_view::npos || re.find("(*") != std::string_view::npos) return {};
    std::string best, run;
    auto end_run = [&] {
        if (!run.empty() && run.size() >= best.size()) best = run;
        run.clear();
    };
    // After a quantifier: the atom before it may occur zero times or be repeated, so it is not
    // part of the run (a plain character is the run's last byte; a group or class ended it).
    auto quantified = [&](std::size_t next) {
        if (!run.empty()) run.pop_back();
        end_run();
        if (next < re.size() && (re[next] == '?' || re[next] == '+')) ++next;  // lazy, possessive
        return next;
    };
    std::size_t i = 0;
    while (i < re.size()) {
        const char c = re[i];
        switch (c) {
            case '\\': {
                if (i + 1 >= re.size()) return {};
                const char e = re[i + 1];
                if (!is_ascii_alnum(e) && static_cast<unsigned char>(e) < 0x80) {
                    run += e;  // escaped punctuation or space: itself
                } else if (e != 'N' && std::strchr("dDsSwWhHvVRbBAzZGK", e)) {
                    end_run();  // a class or an assertion
                } else if (e == 'N' && (i + 2 >= re.size() || re[i + 2] != '{')) {
                    end_run();  // any character but a newline
                } else {
                    return {};  // \x.., \p{..}, \1, \g.., \t, ...: not read here
                }
                i += 2;
                break;
            }
            case '[': {
                auto next = skip_class(re, i);
                if (!next) return {};
                end_run();
                i = *next;
                break;
            }
            case '(': {
                if (re.substr(i, 2) == "(?") {
                    std::size_t j = i + 2;
                    if (j < re.size() && re[j] == '#') return {};  // a comment: not read here
                    while (j < re.size() && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-' || re[j] == '^'))
                        ++j;
                    if (j < re.size() && re[j] == ')') return {};  // (?i), (?x), ...: changes what follows
                }
                auto next = skip_group(re, i);
                if (!next) return {};
                end_run();
                i = *next;
                break;
            }
            case '|':
            case ')':
                return {};
            case '.':
            case '^':
            case '$':
                end_run();
                ++i;
                break;
            case '*':
            case '+':
            case '?':
                i = quantified(i + 1);
                break;
            case '{':
                if (auto next = counted_quantifier(re, i)) {
                    i = quantified(*next);
                } else if (i + 1 < re.size() && re[i + 1] == ',') {
                    return {};  // {,n}: a quantifier in newer PCRE2, a literal in older
                } else {
                    run += c;
                    ++i;
                }
                break;
            default:
                run += c;
                ++i;
        }
    }
    end_run();
    return best.size() >= min_size ? best : std::string{};
}

}  // namespace rp::matching
