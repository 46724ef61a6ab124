// config/toml_guard: toml++ gets a pure-ASCII text (3.3.0 reaches TOML_UNREACHABLE on some
// non-ASCII characters: found three times by the config fuzz target). Non-ASCII in basic strings
// becomes \U escapes (same value), in comments '?', elsewhere it is refused with its line.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>

#include "config/registry.hpp"
#include "config/toml_guard.hpp"

namespace rp::config {
namespace {

struct Case {
    const char* name;
    std::string text;
    std::optional<int> line;  // the line refused, or none
};

// The line refused, or none (and then the text handed to toml++ is pure ASCII).
std::optional<int> non_ascii_outside_strings(const std::string& text) {
    auto r = ascii_toml(text);
    if (const auto* refused = std::get_if<NonAsciiRefused>(&r)) return refused->line;
    const auto& out = std::get<std::string>(r);
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        << "not ASCII: " << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), std::count(text.begin(), text.end(), '\n'))
        << "lines must be kept";
    return std::nullopt;
}

TEST(TomlGuard, NonAsciiOnlyInStringsAndComments) {
    const Case cases[] = {
        {"ascii", "ttl = \"30m\"\n", std::nullopt},
        {"basic string", "action = \"DEFER 4.7.1 caf\xc3\xa9\"\n", std::nullopt},
        {"escaped quote then text", "a = \"x\\\"\xc3\xa9\"\n", std::nullopt},
        {"literal string: no escape can carry it", "path = '/var/log/m\xc3\xa4il.log'\n", 1},
        {"comment", "# caf\xc3\xa9\nttl = \"30m\"\n", std::nullopt},
        {"trailing comment", "ttl = \"30m\" # \xcb\x8b\n", std::nullopt},
        {"quoted key", "\"k\xc3\xa9y\" = 1\n", std::nullopt},
        {"multi-line basic", "a = \"\"\"\nl\xc3\xa9\n\"\"\"\n", std::nullopt},
        {"multi-line basic, quotes at its end", "a = \"\"\"x\"\"\"\"\"\nb = \"caf\xc3\xa9\"\n", std::nullopt},
        {"multi-line literal", "a = '''\n\xc3\xa9 \"\n'''\n", 2},
        {"multi-line literal, ASCII", "a = '''\nx \"\n'''\nb = \"\xc3\xa9\"\n", std::nullopt},
        {"invalid UTF-8 in a string", "a = \"\xc3\"\n", 1},
        {"overlong UTF-8 in a string", "a = \"\xc0\xaf\"\n", 1},
        {"surrogate in a string", "a = \"\xed\xa0\x80\"\n", 1},
        {"fuzz reproducer: a number's error path", "a =-\"\"\"\\C\xcb\x8b\"\"\"\n", std::nullopt},
        {"empty strings", "a = \"\"\nb = ''\n", std::nullopt},
        {"fuzz reproducer: U+02CB after a bare key", "4tl = \xcb\x8b" "0", 1},
        {"bare key", "ttl\xc3\xa9 = 1\n", 1},
        {"after a value", "ttl = \"30m\"\nmax_ttl = \"1h\" \xc2\xa0\n", 2},
        {"after a closed multi-line string", "a = \"\"\"\n\xc3\xa9\n\"\"\" \xc3\xa9\n", 3},
        {"hash inside a string is not a comment", "a = \"#\" \xc3\xa9\n", 1},
        {"unterminated string ends at the line", "a = \"x\n\xc3\xa9 = 1\n", 2},
        {"escaped newline in a multi-line string counts the line", "a = \"\"\"x\\\ny\"\"\"\n\xc3\xa9\n", 3},
        // Review: toml++ tests the character after a backslash, and the blanks after a
        // line-ending backslash, for whitespace even inside strings.
        {"non-ASCII escaped in a multi-line string", "a = \"\"\"\\\xcb\x8b\"\"\"\n", 1},
        {"non-ASCII after a line-ending backslash", "a = \"\"\"x\\\n\xcb\x8b\"\"\"\n", 2},
        {"non-ASCII after a line-ending backslash and blanks", "a = \"\"\"x\\  \n\n  \xcb\x8b\"\"\"\n", 3},
        {"non-ASCII escaped in a basic string", "a = \"\\\xcb\x8b\"\n", 1},
        {"line-ending backslash then text", "a = \"\"\"x\\\n  caf\xc3\xa9 \\\\ \\\" y\"\"\"\nb = 1\n", std::nullopt},
        {"UTF-8 BOM", "\xef\xbb\xbfttl = \"30m\"\n", std::nullopt},
        {"UTF-8 BOM, then a non-ASCII key", "\xef\xbb\xbf\xc3\xa9 = 1\n", 1},
    };
    for (const auto& c : cases) EXPECT_EQ(non_ascii_outside_strings(c.text), c.line) << c.name;
}

TEST(TomlGuard, StringValuesKeepTheirCharacters) {
    auto r = check_config_text("# r\xc3\xa9sum\xc3\xa9\nstate_dir = \"/var/lib/caf\xc3\xa9 \xf0\x9f\x93\xa7\"\n", "x.toml");
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
    EXPECT_EQ(r.config.state_dir, "/var/lib/caf\xc3\xa9 \xf0\x9f\x93\xa7");
}

TEST(TomlGuard, ParseConfigRefusesTheFuzzReproducerWithItsLine) {
    const auto r = check_config_text("ttl = \"30m\"\n4tl = \xcb\x8b" "0", "x.toml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 2);
    EXPECT_NE(r.errors[0].message.find("x.toml:2: a non-ASCII character outside a string or comment"), std::string::npos)
        << r.errors[0].message;
    EXPECT_EQ(r.errors[0].message.find('\xcb'), std::string::npos) << "the file's bytes are never quoted";
}

}  // namespace
}  // namespace rp::config
