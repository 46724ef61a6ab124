#include "frontends/netstring_codec.hpp"

#include <algorithm>
#include <array>

namespace rp::frontends {
namespace {

constexpr std::size_t k_max_length_digits = 9;  // far beyond any max_payload we accept

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::optional<core::Address> strip_brackets_and_parse(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    // Sendmail writes IPv6 as "IPv6:..." (also inside brackets); Postfix never does. What
    // follows must be IPv6 text ("::ffff:1.2.3.4" is fine and names the IPv4 client).
    if (istarts_with(text, "ipv6:")) {
        text.remove_prefix(5);
        if (text.find(':') == std::string_view::npos) return std::nullopt;
        return core::Address::parse(text);
    }
    if (text.empty() || text.front() == '[') return std::nullopt;
    return core::Address::parse(text);
}

}  // namespace

std::string_view describe(NetstringError error) {
    switch (error) {
        case NetstringError::none: return "no error";
        case NetstringError::bad_length: return "bad netstring length";
        case NetstringError::too_long: return "netstring longer than the limit";
        case NetstringError::missing_comma: return "netstring not ended by ','";
    }
    return "unknown error";
}

void NetstringParser::reset() {
    state_ = State::length;
    length_ = 0;
    digits_ = 0;
    done_ = false;
    error_ = NetstringError::none;
    payload_.clear();
}

NetstringParser::Step NetstringParser::fail(NetstringError e, std::size_t consumed) {
    state_ = State::failed;
    error_ = e;
    payload_.clear();
    return Step{Step::Kind::error, consumed};
}

NetstringParser::Step NetstringParser::feed(std::string_view input) {
    if (state_ == State::failed) return Step{Step::Kind::error, 0};
    if (done_) {
        payload_.clear();
        done_ = false;
    }
    std::size_t i = 0;
    while (i < input.size()) {
        switch (state_) {
            case State::length: {
                const char c = input[i];
                if (c == ':') {
                    if (digits_ == 0) return fail(NetstringError::bad_length, i);
                    ++i;
                    state_ = length_ == 0 ? State::comma : State::payload;
                    payload_.reserve(length_);
                    break;
                }
                if (c < '0' || c > '9') return fail(NetstringError::bad_length, i);
                if (digits_ == 1 && length_ == 0) return fail(NetstringError::bad_length, i);  // leading zero
                if (++digits_ > k_max_length_digits) return fail(NetstringError::too_long, i);
                length_ = length_ * 10 + static_cast<std::size_t>(c - '0');
                if (length_ > max_payload_) return fail(NetstringError::too_long, i);
                ++i;
                break;
            }
            case State::payload: {
                const std::size_t want = length_ - payload_.size();
                const std::size_t take = std::min(want, input.size() - i);
                payload_.append(input.substr(i, take));
                i += take;
                if (payload_.size() == length_) state_ = State::comma;
                break;
            }
            case State::comma:
                if (input[i] != ',') return fail(NetstringError::missing_comma, i);
                ++i;
                state_ = State::length;
                length_ = 0;
                digits_ = 0;
                done_ = true;
                return Step{Step::Kind::payload, i};
            case State::failed:
                return Step{Step::Kind::error, i};
        }
    }
    return Step{Step::Kind::need_more, i};
}

void append_netstring(std::string_view payload, std::string& out) {
    std::array<char, 24> digits{};
    std::size_t n = 0;
    std::size_t len = payload.size();
    do {
        digits[n++] = static_cast<char>('0' + len % 10);
        len /= 10;
    } while (len != 0);
    while (n > 0) out.push_back(digits[--n]);
    out.push_back(':');
    out.append(payload);
    out.push_back(',');
}

std::optional<core::Address> sendmail_connect_address(std::string_view key) {
    constexpr std::string_view tag = "connect:";
    if (!istarts_with(key, tag)) return std::nullopt;
    std::string_view rest = key.substr(tag.size());
    // IPv6 comes tagged ("connect:ipv6:..."); untagged text must be a dotted quad.
    std::string_view inner = rest;
    if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') inner = inner.substr(1, inner.size() - 2);
    if (!istarts_with(inner, "ipv6:") && inner.find(':') != std::string_view::npos) return std::nullopt;
    return strip_brackets_and_parse(rest);
}

StaticAnswers make_static_answers(const std::vector<std::pair<std::string, std::string>>& records) {
    StaticAnswers out;
    out.reserve(records.size());
    for (const auto& [key, value] : records) {
        if (key.empty() || key.size() > max_static_key) continue;
        out.try_emplace(key, "OK " + value);
    }
    return out;
}

std::string_view socketmap_answer(std::string_view request, const PermitOracle& oracle, bool& permitted,
                                  const StaticAnswers* statics) {
    constexpr std::string_view k_notfound = "NOTFOUND ";
    permitted = false;
    const auto space = request.find(' ');
    if (space == std::string_view::npos) return k_notfound;
    const std::string_view name = request.substr(0, space);
    const std::string_view key = request.substr(space + 1);
    if (key.empty()) return k_notfound;
    if (iequals(name, "access")) {
        const bool have_statics = statics != nullptr && !statics->empty();
        if (key.size() > (have_statics ? max_static_key : 128)) return k_notfound;
        // Lowercase a copy (Sendmail already does unless the K line has -f).
        std::array<char, max_static_key> buf{};
        for (std::size_t i = 0; i < key.size(); ++i) buf[i] = lower(key[i]);
        const std::string_view lkey(buf.data(), key.size());
        if (have_statics) {
            // The admin's entry for this exact key wins (domains, from:/to: tags, networks).
            if (auto it = statics->find(std::string(lkey)); it != statics->end()) return it->second;
        }
        if (lkey.size() > 128) return k_notfound;  // no address text is that long
        const auto a = sendmail_connect_address(lkey);
        if (!a || !oracle.check(*a).permitted()) return k_notfound;
        permitted = true;
        return "OK RELAY";
    }
    if (key.size() > 128) return k_notfound;  // no address text is that long
    // Postfix: the key is exactly what smtpd asks (client name, then address); never "ipv6:".
    if (istarts_with(key, "ipv6:") || istarts_with(key, "[ipv6:")) return k_notfound;
    const auto a = strip_brackets_and_parse(key);
    if (!a || !oracle.check(*a).permitted()) return k_notfound;
    permitted = true;
    return "OK OK";
}

}  // namespace rp::frontends
