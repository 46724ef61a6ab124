// ArgParser: the admin tool's command table and its parsing.
//
// One table (commands.cpp) lists every subcommand with its options and positionals; the same
// table produces --help. Options may appear anywhere after the subcommand and before "--";
// everything after "--" is kept verbatim (the program to exec for --chain modes).
// Written here rather than with CLI11 2.1 because the contract mixes optional positionals,
// repeatable options and a "--" tail, which that version's parser does not keep apart.
// Thread-safety: plain values.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace rp::cli {

struct OptionSpec {
    std::string name;     // "--config"
    std::string value;    // metavariable ("FILE"); empty for a flag
    std::string help;
    bool repeatable = false;
};

struct CommandSpec {
    std::string name;         // "check", "config check"
    std::string positionals;  // usage text for positionals, e.g. "IP"
    int min_positionals = 0;
    int max_positionals = 0;  // -1 = any number
    std::vector<OptionSpec> options;
    std::string summary;
    std::string other_form{};  // a second usage line, e.g. "--chain [--config FILE] -- PROGRAM [ARGS]"
};

struct ParsedArgs {
    std::map<std::string, std::vector<std::string>> options;  // flags map to {""}
    std::vector<std::string> positionals;
    std::vector<std::string> tail;  // after "--"
    bool has(const std::string& opt) const { return options.count(opt) > 0; }
    std::string get(const std::string& opt, const std::string& fallback = "") const {
        auto it = options.find(opt);
        return it == options.end() || it->second.empty() ? fallback : it->second.back();
    }
};

core::Result<ParsedArgs> parse_args(const CommandSpec& spec, const std::vector<std::string>& args);
std::string usage(const CommandSpec& spec);

}  // namespace rp::cli
