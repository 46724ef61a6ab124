// The registry of keys (config/registry.hpp): every error in one run, `config show`, the lint
// findings, and the docs that must list exactly the registry's keys: relaypermit.toml(5) and
// packaging/relaypermit.toml.example (read from the source tree, RP_SOURCE_DIR).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "config/registry.hpp"

using namespace rp::config;

namespace {

std::string read_source_file(const std::string& rel) {
    std::ifstream in(std::string(RP_SOURCE_DIR) + "/" + rel);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The man page section a table's keys belong in.
std::string section_of(const std::string& table) {
    if (table.empty()) return "TOP-LEVEL KEYS";
    if (table == "source") return "SOURCES";
    if (table == "pattern") return "PATTERNS";
    if (table == "export") return "EXPORTS";
    if (table == "policy") return "POLICY SERVICE";
    if (table == "metrics") return "METRICS AND HEALTH";
    if (table == "limits") return "LIMITS";
    return "OTHER MTA FRONT ENDS";
}

// The word a key's .TP tag shows: the other MTA front ends are tagged by their table
// ("[socketmap]", whose one common key is listen), their other keys by name ("static").
std::string man_word(const KeyListing& k) {
    if (section_of(k.table) == "OTHER MTA FRONT ENDS" && k.key.name == "listen") return "[" + k.table + "]";
    return std::string(k.key.name);
}

// Section -> the words of its .TP tags (outside .RS/.RE): "state_dir", "mode", "group", "[socketmap]".
std::map<std::string, std::set<std::string>> man_tags(const std::string& text) {
    std::map<std::string, std::set<std::string>> out;
    std::istringstream in(text);
    std::string line, section;
    bool tag_next = false;
    int nest = 0;
    while (std::getline(in, line)) {
        if (line.starts_with(".SH ")) {
            section = line.substr(4);
            section.erase(std::remove(section.begin(), section.end(), '\\'), section.end());
            section.erase(std::remove(section.begin(), section.end(), '"'), section.end());
        }
        if (line.starts_with(".RS")) ++nest;
        if (line.starts_with(".RE")) --nest;
        if (tag_next && nest == 0 && (line.starts_with(".BR ") || line.starts_with(".B "))) {
            std::istringstream words(line.substr(line.find(' ') + 1));
            std::string w;
            while (words >> w && w.find('(') == std::string::npos)
                if (std::regex_match(w, std::regex(R"([a-z_0-9]+|\[[a-z]+\])"))) out[section].insert(w);
        }
        tag_next = line.starts_with(".TP");
    }
    return out;
}

}  // namespace

TEST(ConfigRegistry, ReportsEveryErrorInOneRun) {
    auto r = check_config_text("ttl = \"30x\"\nipv6_prefix = 200\nnonsense = 1\n[[source]]\ntype = \"file\"\n"
                               "path = \"rel\"\n[policy]\nmax_clients = 0\n",
                               "x.toml");
    ASSERT_EQ(r.errors.size(), 5u);
    std::set<int> lines;
    for (const auto& e : r.errors) lines.insert(e.line);
    EXPECT_EQ(lines, (std::set<int>{1, 2, 3, 4, 8}));
    // parse_config reports the first of them, as before.
    EXPECT_EQ(parse_config("ttl = \"30x\"\nnonsense = 1\n", "x.toml").error().message,
              check_config_text("ttl = \"30x\"\nnonsense = 1\n", "x.toml").errors.front().message);
}

TEST(ConfigRegistry, EnumsParsedOnceAndComparableByName) {
    auto c = parse_config("store_outage = \"cache\"\nlog_level = \"debug\"\n[[source]]\ntype = \"dovecot-auth-policy\"\n"
                          "listen = \"127.0.0.1:0\"\n",
                          "x.toml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->store_outage, StoreOutage::cache);
    EXPECT_EQ(c->log_level, "debug");
    EXPECT_EQ(c->sources[0].type, SourceType::dovecot_auth_policy);
    EXPECT_EQ(to_string(c->sources[0].type), "dovecot-auth-policy");
    EXPECT_EQ(from_string<ExportType>("relay-ctrl-dir"), ExportType::relay_ctrl_dir);
    EXPECT_FALSE(from_string<ExportType>("nosuch"));
}

TEST(ConfigRegistry, ShowMasksSecretsAndNonDefaultShowsWhatIsSet) {
    auto r = check_config_text("ttl = \"5m\"\nstore = \"redis://u:hunter2@127.0.0.1/0\"\n[[source]]\ntype = \"file\"\n"
                               "path = \"/x\"\n",
                               "x.toml");
    ASSERT_TRUE(r.errors.empty());
    const auto all = show_config(r.config);
    EXPECT_NE(all.find("state_dir = \"/var/lib/relaypermit\"\n"), std::string::npos) << all;
    EXPECT_NE(all.find("[policy]\nlisten = [\"127.0.0.1:10031\"]\n"), std::string::npos) << all;
    EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
    const auto set = show_config(r.config, &r.set_keys);
    EXPECT_EQ(set, "store = \"redis://***@127.0.0.1/0\"\nttl = \"5m\"\n\n[[source]]\ntype = \"file\"\npath = \"/x\"\n");
}

TEST(ConfigRegistry, LintFindsSharedEndpointsAndMissingSources) {
    auto r = check_config_text("[[source]]\ntype = \"dovecot-auth-policy\"\nlisten = \"127.0.0.1:10032\"\n"
                               "[socketmap]\nlisten = [\"tcp:127.0.0.1:10032\"]\n[readsocket]\nlisten = [\"127.0.0.1:0\"]\n"
                               "[opensmtpd]\nlisten = [\"unix:/run/x\"]\n[policy]\nlisten = [\"127.0.0.1:0\"]\n",
                               "x.toml");
    ASSERT_TRUE(r.errors.empty()) << r.errors.front().message;
    auto f = lint_config(r);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_TRUE(f[0].error);
    EXPECT_NE(f[0].message.find("[socketmap]"), std::string::npos) << f[0].message;
    auto none = check_config_text("ttl = \"5m\"\n", "y.toml");
    f = lint_config(none);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_FALSE(f[0].error);
    EXPECT_NE(f[0].message.find("no [[source]]"), std::string::npos);
    EXPECT_TRUE(lint_config(check_config_text("", "z.toml")).empty());
}

// relaypermit.toml(5) documents exactly the registry's keys, each in its table's section.
TEST(ConfigDocs, ManPageListsExactlyTheRegistrysKeys) {
    const auto tags = man_tags(read_source_file("docs/man/relaypermit.toml.5"));
    std::map<std::string, std::set<std::string>> expected;
    for (const auto& k : registry_keys()) {
        const auto section = section_of(k.table);
        const std::string word = man_word(k);
        expected[section].insert(word);
        EXPECT_TRUE(tags.count(section) && tags.at(section).count(word))
            << "docs/man/relaypermit.toml.5: key '" << (k.table.empty() ? "" : k.table + ".") << k.key.name
            << "' is missing from section " << section << " (add a .TP entry: .BR " << k.key.name << " \" (" << k.key.type
            << "; ...)\")";
    }
    for (const auto& [section, words] : expected)
        for (const auto& w : tags.count(section) ? tags.at(section) : std::set<std::string>{})
            EXPECT_TRUE(words.count(w)) << "docs/man/relaypermit.toml.5: section " << section << " documents '" << w
                                        << "', which the registry (src/config/keys_*.cpp) does not have";
}

// packaging/relaypermit.toml.example shows every key (set or commented out) and no other, and
// an example of every source and export type.
TEST(ConfigDocs, ExampleListsExactlyTheRegistrysKeys) {
    const auto text = read_source_file("packaging/relaypermit.toml.example");
    ASSERT_FALSE(text.empty());
    std::set<std::string> shown, types;
    std::istringstream in(text);
    std::string line, table;
    const std::regex header(R"(^#? ?\[\[?([a-z]+)\]\]?\s*$)"), key(R"(^#? ?([a-z_0-9]+) = (.*)$)");
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_match(line, m, header)) table = m[1];
        else if (std::regex_match(line, m, key)) {
            shown.insert(table.empty() ? std::string(m[1]) : table + "." + std::string(m[1]));
            if (m[1] == "type") types.insert(table + ":" + std::string(m[2]));
        }
    }
    std::set<std::string> expected;
    for (const auto& k : registry_keys()) {
        const auto name = k.table.empty() ? std::string(k.key.name) : k.table + "." + std::string(k.key.name);
        expected.insert(name);
        EXPECT_TRUE(shown.count(name)) << "packaging/relaypermit.toml.example: key '" << name
                                       << "' is missing (show it with its default, commented out if need be)";
    }
    for (const auto& s : shown)
        EXPECT_TRUE(expected.count(s)) << "packaging/relaypermit.toml.example: '" << s << "' is not a key of the registry";
    for (const auto t : all_of<SourceType>())
        EXPECT_TRUE(types.count("source:\"" + std::string(to_string(t)) + "\"")) << "packaging/relaypermit.toml.example: no [[source]] example with type = \"" << t << "\"";
    for (const auto t : all_of<ExportType>())
        EXPECT_TRUE(types.count("export:\"" + std::string(to_string(t)) + "\"")) << "packaging/relaypermit.toml.example: no [[export]] example with type = \"" << t << "\"";
    // As shipped, the example parses.
    auto c = parse_config(text, "relaypermit.toml.example");
    EXPECT_TRUE(c) << c.error().message;
}
