// Fuzz target for the line protocols (Exim readsocket, OpenSMTPD table-socketmap): the input is
// fed to RequestLineReader in chunks whose size the first byte chooses; every line (and the
// unterminated rest at EOF) is answered both ways. Checks the reader's contract (consumed <=
// input, lines within the limit and without LF, errors stick), that readsocket replies are
// exactly "yes"/"no", that table replies are one line starting "OK " or "NOTFOUND ", and that a
// split feed gives the same transcript as a whole one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "frontends/line_codec.hpp"
#include "chunked_feed.hpp"

namespace {

using rp::frontends::RequestLineReader;

using rp::fuzz::OddOracle;

void answer(std::string_view line, std::string& transcript) {
    static const OddOracle oracle;
    bool permitted = false;
    const auto yn = rp::frontends::readsocket_answer(line, oracle, permitted);
    if (!(yn == "yes" && permitted) && !(yn == "no" && !permitted)) std::abort();
    std::string table;
    rp::frontends::opensmtpd_answer(line, oracle, table, permitted);
    if (table.empty() || table.back() != '\n' || table.find('\n') != table.size() - 1) std::abort();
    if (permitted != std::string_view(table).starts_with("OK ")) std::abort();
    if (!permitted && table != "NOTFOUND \n") std::abort();
    transcript += yn;
    transcript += table;
}

std::string run(std::string_view data, std::size_t chunk, std::size_t max) {
    RequestLineReader r(max);
    std::string transcript;
    const bool fed = rp::fuzz::feed_in_chunks(data, chunk, r, "1\n", [&] {
        if (r.line().size() > max || r.line().find('\n') != std::string_view::npos) std::abort();
        answer(r.line(), transcript);
    });
    if (!fed) return transcript + "error";
    if (r.finish()) {
        transcript += "eof:";
        answer(r.line(), transcript);
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto in = rp::fuzz::split_control_byte(data, size);
    const std::size_t max = in.default_limits ? 4096 : 48;
    if (run(in.bytes, in.chunk, max) != run(in.bytes, in.bytes.size() + 1, max)) std::abort();
    return 0;
}
