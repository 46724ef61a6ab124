// Syslog transport framing (RFC 6587 for TCP, one message per datagram for UDP and unix sockets):
// turns received bytes into whole syslog messages, one per output line.
//
// StreamFramer keeps the state of one TCP connection. The framing is detected per frame from its
// first byte, so octet-counted and newline-terminated senders share one listener (and a sender may
// even mix them): a digit starts an octet-counted frame "LEN SP MSG" (LEN without leading zeros),
// anything else starts a frame that ends at LF or NUL (a trailing CR is removed; empty frames are
// skipped). Output is appended to a string as lines: each message, with every embedded '\n'
// replaced by ' ', followed by one '\n' — exactly what a LineParser takes.
//
// Limits: a frame longer than max_frame_bytes is dropped and counted (an octet-counted one is
// skipped by its count without buffering, a terminated one up to its terminator), so the
// connection stays in sync. An octet count that is not a number ("12x", a leading zero, more than
// 10 digits) means the stream cannot be resynchronised: the framer reports `broken` and the
// caller closes the connection. Memory per framer is bounded by max_frame_bytes.
//
// Thread-safety: a StreamFramer is a plain value owned by one connection; the functions are pure.
// Security: all input is untrusted network data; nothing reads outside the given views, and the
// buffer never grows beyond max_frame_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rp::sources {

struct SyslogFramingLimits {
    std::size_t max_frame_bytes = 64 * 1024;  // one message, without its framing
};

struct FramingStats {
    std::uint64_t messages = 0;   // messages appended to the output
    std::uint64_t oversize = 0;   // frames dropped for being longer than max_frame_bytes
    std::uint64_t malformed = 0;  // garbage octet counts (the stream is then broken)
    std::uint64_t truncated = 0;  // incomplete octet-counted frames at end of stream
};

class StreamFramer {
public:
    explicit StreamFramer(SyslogFramingLimits limits = {}) : limits_(limits) {}

    // Consumes all of `data`; appends every completed message to `out` as one '\n'-terminated
    // line and updates `stats`. Returns false once the stream is broken (garbage octet count):
    // the rest of `data` and all later input are ignored.
    bool feed(std::string_view data, std::string& out, FramingStats& stats);

    // At end of stream: a newline-framed message still missing its terminator is emitted (a
    // sender may close right after its last message); an incomplete octet-counted frame is
    // dropped and counted `truncated`. Returns true if something was dropped. Resets the framer.
    bool finish(std::string& out, FramingStats& stats);

    bool broken() const { return state_ == State::broken; }
    // Bytes currently held for an incomplete frame (bounded by max_frame_bytes + 10).
    std::size_t buffered() const { return buf_.size(); }

private:
    enum class State { start, count, counted_body, counted_skip, lf_body, lf_skip, broken };
    void emit(std::string_view msg, std::string& out, FramingStats& stats);
    void set_broken(FramingStats& stats);  // a garbage octet count: counted malformed
    // feed()'s step in each state: consumes from data[i] on, returns where the next step begins.
    std::size_t on_start(std::string_view data, std::size_t i, FramingStats& stats);
    std::size_t on_count(std::string_view data, std::size_t i, FramingStats& stats);
    std::size_t on_counted_body(std::string_view data, std::size_t i, std::string& out, FramingStats& stats);
    std::size_t on_counted_skip(std::string_view data, std::size_t i);
    std::size_t on_lf_body(std::string_view data, std::size_t i, std::string& out, FramingStats& stats);
    std::size_t on_lf_skip(std::string_view data, std::size_t i);

    SyslogFramingLimits limits_;
    State state_ = State::start;
    std::uint64_t remaining_ = 0;  // octet-counted: bytes of the frame still to come
    int digits_ = 0;
    std::string buf_;
};

// Appends the message of one datagram (UDP, unix dgram) to `out` as one line: trailing LF, CR
// and NUL bytes are removed, embedded '\n' become ' '; empty datagrams are skipped; datagrams
// longer than limits.max_frame_bytes are dropped and counted oversize.
void frame_datagram(std::string_view datagram, std::string& out, FramingStats& stats,
                    const SyslogFramingLimits& limits = {});

}  // namespace rp::sources
