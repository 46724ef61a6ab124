// util/log escaping: one event, one line; untrusted text cannot forge a record (issue 12 item 11).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "util/log.hpp"

namespace rp {
namespace {

struct EscapeRow {
    std::string in;
    std::string text;   // escape_text
    std::string value;  // escape_value
};

TEST(LogEscape, Table) {
    using namespace std::string_literals;
    const std::vector<EscapeRow> rows = {
        {"alice", "alice", "alice"},
        {"", "", "\"\""},
        {"x\nrevoke ip=192.0.2.9", "x\\nrevoke ip=192.0.2.9", "\"x\\nrevoke ip=192.0.2.9\""},
        {"bob\n<3>fake", "bob\\n<3>fake", "bob\\n<3>fake"},
        {"<3>at start", "<3>at start", "\"<3>at start\""},
        {"a\rb", "a\\rb", "a\\rb"},
        {"a\tb", "a\\tb", "a\\tb"},
        {"nul\0byte"s, "nul\\x00byte", "nul\\x00byte"},
        {"esc\x1b[31mred", "esc\\x1b[31mred", "esc\\x1b[31mred"},
        {"del\x7f", "del\\x7f", "del\\x7f"},
        {"back\\slash", "back\\slash", "back\\\\slash"},
        {"lit\\nnot-a-newline", "lit\\nnot-a-newline", "lit\\\\nnot-a-newline"},
        {"quote\"d", "quote\"d", "\"quote\\\"d\""},
        {"k=v", "k=v", "\"k=v\""},
        {"jos\xc3\xa9", "jos\xc3\xa9", "jos\xc3\xa9"},                        // valid UTF-8 stays
        {"\xe2\x82\xac euro", "\xe2\x82\xac euro", "\"\xe2\x82\xac euro\""},  // 3 bytes
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},         // 4 bytes
        {"bad\xff", "bad\\xff", "bad\\xff"},
        {"cut\xc3", "cut\\xc3", "cut\\xc3"},
        {"overlong\xc0\xaf", "overlong\\xc0\\xaf", "overlong\\xc0\\xaf"},
        {"surrogate\xed\xa0\x80", "surrogate\\xed\\xa0\\x80", "surrogate\\xed\\xa0\\x80"},
        {"nel\xc2\x85", "nel\\xc2\\x85", "nel\\xc2\\x85"},            // U+0085 NEXT LINE
        {"ls\xe2\x80\xa8", "ls\\xe2\\x80\\xa8", "ls\\xe2\\x80\\xa8"},  // U+2028 LINE SEPARATOR
        // bidirectional controls and invisible format characters: they reorder or hide the rest
        // of a line on a terminal
        {"rlo\xe2\x80\xae", "rlo\\xe2\\x80\\xae", "rlo\\xe2\\x80\\xae"},  // U+202E RIGHT-TO-LEFT OVERRIDE
        {"lre\xe2\x80\xaa", "lre\\xe2\\x80\\xaa", "lre\\xe2\\x80\\xaa"},  // U+202A
        {"zwsp\xe2\x80\x8b", "zwsp\\xe2\\x80\\x8b", "zwsp\\xe2\\x80\\x8b"},  // U+200B ZERO WIDTH SPACE
        {"rlm\xe2\x80\x8f", "rlm\\xe2\\x80\\x8f", "rlm\\xe2\\x80\\x8f"},  // U+200F
        {"wj\xe2\x81\xa0", "wj\\xe2\\x81\\xa0", "wj\\xe2\\x81\\xa0"},  // U+2060 WORD JOINER
        {"pdi\xe2\x81\xa9", "pdi\\xe2\\x81\\xa9", "pdi\\xe2\\x81\\xa9"},  // U+2069
        {"bom\xef\xbb\xbf", "bom\\xef\\xbb\\xbf", "bom\\xef\\xbb\\xbf"},  // U+FEFF
        {"alm\xd8\x9c", "alm\\xd8\\x9c", "alm\\xd8\\x9c"},  // U+061C ARABIC LETTER MARK
        {"\xe2\x80\x90 \xe2\x81\xa5 \xd8\x9b", "\xe2\x80\x90 \xe2\x81\xa5 \xd8\x9b",  // their neighbours stay
         "\"\xe2\x80\x90 \xe2\x81\xa5 \xd8\x9b\""},
    };
    for (const auto& r : rows) {
        EXPECT_EQ(util::escape_text(r.in), r.text) << r.in;
        EXPECT_EQ(util::escape_value(r.in), r.value) << r.in;
        EXPECT_EQ(fmt::format("{}", util::esc(r.in)), r.value);
        for (const auto* out : {&r.text, &r.value})
            for (const char c : *out) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << r.in;
        EXPECT_EQ(util::escape_text(r.value), r.value) << "esc() output passes log_line unchanged";
    }
}

// One column of tab-separated output (relaypermit scan's USER): as a value, never quoted.
TEST(LogEscape, Columns) {
    using namespace std::string_literals;
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"alice", "alice"},          {"", ""},
        {"a b", "a b"},              {"k=v", "k=v"},
        {"quote\"d", "quote\"d"},    {"a\tb", "a\\tb"},
        {"a\\tb", "a\\\\tb"},       {"x\ny", "x\\ny"},
        {"nul\0"s, "nul\\x00"},     {"jos\xc3\xa9", "jos\xc3\xa9"},
        {"rlo\xe2\x80\xae", "rlo\\xe2\\x80\\xae"},
    };
    auto column = [](std::string_view s) {
        std::string out = "x\t";  // appended to what the row holds so far
        util::append_column(out, s);
        return out.substr(2);
    };
    for (const auto& [in, out] : rows) {
        EXPECT_EQ(column(in), out) << in;
        EXPECT_EQ(out.find_first_of("\t\r\n"), std::string::npos) << in;
    }
    EXPECT_NE(column("a\tb"), column("a\\tb"));
    EXPECT_NE(column("\x1b"), column("\\x1b"));
}

