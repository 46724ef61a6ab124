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

namespace {

using rp::frontends::RequestLineReader;

class OddOracle final : public rp::frontends::PermitOracle {
public:
    rp::frontends::Verdict check(const rp::core::Address& a) const override {
        rp::frontends::Verdict v;
        if ((a.bytes()[0] & 1) != 0) v.kind = rp::frontends::Verdict::Kind::permit;
        return v;
    }
};

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
    while (!data.empty()) {
        std::string_view in = data.substr(0, chunk);
        data.remove_prefix(in.size());
        while (!in.empty()) {
            const auto s = r.feed(in);
            if (s.consumed > in.size()) std::abort();
            in.remove_prefix(s.consumed);
            if (s.kind == RequestLineReader::Step::Kind::line) {
                if (r.line().size() > max || r.line().find('\n') != std::string_view::npos) std::abort();
                answer(r.line(), transcript);
            } else if (s.kind == RequestLineReader::Step::Kind::error) {
                if (r.feed("1\n").kind != RequestLineReader::Step::Kind::error) std::abort();
                return transcript + "error";
            } else if (!in.empty()) {
                std::abort();
            }
        }
    }
    if (r.finish()) {
        transcript += "eof:";
        answer(r.line(), transcript);
    }
    return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t chunk = static_cast<std::size_t>(data[0] % 64) + 1;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t max = (data[0] & 0x80) != 0 ? 4096 : 48;
    if (run(input, chunk, max) != run(input, input.size() + 1, max)) std::abort();
    return 0;
}
