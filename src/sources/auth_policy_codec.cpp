#include "sources/auth_policy_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>

namespace rp::sources {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// RFC 9110 token characters.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool has_ctl(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
    });
}

// Does a comma-separated header value contain `token` (case-insensitive)?
bool list_has(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const auto comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

const char* status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 413: return "Content Too Large";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

// Where the header section of `all` ends: its first empty line (CRLF CRLF, or bare LF LF). `end`
// is the offset just past the last header line's LF, `body_at` where the body starts; npos when
// no empty line comes within the first `max_header_bytes`.
struct HeaderEnd {
    std::size_t end = std::string_view::npos;
    std::size_t body_at = 0;
};
HeaderEnd find_header_end(std::string_view all, std::size_t max_header_bytes) {
    for (std::size_t i = all.find('\n'); i != std::string_view::npos; i = all.find('\n', i + 1)) {
        if (i + 1 < all.size() && all[i + 1] == '\n') return {i + 1, i + 2};
        if (i + 2 < all.size() && all[i + 1] == '\r' && all[i + 2] == '\n') return {i + 1, i + 3};
        if (i + 1 > max_header_bytes) break;
    }
    return {};
}

// Takes the first line off `head`, without its LF and one CR before it.
std::string_view take_line(std::string_view& head) {
    auto nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// Request line: METHOD SP TARGET SP HTTP/1.x, into `req`. nullptr, or why it is refused (400).
const char* parse_request_line(std::string_view rl, HttpRequest& req) {
    const auto sp1 = rl.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos)
        return "bad request line";
    const auto method = rl.substr(0, sp1);
    const auto target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = rl.substr(sp2 + 1);
    if (method.empty() || !std::all_of(method.begin(), method.end(), is_tchar)) return "bad method";
    if (target.empty() || has_ctl(target) || target.find_first_of(" \t") != std::string_view::npos)
        return "bad request target";
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9')
        return "unsupported HTTP version";
    req.method = std::string(method);
    req.target = std::string(target);
    req.minor_version = version[7] - '0';
    return nullptr;
}

// What the header fields say about the body and the connection.
struct Framing {
    std::optional<std::uint64_t> content_length;
    bool close = false, keep_alive = false;
};

// One header field's meaning for `f` (Content-Length, Connection). nullptr, or why it is refused.
const char* note_header(const std::string& lname, std::string_view value, Framing& f) {
    if (lname == "transfer-encoding") return "Transfer-Encoding is not supported";
    if (lname == "content-length") {
        if (value.empty() || value.size() > 18 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return "bad Content-Length";
        std::uint64_t n = 0;
        for (char c : value) n = n * 10 + static_cast<std::uint64_t>(c - '0');
        if (f.content_length && *f.content_length != n) return "conflicting Content-Length";
        f.content_length = n;
    }
    if (lname == "connection") {
        f.close = f.close || list_has(value, "close");
        f.keep_alive = f.keep_alive || list_has(value, "keep-alive");
    }
    return nullptr;
}

// The header lines of `head` into req.headers (names lowercased) and `f`. nullptr, or why they
// are refused (400).
const char* parse_header_fields(std::string_view head, std::size_t max_headers, HttpRequest& req, Framing& f) {
    while (!head.empty()) {
        const std::string_view line = take_line(head);
        if (line.empty()) continue;  // cannot happen before the header section's end, kept for safety
        if (line.front() == ' ' || line.front() == '\t') return "obsolete header line folding";
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return "bad header line";
        const auto name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_tchar)) return "bad header name";
        const auto value = trim(line.substr(colon + 1));
        if (has_ctl(value)) return "control character in header value";
        if (req.headers.size() >= max_headers) return "too many headers";
        req.headers.emplace_back(to_lower(name), std::string(value));
        if (const char* why = note_header(req.headers.back().first, value, f)) return why;
    }
    return nullptr;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view lower_name) const {
    for (const auto& [n, v] : headers)
        if (n == lower_name) return std::string_view(v);
    return std::nullopt;
}

HttpRequestParser::State HttpRequestParser::fail(int status, std::string reason) {
    error_status_ = status;
    error_reason_ = std::move(reason);
    buf_.clear();
    buf_.shrink_to_fit();
    return State::error;
}

