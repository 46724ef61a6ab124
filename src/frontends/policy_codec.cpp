#include "frontends/policy_codec.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

namespace rp::frontends {
namespace {

constexpr std::string_view k_request_type = "smtpd_access_policy";
constexpr std::string_view k_reply_ok = "action=OK\n\n";
constexpr std::string_view k_reply_dunno = "action=DUNNO\n\n";

// The index of the first byte in [i, n) that ends a name ('=', '\n', NUL) or a value ('\n',
// NUL), or n. Lines are short (~20 bytes), so memchr's call overhead dominates; this reads 8
// bytes at a time (SWAR: a byte of x is zero iff its bit 7 is set in zero_bytes(x); borrows only
// flag bytes above a true zero, so on little-endian the lowest flag is exact).
template <bool Name>
std::size_t scan(const char* buf, std::size_t i, std::size_t n) {
    if constexpr (std::endian::native == std::endian::little) {
        constexpr std::uint64_t ones = 0x0101010101010101u;
        constexpr std::uint64_t highs = 0x8080808080808080u;
        const auto zero_bytes = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
        for (; i + 8 <= n; i += 8) {
            std::uint64_t v;
            std::memcpy(&v, buf + i, 8);
            std::uint64_t hit = zero_bytes(v) | zero_bytes(v ^ (ones * '\n'));
            if constexpr (Name) hit |= zero_bytes(v ^ (ones * '='));
            if (hit != 0) return i + static_cast<std::size_t>(std::countr_zero(hit) / 8);
        }
    }
    for (; i < n; ++i) {
        const char c = buf[i];
        if (c == '\n' || c == '\0' || (Name && c == '=')) return i;
    }
    return n;
}

}  // namespace

std::string_view describe(PolicyError error) {
    switch (error) {
        case PolicyError::none: return "no error";
        case PolicyError::line_without_equals: return "line without '='";
        case PolicyError::empty_name: return "attribute with an empty name";
        case PolicyError::nul_byte: return "NUL byte in the request";
        case PolicyError::too_many_attributes: return "too many attributes";
        case PolicyError::request_too_large: return "request too large";
        case PolicyError::bad_request_type: return "request type missing or not smtpd_access_policy";
    }
    return "unknown error";
}

std::optional<core::Address> PolicyRequest::client() const {
    if (client_address.empty()) return std::nullopt;
    return core::Address::parse(client_address);
}

template <std::size_t N>
void PolicyParser::Value<N>::append(std::string_view s) {
    if (overlong) return;
    if (s.size() > N - size) {
        overlong = true;
        return;
    }
    std::memcpy(data.data() + size, s.data(), s.size());
    size = static_cast<std::uint8_t>(size + s.size());
}

void PolicyParser::reset() {
    state_ = State::line_start;
    error_ = PolicyError::none;
    start_request();
}

void PolicyParser::start_request() {
    request_bytes_ = 0;
    attributes_ = 0;
    name_size_ = 0;
    field_ = Field::other;
    request_type_.forget();
    protocol_state_.forget();
    client_address_.forget();
    recipient_count_.forget();
}

PolicyParser::Step PolicyParser::fail(PolicyError e, std::size_t consumed) {
    state_ = State::failed;
    error_ = e;
    return Step{Step::Kind::error, consumed};
}

PolicyParser::Step PolicyParser::finish_request(std::size_t consumed) {
    if (!request_type_.present || request_type_.view() != k_request_type)
        return fail(PolicyError::bad_request_type, consumed);
    // The views keep pointing at the value buffers: they are overwritten only by the next feed.
    request_.protocol_state = protocol_state_.view();
    request_.client_address = client_address_.view();
    request_.recipient_count = recipient_count_.view();
    request_.attribute_count = attributes_;
    start_request();
    state_ = State::line_start;
    return Step{Step::Kind::request, consumed};
}

void PolicyParser::append_name(std::string_view part) {
    if (name_size_ < name_.size()) {
        const std::size_t take = std::min(part.size(), name_.size() - name_size_);
        std::memcpy(name_.data() + name_size_, part.data(), take);
    }
    name_size_ += part.size();
}

void PolicyParser::append_value(std::string_view part) {
    switch (field_) {
        case Field::client_address: client_address_.append(part); break;
        case Field::protocol_state: protocol_state_.append(part); break;
        case Field::request: request_type_.append(part); break;
        case Field::recipient_count: recipient_count_.append(part); break;
        case Field::other: break;
    }
}

void PolicyParser::end_value() {
    switch (field_) {
        case Field::client_address: client_address_.drop_trailing_cr(); break;
        case Field::protocol_state: protocol_state_.drop_trailing_cr(); break;
        case Field::request: request_type_.drop_trailing_cr(); break;
        case Field::recipient_count: recipient_count_.drop_trailing_cr(); break;
        case Field::other: break;
    }
}

// The name is complete (an '=' was seen): count the attribute and decide whether to keep it.
// `name` is the name, or its first name_.size() bytes when it was collected (name_size_ > 0 is
// then its real size).
std::optional<PolicyError> PolicyParser::start_value(std::string_view name) {
    const std::size_t size = std::max(name.size(), name_size_);
    if (size == 0) return PolicyError::empty_name;
    if (++attributes_ > limits_.max_attributes) return PolicyError::too_many_attributes;
    field_ = Field::other;
    if (size == 7 || size == 14 || size == 15) {
        if (name == "client_address") field_ = Field::client_address, client_address_.clear();
        else if (name == "protocol_state") field_ = Field::protocol_state, protocol_state_.clear();
        else if (name == "request") field_ = Field::request, request_type_.clear();
        else if (name == "recipient_count") field_ = Field::recipient_count, recipient_count_.clear();
    }
    state_ = State::value;
    return std::nullopt;
}

PolicyParser::Step PolicyParser::feed(std::string_view input) {
    if (state_ == State::failed) return Step{Step::Kind::error, 0};
    // Never look at more bytes than the request may still have: the limit check is then free.
    const std::size_t budget = limits_.max_request_bytes - request_bytes_;
    const std::size_t n = std::min(input.size(), budget);
    const char* const buf = input.data();
    std::size_t i = 0;
    // One line (or the part of it in this input) per iteration. Errors are found in stream
    // order (the first offending byte wins), so where the input is split never changes the
    // verdict.
    while (i < n) {
        if (state_ == State::line_start) {
            if (buf[i] == '\n') return finish_request(i + 1);
            state_ = State::name;
            name_size_ = 0;
        }
        if (state_ == State::name) {
            const std::size_t name_end = scan<true>(buf, i, n);
            const std::string_view part(buf + i, name_end - i);
            if (name_end == n) {
                append_name(part);
                return need_more(n, input.size());
            }
            const char c = buf[name_end];
            if (c == '\0') return fail(PolicyError::nul_byte, name_end);
            if (c == '\n') {
                append_name(part);
                if (name_size_ == 1 && name_[0] == '\r') return finish_request(name_end + 1);  // "\r\n"
                return fail(PolicyError::line_without_equals, name_end);
            }
            // '=': a name wholly in this input is classified in place (no copy); the start of a
            // name split across inputs was collected in name_.
            std::string_view name = part;
            if (name_size_ > 0) {
                append_name(part);
                name = std::string_view(name_.data(), std::min(name_size_, name_.size()));
            }
            if (const auto e = start_value(name)) return fail(*e, name_end);
            i = name_end + 1;
        }
        // State::value
        const std::size_t value_end = scan<false>(buf, i, n);
        append_value(std::string_view(buf + i, value_end - i));
        if (value_end == n) return need_more(n, input.size());
        if (buf[value_end] == '\0') return fail(PolicyError::nul_byte, value_end);
        end_value();
        state_ = State::line_start;
        i = value_end + 1;
    }
    return need_more(n, input.size());
}

// Every one of the n bytes allowed was consumed without completing the request.
PolicyParser::Step PolicyParser::need_more(std::size_t n, std::size_t input_size) {
    if (n < input_size) return fail(PolicyError::request_too_large, n);
    request_bytes_ += n;
    return Step{Step::Kind::need_more, n};
}

std::string_view policy_reply(bool permitted) { return permitted ? k_reply_ok : k_reply_dunno; }

std::uint64_t PolicyRequest::recipients() const {
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(recipient_count.data(), recipient_count.data() + recipient_count.size(), n);
    return ec == std::errc() && ptr == recipient_count.data() + recipient_count.size() ? n : 0;
}

bool policy_answer(const PolicyRequest& request, const PermitOracle& oracle, std::string& out) {
    const auto client = request.client();
    if (!client) {
        out.append(k_reply_dunno);
        return false;
    }
    const auto v = oracle.check(*client);
    if (v.kind == Verdict::Kind::permit) {
        if (const auto action = oracle.spend(*client, v, request.protocol_state, request.recipients()); !action.empty()) {
            out.append("action=").append(action).append("\n\n");
            return false;
        }
    }
    out.append(policy_reply(v.permitted()));
    return v.permitted();
}

bool policy_permits(const PolicyRequest& request, const PermitOracle& oracle) {
    const auto client = request.client();
    return client.has_value() && oracle.check(*client).permitted();
}

}  // namespace rp::frontends