TEST(LogEscape, ValuesStayDistinct) {
    // Injective: a value that looks like an escape cannot pass for another value.
    EXPECT_NE(util::escape_value("a\nb"), util::escape_value("a\\nb"));
    EXPECT_NE(util::escape_value("a b"), util::escape_value("\"a b\""));
    EXPECT_NE(util::escape_value("\x01"), util::escape_value("\\x01"));
}

// Captures what log_line writes to stderr.
class StderrCapture {
public:
    StderrCapture() {
        EXPECT_EQ(::pipe2(pipe_, O_CLOEXEC), 0);
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(pipe_[1], STDERR_FILENO);
    }
    std::string finish() {
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(pipe_[1]);
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(pipe_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        ::close(pipe_[0]);
        return out;
    }

private:
    int pipe_[2] = {-1, -1};
    int saved_ = -1;
};

TEST(LogEscape, EveryMessageIsOneLine) {
    StderrCapture cap;
    const std::string user = "x\nrevoke ip=192.0.2.9";
    util::log(util::Level::error, "grant ip=192.0.2.1 user={} raw={}", util::esc(user), "a\n<3>b\r\x1b");
    util::log_line(util::Level::error, std::string(util::k_max_message + 100, 'x') + "\n<0>tail");
    const std::string out = cap.finish();
    std::vector<std::string> lines;
    for (std::size_t i = 0, nl; (nl = out.find('\n', i)) != std::string::npos; i = nl + 1) lines.push_back(out.substr(i, nl - i));
    ASSERT_EQ(lines.size(), 2u) << out;
    EXPECT_NE(lines[0].find("user=\"x\\nrevoke ip=192.0.2.9\" raw=a\\n<3>b\\r\\x1b"), std::string::npos) << lines[0];
    EXPECT_LT(lines[1].size(), util::k_max_message + 100);
    EXPECT_NE(lines[1].find("bytes cut]"), std::string::npos);
    EXPECT_EQ(lines[1].find("<0>tail"), std::string::npos) << "what is cut is not written";
}

}  // namespace
}  // namespace rp