HttpRequestParser::State HttpRequestParser::next(HttpRequest* out) {
    if (error_status_ != 0) return State::error;
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    std::size_t start = 0;
    while (start < buf_.size() && (buf_[start] == '\r' || buf_[start] == '\n')) ++start;
    if (start > 0) buf_.erase(0, start);
    if (buf_.empty()) return State::need_more;

    const std::string_view all(buf_);
    const auto [end, body_at] = find_header_end(all, limits_.max_header_bytes);
    if (end == std::string_view::npos) {
        if (buf_.size() > limits_.max_header_bytes) return fail(400, "header section too long");
        return State::need_more;
    }
    if (body_at > limits_.max_header_bytes) return fail(400, "header section too long");

    HttpRequest req;
    std::string_view head = all.substr(0, end);
    if (const char* why = parse_request_line(take_line(head), req)) return fail(400, why);
    Framing framing;
    if (const char* why = parse_header_fields(head, limits_.max_headers, req, framing)) return fail(400, why);
    const std::uint64_t body_len = framing.content_length.value_or(0);
    if (body_len > limits_.max_body_bytes) return fail(413, "body too large");
    if (buf_.size() - body_at < body_len) return State::need_more;

    req.body.assign(buf_, body_at, static_cast<std::size_t>(body_len));
    req.keep_alive = req.minor_version >= 1 ? !framing.close : (framing.keep_alive && !framing.close);
    buf_.erase(0, body_at + static_cast<std::size_t>(body_len));
    *out = std::move(req);
    return State::request;
}

std::string http_ok_json_response(bool keep_alive) {
    static constexpr std::string_view body = R"({"status":0,"msg":""})";
    std::string r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ";
    r += std::to_string(body.size());
    r += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    r += body;
    return r;
}

std::string http_error_response(int status, bool keep_alive) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                     "\r\nContent-Length: 0\r\n";
    r += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
    return r;
}

bool is_report_command(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return false;
    std::string_view query = target.substr(q + 1);
    if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
    while (true) {
        const auto amp = query.find('&');
        if (query.substr(0, amp) == "command=report") return true;
        if (amp == std::string_view::npos) return false;
        query.remove_prefix(amp + 1);
    }
}

std::optional<ApiHeader> parse_api_header(std::string_view text) {
    text = trim(text);
    if (text.empty()) return std::nullopt;
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) return ApiHeader{"x-api-key", std::string(text)};
    return ApiHeader{to_lower(trim(text.substr(0, colon))), std::string(trim(text.substr(colon + 1)))};
}

bool has_api_header(const HttpRequest& req, const ApiHeader& want) {
    for (const auto& [n, v] : req.headers)
        if (n == want.lower_name && v == want.value) return true;
    return false;
}

ReportDecision interpret_report(std::string_view body) {
    ReportDecision d;
    auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        d.reason = "body is not a JSON object";
        return d;
    }
    const auto remote = j.find("remote");
    const auto protocol = j.find("protocol");
    if (remote == j.end() || !remote->is_string()) {
        d.reason = "no \"remote\" string";
        return d;
    }
    if (protocol == j.end() || !protocol->is_string()) {
        d.reason = "no \"protocol\" string";
        return d;
    }
    d.protocol = protocol->get<std::string>();
    if (const auto login = j.find("login"); login != j.end()) {
        if (!login->is_string()) {
            d.reason = "\"login\" is not a string";
            return d;
        }
        d.user = login->get<std::string>();
    }
    const auto remote_text = remote->get<std::string>();
    const auto success = j.find("success");
    const bool succeeded = success != j.end() && success->is_boolean() && success->get<bool>();
    if (!succeeded) {
        d.kind = ReportDecision::Kind::ignored;
        d.reason = "not a successful login";
        return d;
    }
    if (d.protocol != "imap" && d.protocol != "pop3") {
        d.kind = ReportDecision::Kind::ignored;
        d.reason = "protocol \"" + d.protocol + "\" does not grant";
        return d;
    }
    auto addr = core::Address::parse(remote_text);
    if (!addr) {
        d.reason = "\"remote\" is not an IP address";
        return d;
    }
    d.kind = ReportDecision::Kind::grant;
    d.address = *addr;
    return d;
}

}  // namespace rp::sources
