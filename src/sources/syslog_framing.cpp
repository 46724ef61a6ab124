#include "sources/syslog_framing.hpp"

#include <algorithm>

namespace rp::sources {
namespace {

constexpr int max_count_digits = 10;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Index of the first LF or NUL in [from, data.size()), or npos.
std::size_t find_terminator(std::string_view data, std::size_t from) {
    for (std::size_t j = from; j < data.size(); ++j)
        if (data[j] == '\n' || data[j] == '\0') return j;
    return std::string_view::npos;
}

// Appends `msg` as one line; returns false (nothing appended) when it is empty after trimming.
bool append_line(std::string_view msg, std::string& out) {
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == '\0')) msg.remove_suffix(1);
    if (msg.empty()) return false;
    const std::size_t at = out.size();
    out.append(msg);
    std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\n', ' ');
    out.push_back('\n');
    return true;
}

}  // namespace

void StreamFramer::emit(std::string_view msg, std::string& out, FramingStats& stats) {
    if (append_line(msg, out)) ++stats.messages;
}

bool StreamFramer::feed(std::string_view data, std::string& out, FramingStats& stats) {
    std::size_t i = 0;
    while (i < data.size()) {
        switch (state_) {
            case State::broken: return false;
            case State::start: i = on_start(data, i, stats); break;
            case State::count: i = on_count(data, i, stats); break;
            case State::counted_body: i = on_counted_body(data, i, out, stats); break;
            case State::counted_skip: i = on_counted_skip(data, i); break;
            case State::lf_body: i = on_lf_body(data, i, out, stats); break;
            case State::lf_skip: i = on_lf_skip(data, i); break;
        }
    }
    return state_ != State::broken;
}

void StreamFramer::set_broken(FramingStats& stats) {
    ++stats.malformed;
    state_ = State::broken;
    buf_.clear();
    buf_.shrink_to_fit();
}

// A frame's first byte: a digit starts an octet count (a leading 0 breaks the stream), LF or NUL
// is an empty frame, anything else starts a newline-framed message.
std::size_t StreamFramer::on_start(std::string_view data, std::size_t i, FramingStats& stats) {
    const char c = data[i];
    if (is_digit(c)) {
        if (c == '0') {
            set_broken(stats);
            return i;
        }
        remaining_ = static_cast<std::uint64_t>(c - '0');
        digits_ = 1;
        state_ = State::count;
        return i + 1;
    }
    if (c == '\n' || c == '\0') return i + 1;  // an empty frame
    buf_.clear();
    state_ = State::lf_body;
    return i;
}

// The octet count's further digits, up to the space before the frame.
std::size_t StreamFramer::on_count(std::string_view data, std::size_t i, FramingStats& stats) {
    const char c = data[i++];
    if (is_digit(c) && digits_ < max_count_digits) {
        remaining_ = remaining_ * 10 + static_cast<std::uint64_t>(c - '0');
        ++digits_;
    } else if (c == ' ') {
        buf_.clear();
        if (remaining_ > limits_.max_frame_bytes) {
            ++stats.oversize;
            state_ = State::counted_skip;
        } else {
            state_ = State::counted_body;
        }
    } else {
        set_broken(stats);
    }
    return i;
}

std::size_t StreamFramer::on_counted_body(std::string_view data, std::size_t i, std::string& out, FramingStats& stats) {
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
    if (buf_.empty() && take == remaining_) {
        emit(data.substr(i, take), out, stats);  // whole frame in this chunk: no copy
    } else {
        buf_.append(data.substr(i, take));
        if (take == remaining_) emit(buf_, out, stats);
    }
    remaining_ -= take;
    if (remaining_ == 0) {
        buf_.clear();
        state_ = State::start;
    }
    return i + take;
}

std::size_t StreamFramer::on_counted_skip(std::string_view data, std::size_t i) {
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
    remaining_ -= take;
    if (remaining_ == 0) state_ = State::start;
    return i + take;
}

std::size_t StreamFramer::on_lf_body(std::string_view data, std::size_t i, std::string& out, FramingStats& stats) {
    const std::size_t n = data.size();
    const std::size_t j = find_terminator(data, i);
    const std::size_t end = j == std::string_view::npos ? n : j;
    const std::string_view piece = data.substr(i, end - i);
    if (buf_.size() + piece.size() > limits_.max_frame_bytes) {
        ++stats.oversize;
        buf_.clear();
        state_ = j == std::string_view::npos ? State::lf_skip : State::start;
    } else if (j == std::string_view::npos) {
        buf_.append(piece);
    } else if (buf_.empty()) {
        emit(piece, out, stats);
        state_ = State::start;
    } else {
        buf_.append(piece);
        emit(buf_, out, stats);
        buf_.clear();
        state_ = State::start;
    }
    return j == std::string_view::npos ? n : j + 1;
}

std::size_t StreamFramer::on_lf_skip(std::string_view data, std::size_t i) {
    const std::size_t j = find_terminator(data, i);
    if (j == std::string_view::npos) return data.size();
    state_ = State::start;
    return j + 1;
}

bool StreamFramer::finish(std::string& out, FramingStats& stats) {
    bool dropped = false;
    if (state_ == State::lf_body && !buf_.empty()) {
        emit(buf_, out, stats);
    } else if (state_ == State::count || state_ == State::counted_body || state_ == State::counted_skip) {
        if (state_ != State::counted_skip) ++stats.truncated;
        dropped = true;
    }
    if (state_ != State::broken) state_ = State::start;
    buf_.clear();
    remaining_ = 0;
    digits_ = 0;
    return dropped;
}

void frame_datagram(std::string_view datagram, std::string& out, FramingStats& stats,
                    const SyslogFramingLimits& limits) {
    while (!datagram.empty() && (datagram.back() == '\n' || datagram.back() == '\r' || datagram.back() == '\0'))
        datagram.remove_suffix(1);
    if (datagram.empty()) return;
    if (datagram.size() > limits.max_frame_bytes) {
        ++stats.oversize;
        return;
    }
    if (append_line(datagram, out)) ++stats.messages;
}

}  // namespace rp::sources
