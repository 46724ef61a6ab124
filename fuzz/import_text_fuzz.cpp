// Fuzz target for the text parsers of `relaypermit import` and allow_file: a sendmail access
// file (the SMTP-after-POP patch's), smtp-poplock's static_allowed, an allow_file, and one SQL
// time column. Nothing may crash; counts add up; what static_allowed accepts is a network that
// allow_file accepts too (its printed lines are meant for an allow_file).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/allow_file.hpp"
#include "imports/import_parsers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto access = rp::imports::parse_sendmail_access(text);
    for (const auto& e : access.entries)
        if (e.kind != rp::imports::EntryTime::none) std::abort();
    const auto stat = rp::imports::parse_static_allowed(text);
    std::string lines;
    for (const auto& n : stat.networks) lines += n.to_string() + "\n";
    auto back = rp::config::parse_allow_file(lines, "fuzz");
    if (!back || back->size() != stat.networks.size()) std::abort();
    (void)rp::config::parse_allow_file(text, "fuzz");
    (void)rp::imports::parse_sql_time(text);
    return 0;
}
