// Line-based lookup protocols, as pure functions and an incremental line reader (no I/O):
//
// EXIM ${readsocket} (ReadsocketFrontend): one request per connection. The request is one line
//   holding an address (`$sender_host_address\n`; Exim may also send it without a newline and
//   half-close, `shutdown=yes`, the default). Surrounding whitespace and CR/LF are trimmed. The
//   reply is exactly `yes` or `no`, with NO newline (Exim reads until EOF and keeps a trailing
//   newline, so `eq{...}{yes}` would fail on "yes\n"), then the connection is closed. Anything
//   that is not a permitted address (junk, an empty or overlong line, a NUL) gets `no`.
//   Accepted forms: a.b.c.d, IPv6 text, ::ffff:a.b.c.d, each optionally in brackets.
//
// OPENSMTPD table-socketmap (opensmtpd-extras, table_socketmap.c; OpensmtpdFrontend): one
//   connection for the life of the table process, one line per request and per reply. The
//   request is `TABLENAME SP KEY LF` (fprintf "%s %s\n", TABLENAME = the table's name in
//   smtpd.conf, KEY lowercased by smtpd; for netaddr: "192.0.2.1", "[2001:db8::1]" or "local").
//   The client recognises replies by the prefixes `OK `, `NOTFOUND `, `TEMP `, `TIMEOUT `,
//   `PERM ` (strncasecmp: the space is required) and, for a lookup, copies what follows OK as the
//   value, which smtpd then parses as the table's type (a netaddr here). So: a permitted address
//   gets `OK <canonical address>\n` (a netaddr smtpd parses), anything else `NOTFOUND \n`.
//   A line over the limit or holding a NUL is malformed: the connection is closed.
//
// Thread-safety: a RequestLineReader is a value owned by one connection; functions are pure.
// Security: the bytes are untrusted; the reader keeps at most max_line bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "frontends/permit_oracle.hpp"

namespace rp::frontends {

class RequestLineReader {
public:
    struct Step {
        enum class Kind : std::uint8_t {
            need_more,  // every byte consumed, no complete line yet
            line,       // a line is complete: see line()
            error,      // over max_line bytes, or a NUL byte: stays in error until reset()
        };
        Kind kind = Kind::need_more;
        std::size_t consumed = 0;
    };

    explicit RequestLineReader(std::size_t max_line) : max_line_(max_line) {}

    // Like PolicyParser::feed: consumes up to and including at most one LF.
    Step feed(std::string_view input);
    // After `line`: the line without its LF (and without one CR before it), valid until the next
    // feed()/reset(). After finish(): the unterminated rest.
    std::string_view line() const { return line_; }
    // At end of input: true when unterminated bytes are pending (then line() holds them).
    bool finish();
    void reset();

private:
    std::size_t max_line_;
    std::string line_;
    bool done_ = false;
    bool failed_ = false;
};

// "yes" or "no" for one readsocket request line (before trimming). Static views.
std::string_view readsocket_answer(std::string_view line, const PermitOracle& oracle, bool& permitted);

// Appends the reply line for one table-socketmap request line to `out`.
void opensmtpd_answer(std::string_view line, const PermitOracle& oracle, std::string& out, bool& permitted);

}  // namespace rp::frontends
