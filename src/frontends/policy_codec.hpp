// PolicyCodec: the Postfix SMTPD policy delegation protocol (check_policy_service), as a pure
// incremental parser and a reply formatter. No I/O; PolicyFrontend does the sockets.
//
// REQUEST FORMAT
//   A request is a sequence of "name=value" lines, each ended by a newline, and the request is
//   ended by an empty line. Postfix sends about 30 attributes (~600 bytes); for example:
//
//       request=smtpd_access_policy
//       protocol_state=RCPT
//       protocol_name=ESMTP
//       client_address=192.0.2.7
//       client_name=unknown
//       helo_name=laptop.example.org
//       sender=alice@example.org
//       recipient=bob@example.net
//       ...
//       <empty line>
//
//   Parsing rules (Postfix SMTPD_POLICY_README, "Protocol description"):
//   - attribute order is irrelevant; unknown attributes are ignored;
//   - a repeated name keeps the LAST value;
//   - `request` must be present and equal `smtpd_access_policy`;
//   - `client_address` is IPv4 dotted quad or IPv6 text ("::ffff:a.b.c.d" is canonicalised to
//     IPv4 by core::Address). It may be absent or empty (Postfix sends `client_address=` in some
//     states): that is a valid request, answered DUNNO;
//   - a line without "=", an empty name, a NUL byte anywhere, more than max_attributes lines
//     or more than max_request_bytes bytes (counted up to and including the empty line) make
//     the request malformed;
//   - Postfix sends LF only. A CR right before an LF is tolerated and dropped (so a person can
//     type requests with telnet); CR elsewhere is kept as part of the value.
//   Several requests may arrive in one read (pipelining) and one request may be split across
//   reads at any byte: the parser is a byte-stream state machine.
//
// REPLY FORMAT
//   One "action=..." line, then an empty line:
//
//       action=OK\n\n        the client has a live permit or is in the static allow list
//       action=DUNNO\n\n     anything else (also: no or unparsable client_address)
//
//       action=DEFER_IF_PERMIT 4.7.1 relay permit limit reached\n\n
//                            a permit's budget is spent (`[limits] action`; PermitOracle::spend)
//
//   Without budgets the answer depends on client_address only and is given for every protocol_state: the admin
//   puts check_policy_service in smtpd_relay_restrictions (evaluated at RCPT); answering other
//   states by the address is harmless (OK there means what a permit means) and keeps the
//   service stateless. A malformed request gets no reply: "in case of trouble the policy
//   server must not send a reply. Instead the server must log a warning and disconnect."
//
// Thread-safety: a PolicyParser is a value owned by one connection; the functions are pure.
// Security: the bytes are untrusted (any local process that can connect). The parser never reads
// outside the views it is given, copies at most a few dozen bytes per kept attribute into fixed
// inline buffers, never allocates, and bounds the work per request by the two limits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "frontends/permit_oracle.hpp"

namespace rp::frontends {

struct PolicyCodecLimits {
    std::size_t max_request_bytes = 16 * 1024;  // including every newline and the empty line
    std::size_t max_attributes = 128;
};

enum class PolicyError : std::uint8_t {
    none,
    line_without_equals,  // "garbage\n"
    empty_name,           // "=value\n"
    nul_byte,             // NUL in a name or a value
    too_many_attributes,  // more than max_attributes lines
    request_too_large,    // more than max_request_bytes before the empty line
    bad_request_type,     // `request` missing or not smtpd_access_policy
};

// A short human-readable reason, for the log ("line without '='").
std::string_view describe(PolicyError error);

// The attributes relaypermit needs from one complete request. The views point into the parser
// that produced it and stay valid until that parser's next feed() or reset().
struct PolicyRequest {
    std::string_view protocol_state;  // "RCPT", ... ; empty when absent
    std::string_view client_address;  // as sent; empty when absent, empty or over 64 bytes
    std::size_t attribute_count = 0;  // number of name=value lines
    std::string_view recipient_count;  // as sent (END-OF-MESSAGE: recipients accepted); may be empty

