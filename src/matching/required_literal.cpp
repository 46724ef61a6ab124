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

// What an escape (re[i] == '\\', with a character after it) is to a literal run.
enum class Escape { itself, breaks_run, unread };
Escape escape_kind(std::string_view re, std::size_t i) {
    const char e = re[i + 1];
    if (!is_ascii_alnum(e) && static_cast<unsigned char>(e) < 0x80) return Escape::itself;  // punctuation or space
    if (e != 'N' && std::strchr("dDsSwWhHvVRbBAzZGK", e)) return Escape::breaks_run;       // a class or an assertion
    if (e == 'N' && (i + 2 >= re.size() || re[i + 2] != '{')) return Escape::breaks_run;   // any character but a newline
    return Escape::unread;  // \x.., \p{..}, \1, \g.., \t, ...: not read here
}

// The end of the group opening at re[i] ('('); nullopt when it is not read here: a comment, an
// option setting ((?i), (?x), ...: changes what follows), or a group that does not close.
std::optional<std::size_t> readable_group_end(std::string_view re, std::size_t i) {
    if (re.substr(i, 2) == "(?") {
        std::size_t j = i + 2;
        if (j < re.size() && re[j] == '#') return std::nullopt;
        while (j < re.size() && (std::isalpha(static_cast<unsigned char>(re[j])) || re[j] == '-' || re[j] == '^')) ++j;
        if (j < re.size() && re[j] == ')') return std::nullopt;
    }
    return skip_group(re, i);
}

// The plain runs of a regex as they are read, and the longest so far.
struct Runs {
    std::string best, run;
    void end_run() {
        if (!run.empty() && run.size() >= best.size()) best = run;
        run.clear();
    }
    // After a quantifier ending before `next`: the atom before it may occur zero times or be
    // repeated, so it is not part of the run (a plain character is the run's last byte; a group
    // or class ended it). Returns where reading goes on (past a lazy or possessive mark).
    std::size_t quantified(std::string_view re, std::size_t next) {
        if (!run.empty()) run.pop_back();
        end_run();
        if (next < re.size() && (re[next] == '?' || re[next] == '+')) ++next;
        return next;
    }
};

}  // namespace

std::string required_literal(std::string_view re, std::size_t min_size) {
    if (re.find("\\Q") != std::string_view::npos || re.find("(*") != std::string_view::npos) return {};
    Runs r;
    std::size_t i = 0;
    while (i < re.size()) {
        const char c = re[i];
        switch (c) {
            case '\\': {
                if (i + 1 >= re.size()) return {};
                const auto kind = escape_kind(re, i);
                if (kind == Escape::unread) return {};
                if (kind == Escape::itself) r.run += re[i + 1];
                else r.end_run();
                i += 2;
                break;
            }
            case '[':
            case '(': {
                auto next = c == '[' ? skip_class(re, i) : readable_group_end(re, i);
                if (!next) return {};
                r.end_run();
                i = *next;
                break;
            }
            case '|':
            case ')':
                return {};
            case '.':
            case '^':
            case '$':
                r.end_run();
                ++i;
                break;
            case '*':
            case '+':
            case '?':
                i = r.quantified(re, i + 1);
                break;
            case '{':
                if (auto next = counted_quantifier(re, i)) {
                    i = r.quantified(re, *next);
                } else if (i + 1 < re.size() && re[i + 1] == ',') {
                    return {};  // {,n}: a quantifier in newer PCRE2, a literal in older
                } else {
                    r.run += c;
                    ++i;
                }
                break;
            default:
                r.run += c;
                ++i;
        }
    }
    r.end_run();
    return r.best.size() >= min_size ? r.best : std::string{};
}

}  // namespace rp::matching
