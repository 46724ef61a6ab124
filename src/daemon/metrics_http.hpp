// The [metrics] listener's HTTP/1.1 codec: pure, no I/O (metrics_server.hpp does the sockets).
//
// One request per connection: the codec takes bytes until one request is complete (the request
// parser of the auth policy source, sources/auth_policy_codec.hpp, with tighter limits), routes
// it, and the server answers with "Connection: close". Routes: GET or HEAD of /metrics and
// /health (a query string is ignored); any other path is 404, any other method 405 (with
// Allow: GET, HEAD), a request that does not parse 400 (413 with a body, which nothing here takes).
//
// Thread-safety: one MetricsHttpCodec per connection; the functions are pure.
// Security: everything fed is untrusted network input. The parser keeps at most
// k_metrics_max_request_bytes (plus one read) and rejects what it does not fully understand; no
// request part is ever echoed back in a response.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "sources/auth_policy_codec.hpp"

namespace rp::daemon {

inline constexpr std::size_t k_metrics_max_request_bytes = 8 * 1024;

enum class MetricsRoute { metrics, health };

class MetricsHttpCodec {
public:
    struct Result {
        enum class Kind { need_more, request, error } kind = Kind::need_more;
        MetricsRoute route = MetricsRoute::metrics;  // request
        bool head = false;                           // request: HEAD (headers only)
        int status = 0;                              // error: 400, 404, 405 or 413
        std::string reason;                          // error: for the log
    };

    MetricsHttpCodec();
    // Feeds received bytes and says what they completed. After a request or an error the codec
    // is done (further feeds return need_more): the connection answers and closes.
    Result feed(std::string_view data);

private:
    sources::HttpRequestParser parser_;
    bool done_ = false;
};

// A whole response with "Connection: close" and Content-Length; `head` leaves the body out (the
// headers still give its length). `status` in 200, 400, 404, 405, 413, 503.
std::string metrics_http_response(int status, std::string_view content_type, std::string_view body, bool head);
// The response to a codec error: a one-line text body naming the status.
std::string metrics_http_error(int status);

}  // namespace rp::daemon