    // recipient_count as a number; 0 when absent or not a number.
    std::uint64_t recipients() const;

    // The parsed client address, or nothing when absent, empty or unparsable (answer DUNNO).
    std::optional<core::Address> client() const;
};

class PolicyParser {
public:
    struct Step {
        enum class Kind : std::uint8_t {
            need_more,  // every byte was consumed; the request is not complete yet
            request,    // a request is complete: see request()
            error,      // malformed: see error(); close the connection, reply nothing
        };
        Kind kind = Kind::need_more;
        std::size_t consumed = 0;  // bytes of the input used; the rest belongs to the next step
    };

    explicit PolicyParser(PolicyCodecLimits limits = {}) : limits_(limits) {}

    // Consumes bytes up to and including the end of at most one request. Call it in a loop,
    // dropping `consumed` bytes each time, until it returns need_more (or error):
    //     while (!in.empty()) { auto s = p.feed(in); in.remove_prefix(s.consumed); ... }
    // After `request`, request() describes that request and the parser is ready for the next.
    // After `error` the parser stays in error (every feed returns error, consuming nothing)
    // until reset(). Feeding an empty view returns need_more.
    Step feed(std::string_view input);

    // REQUIRES: the last feed() returned Step::Kind::request.
    const PolicyRequest& request() const { return request_; }
    PolicyError error() const { return error_; }

    // Forgets any partial request and any error.
    void reset();

private:
    // A kept attribute value copied into fixed storage: values longer than the buffer are
    // marked overlong (an address that long cannot be valid).
    template <std::size_t N>
    struct Value {
        std::array<char, N> data{};
        std::uint8_t size = 0;
        bool overlong = false;
        bool present = false;
        void clear() { size = 0; overlong = false; present = true; }
        // Keeps the bytes: a PolicyRequest may still point at them.
        void forget() { size = 0; overlong = false; present = false; }
        void append(std::string_view s);
        void drop_trailing_cr() { if (size > 0 && data[size - 1u] == '\r') --size; }
        std::string_view view() const { return overlong ? std::string_view() : std::string_view(data.data(), size); }
    };
    enum class State : std::uint8_t { line_start, name, value, failed };
    enum class Field : std::uint8_t { other, request, protocol_state, client_address, recipient_count };

    Step fail(PolicyError e, std::size_t consumed);
    Step need_more(std::size_t n, std::size_t input_size);
    void append_name(std::string_view part);
    void append_value(std::string_view part);
    void end_value();
    std::optional<PolicyError> start_value(std::string_view name);
    Step finish_request(std::size_t consumed);
    void start_request();

    PolicyCodecLimits limits_;
    State state_ = State::line_start;
    Field field_ = Field::other;
    PolicyError error_ = PolicyError::none;
    std::size_t request_bytes_ = 0;  // of the request being parsed
    std::size_t attributes_ = 0;
    // The name of the current line so far; names longer than the buffer are unknown to us.
    std::array<char, 24> name_{};
    std::size_t name_size_ = 0;
    Value<32> request_type_;
    Value<32> protocol_state_;
    Value<64> client_address_;
    Value<24> recipient_count_;
    PolicyRequest request_;
};

// The complete reply for a decision: "action=OK\n\n" when permitted, else "action=DUNNO\n\n".
// The views are static.
std::string_view policy_reply(bool permitted);
inline std::string_view policy_reply(const Verdict& v) { return policy_reply(v.permitted()); }

// The whole decision for one request: DUNNO without a usable client_address, else the oracle's
// verdict for it.
bool policy_permits(const PolicyRequest& request, const PermitOracle& oracle);

// The decision with budgets: as policy_permits, but a permit's request is also counted by
// oracle.spend(), whose action (when it returns one) is the answer instead of OK. Appends the
// complete reply to `out`; returns whether it was OK.
bool policy_answer(const PolicyRequest& request, const PermitOracle& oracle, std::string& out);

}  // namespace rp::frontends
