#include "daemon/metrics_http.hpp"

#include <fmt/format.h>

namespace rp::daemon {
namespace {

std::string_view status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

sources::HttpLimits limits() {
    sources::HttpLimits l;
    l.max_header_bytes = k_metrics_max_request_bytes;
    l.max_body_bytes = 0;  // GET and HEAD carry none
    l.max_headers = 64;
    return l;
}

}  // namespace

MetricsHttpCodec::MetricsHttpCodec() : parser_(limits()) {}

MetricsHttpCodec::Result MetricsHttpCodec::feed(std::string_view data) {
    Result r;
    if (done_) return r;
    parser_.feed(data);
    sources::HttpRequest req;
    const auto st = parser_.next(&req);
    if (st == sources::HttpRequestParser::State::need_more) return r;
    done_ = true;
    r.kind = Result::Kind::error;
    if (st == sources::HttpRequestParser::State::error) {
        r.status = parser_.error_status();
        r.reason = parser_.error_reason();
        return r;
    }
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    const bool known = path == "/metrics" || path == "/health";
    if (req.method != "GET" && req.method != "HEAD") {
        r.status = known ? 405 : 404;
        r.reason = "method not allowed";
        return r;
    }
    if (!known) {
        r.status = 404;
        r.reason = "no such path";
        return r;
    }
    r.kind = Result::Kind::request;
    r.route = path == "/metrics" ? MetricsRoute::metrics : MetricsRoute::health;
    r.head = req.method == "HEAD";
    return r;
}

std::string metrics_http_response(int status, std::string_view content_type, std::string_view body, bool head) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}"
                                  "Connection: close\r\n\r\n",
                                  status, status_text(status), content_type, body.size(),
                                  status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head) out += body;
    return out;
}

std::string metrics_http_error(int status) {
    return metrics_http_response(status, "text/plain; charset=utf-8", fmt::format("{} {}\n", status, status_text(status)), false);
}

}  // namespace rp::daemon
