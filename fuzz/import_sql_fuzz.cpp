// Fuzz target for the import parsers of rows and names (imports/import_parsers.hpp) that the
// other import targets do not reach: parse_sql_rows (rows of a database another program writes)
// and parse_relay_ctrl_entry (a directory entry's name). The input is cut into rows at '\n' and
// into columns at '\t'; a column "\N" is SQL NULL (as mysql's batch output writes it).
// Checks: every row is an entry or counted malformed; an entry only for a row whose first column
// is an address (no permit for a row without one) and whose time column parses; its time is
// what parse_sql_time gives, within 1970..2^40 s; its user is at most 256 bytes without
// control characters; a relay-ctrl entry is only for a name that is exactly an address.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "imports/import_parsers.hpp"

namespace {

using Row = std::vector<std::optional<std::string>>;

std::vector<Row> split_rows(std::string_view text) {
    std::vector<Row> rows;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        Row row;
        for (;;) {
            const auto tab = line.find('\t');
            const auto col = line.substr(0, tab);
            if (col == "\\N") row.emplace_back(std::nullopt);
            else row.emplace_back(std::string(col));
            if (tab == std::string_view::npos) break;
            line.remove_prefix(tab + 1);
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

void check_time(rp::core::Time t) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    // The parsers' own bound (k_max_epoch, 2^40 s); never before 1970.
    if (s < 0 || s > (std::int64_t{1} << 40)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rp::imports;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto rows = split_rows(text);
    const auto batch = parse_sql_rows(rows);
    if (batch.entries.size() + batch.malformed != rows.size()) std::abort();
    if (batch.examples.size() > k_max_examples || batch.skipped != 0) std::abort();
    std::size_t next = 0;
    for (const auto& row : rows) {
        const bool usable = row.size() >= 2 && row[0] && row[1] && parse_import_address(*row[0]) && parse_sql_time(*row[1]);
        if (!usable) continue;
        if (next >= batch.entries.size()) std::abort();
        const auto& e = batch.entries[next++];
        if (e.kind != EntryTime::login || e.ip != *parse_import_address(*row[0]) || e.time != *parse_sql_time(*row[1]))
            std::abort();
        check_time(e.time);
        if (e.user.size() > 256) std::abort();
        for (char c : e.user)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
    }
    if (next != batch.entries.size()) std::abort();
    if (const auto t = parse_sql_time(text)) check_time(*t);

    const auto mtime = rp::core::from_unix_seconds(1'800'000'000);
    if (const auto e = parse_relay_ctrl_entry(text, mtime)) {
        const auto a = rp::core::Address::parse(text);
        if (!a || e->ip != *a || e->kind != EntryTime::login || e->time != mtime || !e->user.empty()) std::abort();
        if (text.find('\0') != std::string_view::npos) std::abort();
    }
    return 0;
}
