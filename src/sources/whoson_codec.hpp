// whoson wire format (the protocol of whosond and the wso_login/wso_logout/wso_query() library
// that POP servers and MTAs such as Exim and ZMailer call). Pure: bytes in, values out; the I/O
// is in whoson_source.cpp.
//
// REQUEST: one line, CRLF-terminated (a bare LF is accepted), then an empty line:
//     LOGIN 192.0.2.7 alice\r\n\r\n      grant 192.0.2.7 to alice (the name is the rest of the line)
//     LOGOUT 192.0.2.7\r\n\r\n           revoke the permit of 192.0.2.7
//     QUERY 192.0.2.7\r\n\r\n            who holds 192.0.2.7?
//     QUIT\r\n\r\n                       (TCP) close the connection
// Verbs are case-insensitive. Further non-empty lines before the empty line are ignored.
// REPLY: one line, then an empty line. `+` yes / done (QUERY: `+alice`), `-` no (QUERY: no
// permit; LOGOUT: nothing to revoke), `*` a bad request (`*unknown verb`). Over UDP a datagram
// holds one request (the empty line may be missing) and the answer is one datagram.
//
// Thread-safety: plain functions and value types; WhosonFramer is a value per connection.
// Security: all input is untrusted network data. A request is at most `max_request` bytes
// (lines and the ignored lines included), names at most 255 bytes without control characters;
// a reply never carries a CR, LF or other control character (replaced by '?').
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/address.hpp"

namespace rp::sources {

struct WhosonRequest {
    enum class Kind : std::uint8_t { login, logout, query, quit, bad };
    Kind kind = Kind::bad;
    core::Address ip;
    std::string name;   // login
    std::string error;  // bad: what is wrong (becomes the `*` reply's text)
};

// One request line, without its line end.
WhosonRequest parse_whoson_request(std::string_view line);

// Splits a stream into requests: the first line of each, once the empty line that ends it came.
class WhosonFramer {
public:
    enum class State : std::uint8_t { request, need_more, error };
    explicit WhosonFramer(std::size_t max_request = 1024) : max_request_(max_request) {}
    void feed(std::string_view in) { buf_.append(in); }
    // request: `line` holds the next request's first line. error: a request longer than
    // max_request (the stream is not read further).
    State next(std::string& line);

private:
    std::size_t max_request_;
    std::string buf_;
    bool failed_ = false;
};

// The request of one datagram (its first line).
WhosonRequest parse_whoson_datagram(std::string_view datagram);

// `kind` ('+', '-', '*') and text, then CRLF and the empty line.
std::string whoson_reply(char kind, std::string_view text = {});

}  // namespace rp::sources
