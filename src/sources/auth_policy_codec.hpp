// AuthPolicyCodec: the pure parts of the `dovecot-auth-policy` source: an incremental HTTP/1.1
// request parser (keep-alive, pipelining, Content-Length bodies only) and the interpretation of
// Dovecot's auth policy requests (`POST /?command=report` with a JSON body, see
// docs/dovecot-push.md and reference/interfaces.md §9). No I/O here; auth_policy_source.hpp
// does the sockets.
//
// Wire facts (Dovecot 2.3.19 auth-policy.c): requests are `POST <url>?command=allow|report`
// (`&command=` when the URL already has a query), `Content-Type: application/json`, a body such as
//   {"device_id":"","login":"alice","protocol":"pop3","pwhash":"0009","remote":"127.0.0.41",
//    "session_id":"…","success":true,"policy_reject":false,"tls":false}
// over connections kept alive; any 2xx answers a report, `{"status":0,"msg":""}` allows.
// `auth_policy_server_api_header = "Name: value"` is sent as that header (without a colon, as
// `X-API-Key: value`).
//
// Thread-safety: plain values; one HttpRequestParser per connection.
// Security: everything parsed here is untrusted network input. The parser bounds the header
// section and the body (HttpLimits); it rejects what it does not fully understand (chunked or
// any Transfer-Encoding, conflicting or non-numeric Content-Length, obsolete line folding,
// control characters in the request line) with a 4xx status after which the connection must be
// closed. The report interpreter never throws (nlohmann::json parsed without exceptions) and
// takes the address only from the `remote` field, validated as a complete IP address.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"

namespace rp::sources {

struct HttpLimits {
    std::size_t max_header_bytes = 16 * 1024;  // request line + headers, including CRLFs
    std::size_t max_body_bytes = 64 * 1024;    // Content-Length above this: 413
    std::size_t max_headers = 100;
};

struct HttpRequest {
    std::string method;  // "POST"
    std::string target;  // "/?command=report"
    int minor_version = 1;  // HTTP/1.minor
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
    std::string body;
    bool keep_alive = true;  // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive

    // The value of the first header with this (lower-case) name.
    std::optional<std::string_view> header(std::string_view lower_name) const;
};

class HttpRequestParser {
public:
    enum class State { need_more, request, error };

    explicit HttpRequestParser(HttpLimits limits = {}) : limits_(limits) {}

    // Appends received bytes. The parser keeps at most one request's bytes plus what follows it.
    void feed(std::string_view data) { buf_.append(data); }

    // Tries to take the next complete request out of the buffer.
    //   request:   *out holds it; call again for a pipelined next one.
    //   need_more: feed more bytes.
    //   error:     error_status() is 400 or 413; answer it and close (the parser stays in error).
    State next(HttpRequest* out);

    int error_status() const { return error_status_; }
    const std::string& error_reason() const { return error_reason_; }
    // Bytes buffered and not yet returned as requests (bounded by the limits, plus one read).
    std::size_t buffered() const { return buf_.size(); }

private:
    State fail(int status, std::string reason);

    HttpLimits limits_;
    std::string buf_;
    int error_status_ = 0;
    std::string error_reason_;
};

// The one answer to every accepted request, and the error answers. `keep_alive` false adds
// "Connection: close".
std::string http_ok_json_response(bool keep_alive);
std::string http_error_response(int status, bool keep_alive);

// True when the request target's query has a parameter `command=report` (`?command=report`,
// `&command=report`, e.g. `/?command=report`, `/policy?x=1&command=report`).
bool is_report_command(std::string_view target);

// `api_header` from the config: "Name: value" (or a bare value, sent by Dovecot as X-API-Key).
struct ApiHeader {
    std::string lower_name;
    std::string value;
};
std::optional<ApiHeader> parse_api_header(std::string_view text);  // nullopt for empty text
// True when `req` carries a header with that name (any case) whose trimmed value equals exactly.
bool has_api_header(const HttpRequest& req, const ApiHeader& want);

struct ReportDecision {
    enum class Kind {
        grant,      // success == true, protocol imap or pop3, valid remote address
        ignored,    // a well-formed report that grants nothing (failure, smtp, submission, …)
        malformed,  // not JSON, not an object, no/invalid `remote` or `protocol`, wrong types
    };
    Kind kind = Kind::malformed;
    std::optional<core::Address> address;  // set for grant
    std::string user;                      // `login`, may be empty
    std::string protocol;
    std::string reason;                    // for malformed/ignored: why (for logs)
};

// Interprets a report body. `success` must be the JSON boolean true to grant (a missing
// `success` is a failure report, i.e. ignored).
ReportDecision interpret_report(std::string_view body);

}  // namespace rp::sources
