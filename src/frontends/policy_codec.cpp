#include "frontends/policy_codec.hpp"

#include <algorithm>
#include <cstring>

namespace rp::frontends {
namespace {

constexpr std::string_view k_request_type = "smtpd_access_policy";
constexpr std::string_view k_reply_ok = "action=OK\n\n";
constexpr std::string_view k_reply_dunno = "action=DUNNO\n\n";

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
    request_.attribute_count = attributes_;
    start_request();
    state_ = State::line_start;
    return Step{Step::Kind::request, consumed};
}

PolicyParser::Step PolicyParser::feed(std::string_view input) {
    if (state_ == State::failed) return Step{Step::Kind::error, 0};
    // Never look at more bytes than the request may still have: the limit check is then free.
    const std::size_t budget = limits_.max_request_bytes - request_bytes_;
    const std::size_t n = std::min(input.size(), budget);
    const char* const buf = input.data();
    std::size_t i = 0;
    while (i < n) {
        switch (state_) {
            case State::line_start:
                if (buf[i] == '\n') return finish_request(i + 1);
                state_ = State::name;
                name_size_ = 0;
                [[fallthrough]];
            case State::name: {
                std::size_t j = i;
                while (j < n && buf[j] != '=' && buf[j] != '\n' && buf[j] != '\0') ++j;
                for (std::size_t k = i; k < j; ++k) {  // names are short: a byte loop is fine
                    if (name_size_ < name_.size()) name_[name_size_] = buf[k];
                    ++name_size_;
                }
                if (j == n) {
                    i = n;
                    break;
                }
                if (buf[j] == '\0') return fail(PolicyError::nul_byte, j);
                if (buf[j] == '\n') {
                    if (name_size_ == 1 && name_[0] == '\r') return finish_request(j + 1);  // "\r\n"
                    return fail(PolicyError::line_without_equals, j);
                }
                if (name_size_ == 0) return fail(PolicyError::empty_name, j);
                if (++attributes_ > limits_.max_attributes) return fail(PolicyError::too_many_attributes, j);
                const std::string_view name(name_.data(), std::min(name_size_, name_.size()));
                field_ = Field::other;
                if (name_size_ <= name_.size()) {
                    if (name == "client_address") field_ = Field::client_address, client_address_.clear();
                    else if (name == "protocol_state") field_ = Field::protocol_state, protocol_state_.clear();
                    else if (name == "request") field_ = Field::request, request_type_.clear();
                }
                state_ = State::value;
                i = j + 1;
                break;
            }
            case State::value: {
                const void* nl = std::memchr(buf + i, '\n', n - i);
                const std::size_t j = nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - buf) : n;
                if (std::memchr(buf + i, '\0', j - i) != nullptr) return fail(PolicyError::nul_byte, i);
                const std::string_view chunk(buf + i, j - i);
                switch (field_) {
                    case Field::client_address: client_address_.append(chunk); break;
                    case Field::protocol_state: protocol_state_.append(chunk); break;
                    case Field::request: request_type_.append(chunk); break;
                    case Field::other: break;
                }
                if (nl == nullptr) {
                    i = n;
                    break;
                }
                switch (field_) {
                    case Field::client_address: client_address_.drop_trailing_cr(); break;
                    case Field::protocol_state: protocol_state_.drop_trailing_cr(); break;
                    case Field::request: request_type_.drop_trailing_cr(); break;
                    case Field::other: break;
                }
                state_ = State::line_start;
                i = j + 1;
                break;
            }
            case State::failed: return Step{Step::Kind::error, 0};
        }
    }
    if (n < input.size()) return fail(PolicyError::request_too_large, n);
    request_bytes_ += n;
    return Step{Step::Kind::need_more, n};
}

std::string_view policy_reply(bool permitted) { return permitted ? k_reply_ok : k_reply_dunno; }

bool policy_permits(const PolicyRequest& request, const PermitOracle& oracle) {
    const auto client = request.client();
    return client.has_value() && oracle.check(*client).permitted();
}

}  // namespace rp::frontends
