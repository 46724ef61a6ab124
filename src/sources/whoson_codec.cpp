#include "sources/whoson_codec.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

namespace rp::sources {
namespace {

constexpr std::size_t k_max_name = 255;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

std::string_view next_word(std::string_view& s) {
    s = trim(s);
    const auto sp = s.find_first_of(" \t");
    const auto w = s.substr(0, sp);
    s.remove_prefix(sp == std::string_view::npos ? s.size() : sp);
    return w;
}

WhosonRequest bad(std::string error) {
    WhosonRequest r;
    r.error = std::move(error);
    return r;
}

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

WhosonRequest parse_whoson_request(std::string_view line) {
    std::string_view rest = line;
    const auto verb = next_word(rest);
    WhosonRequest r;
    if (iequals(verb, "QUIT")) {
        r.kind = WhosonRequest::Kind::quit;
        return r;
    }
    if (iequals(verb, "LOGIN")) r.kind = WhosonRequest::Kind::login;
    else if (iequals(verb, "LOGOUT")) r.kind = WhosonRequest::Kind::logout;
    else if (iequals(verb, "QUERY")) r.kind = WhosonRequest::Kind::query;
    else return bad("unknown verb");
    const auto ip = core::Address::parse(next_word(rest));
    if (!ip) return bad("bad address");
    r.ip = *ip;
    const auto name = trim(rest);
    if (r.kind == WhosonRequest::Kind::login) {
        if (name.empty()) return bad("LOGIN needs a name");
        if (name.size() > k_max_name || has_control(name)) return bad("bad name");
        r.name = std::string(name);
    } else if (!name.empty()) {
        return bad("unexpected argument");
    }
    return r;
}

namespace {

// The line of `buf` that starts at `pos` (CR of a CRLF removed), and where the next one starts;
// nothing when it has no end yet.
std::optional<std::pair<std::string_view, std::size_t>> line_at(const std::string& buf, std::size_t pos) {
    const auto nl = buf.find('\n', pos);
    if (nl == std::string::npos) return std::nullopt;
    std::string_view l(buf.data() + pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    return std::pair{l, nl + 1};
}

}  // namespace

WhosonFramer::State WhosonFramer::next(std::string& line) {
    if (failed_) return State::error;
    // Empty lines between requests are skipped; a request runs from its first line to the next
    // empty line, and counts against max_request whole (so any split of the stream agrees).
    while (const auto l = line_at(buf_, 0)) {
        if (!l->first.empty()) break;
        buf_.erase(0, l->second);
    }
    if (const auto first = line_at(buf_, 0)) {
        std::size_t pos = first->second;
        while (const auto l = line_at(buf_, pos)) {
            const std::size_t end = l->second;
            if (end > max_request_) break;
            if (l->first.empty()) {
                line.assign(first->first);
                buf_.erase(0, end);
                return State::request;
            }
            pos = end;
        }
    }
    if (buf_.size() > max_request_) {
        failed_ = true;
        buf_.clear();
        return State::error;
    }
    return State::need_more;
}

WhosonRequest parse_whoson_datagram(std::string_view datagram) {
    const auto start = datagram.find_first_not_of("\r\n");
    if (start == std::string_view::npos) return bad("empty request");
    datagram.remove_prefix(start);
    auto line = datagram.substr(0, datagram.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return parse_whoson_request(line);
}

std::string whoson_reply(char kind, std::string_view text) {
    std::string out(1, kind);
    for (char c : text.substr(0, k_max_name)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    out += "\r\n\r\n";
    return out;
}

}  // namespace rp::sources
