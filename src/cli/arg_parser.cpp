#include "cli/arg_parser.hpp"

#include <cctype>

namespace rp::cli {

core::Result<ParsedArgs> parse_args(const CommandSpec& spec, const std::vector<std::string>& args) {
    ParsedArgs out;
    auto find = [&](const std::string& name) -> const OptionSpec* {
        for (const auto& o : spec.options)
            if (o.name == name) return &o;
        return nullptr;
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            out.tail.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) != 0))) {
            std::string name = a, value;
            bool inline_value = false;
            if (auto eq = a.find('='); eq != std::string::npos && a.starts_with("--")) {
                name = a.substr(0, eq);
                value = a.substr(eq + 1);
                inline_value = true;
            }
            const OptionSpec* o = find(name);
            if (!o) return core::make_error("unknown option " + name + " for '" + spec.name + "'");
            if (o->value.empty()) {
                if (inline_value) return core::make_error("option " + name + " takes no value");
                out.options[o->name].push_back("");
            } else {
                if (!inline_value) {
                    if (i + 1 >= args.size()) return core::make_error("option " + name + " needs a value (" + o->value + ")");
                    value = args[++i];
                }
                auto& v = out.options[o->name];
                if (!v.empty() && !o->repeatable) return core::make_error("option " + name + " given twice");
                v.push_back(value);
            }
            continue;
        }
        out.positionals.push_back(a);
    }
    const int n = static_cast<int>(out.positionals.size());
    if (n < spec.min_positionals) return core::make_error("missing " + spec.positionals + " for '" + spec.name + "'");
    if (spec.max_positionals >= 0 && n > spec.max_positionals)
        return core::make_error("unexpected argument '" + out.positionals[static_cast<std::size_t>(spec.max_positionals)] +
                                "' for '" + spec.name + "'");
    return out;
}

std::string usage(const CommandSpec& spec) {
    std::string u = "usage: relaypermit " + spec.name;
    for (const auto& o : spec.options) u += " [" + o.name + (o.value.empty() ? "" : " " + o.value) + "]";
    if (!spec.positionals.empty()) u += " " + spec.positionals;
    if (!spec.other_form.empty()) u += "\n       relaypermit " + spec.name + " " + spec.other_form;
    u += "\n  " + spec.summary + "\n";
    for (const auto& o : spec.options) {
        std::string left = "  " + o.name + (o.value.empty() ? "" : " " + o.value);
        if (left.size() < 24) left.resize(24, ' ');
        else left += "  ";
        u += left + o.help + "\n";
    }
    return u;
}

}  // namespace rp::cli
