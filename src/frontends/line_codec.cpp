#include "frontends/line_codec.hpp"

#include <optional>

#include "core/address.hpp"

namespace rp::frontends {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// An address, optionally in brackets; nothing else (no "IPv6:" tag, no names).
std::optional<core::Address> parse_client(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    return core::Address::parse(text);  // accepts "[...]" itself
}

}  // namespace

RequestLineReader::Step RequestLineReader::feed(std::string_view input) {
    if (failed_) return Step{Step::Kind::error, 0};
    if (done_) {
        line_.clear();
        done_ = false;
    }
    for (std::size_t i = 0; i < input.size(); ++i) {
        const char c = input[i];
        if (c == '\n') {
            if (!line_.empty() && line_.back() == '\r') line_.pop_back();
            done_ = true;
            return Step{Step::Kind::line, i + 1};
        }
        if (c == '\0' || line_.size() >= max_line_) {
            failed_ = true;
            line_.clear();
            return Step{Step::Kind::error, i};
        }
        line_.push_back(c);
    }
    return Step{Step::Kind::need_more, input.size()};
}

bool RequestLineReader::finish() {
    if (failed_ || done_) return false;
    done_ = true;
    return !line_.empty();
}

void RequestLineReader::reset() {
    line_.clear();
    done_ = false;
    failed_ = false;
}

std::string_view readsocket_answer(std::string_view line, const PermitOracle& oracle, bool& permitted) {
    permitted = false;
    const auto a = parse_client(trim(line));
    if (!a || !oracle.check(*a).permitted()) return "no";
    permitted = true;
    return "yes";
}

void opensmtpd_answer(std::string_view line, const PermitOracle& oracle, std::string& out, bool& permitted) {
    permitted = false;
    const auto space = line.find(' ');
    const auto a = space == std::string_view::npos ? std::nullopt : parse_client(line.substr(space + 1));
    if (!a || !oracle.check(*a).permitted()) {
        out.append("NOTFOUND \n");
        return;
    }
    permitted = true;
    out.append("OK ");
    out.append(a->to_string());
    out.push_back('\n');
}

}  // namespace rp::frontends
