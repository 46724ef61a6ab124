// Source: where login events come from. The daemon builds each configured [[source]] into a
// Source, starts it on the event loop, and receives its events through a LoginSink.
//
// Exactly-once: a source hands over the events of one batch of input together with the
// checkpoint that lies after that batch; the sink stores both atomically (PermitStore::grant).
// If deliver() fails, the source keeps its previous position and offers the batch again later,
// so nothing is lost and nothing is applied twice.
// Thread-safety: sources run on the loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/login_event.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "util/event_loop.hpp"

namespace rp::sources {

// The lines of a block that a LineParser might find a login in: calls keep(begin, end) with the
// offsets of each such line of `lines` ('\n' excluded), in order. Built from the matcher's literal
// prefilter (Matcher::for_each_candidate): parsing only the kept lines finds the same logins.
using CandidateFilter =
    std::function<void(std::string_view lines, const std::function<void(std::size_t begin, std::size_t end)>& keep)>;

// Receives a block of one or more complete lines, each ending in '\n', and appends the login
// events found to `out`. `now` is the reading time (events are clamped to it by the parser).
// It may carry a CandidateFilter, so that a source which queues lines before parsing them (FIFO,
// datagram receivers) queues only the lines that can matter and never loses a login to noise.
class LineParser {
public:
    using Parse = std::function<void(std::string_view complete_lines, core::Time now, std::vector<core::LoginEvent>& out)>;

    LineParser() = default;
    LineParser(std::nullptr_t) {}  // NOLINT: "no parser", as with std::function
    template <class F>
        requires(!std::is_same_v<std::decay_t<F>, LineParser> && !std::is_same_v<std::decay_t<F>, std::nullptr_t> &&
                 std::is_invocable_v<F&, std::string_view, core::Time, std::vector<core::LoginEvent>&>)
    LineParser(F&& parse) : parse_(std::forward<F>(parse)) {}  // NOLINT: a callable is a parser without a filter
    LineParser(Parse parse, CandidateFilter filter) : parse_(std::move(parse)), filter_(std::move(filter)) {}

    void operator()(std::string_view complete_lines, core::Time now, std::vector<core::LoginEvent>& out) const {
        parse_(complete_lines, now, out);
    }
    explicit operator bool() const { return static_cast<bool>(parse_); }
    bool has_filter() const { return static_cast<bool>(filter_); }
    // Calls keep(begin, end) for each line of `lines` (complete lines; a last one without '\n'
    // counts) that may hold a login: the filter's choice, or every line without a filter.
    void for_each_candidate(std::string_view lines, const std::function<void(std::size_t, std::size_t)>& keep) const;

private:
    Parse parse_;
    CandidateFilter filter_;
};

struct SourceCounters {
    std::uint64_t lines = 0;      // input lines read
    std::uint64_t matches = 0;    // lines recognised as successful logins
    std::uint64_t malformed = 0;  // lines too long, binary, or otherwise unusable
    std::uint64_t untrusted = 0;  // entries refused because their sender is not the server's
    std::uint64_t dropped = 0;    // input discarded that could hold a login (over-long lines, a full backlog)
    std::uint64_t filtered = 0;   // lines left out before queuing: the prefilter shows they hold no login
    // Input known to be waiting (a followed file's size past the read position); -1 = unknown
    // (a socket or pipe has no such figure). Shown as lag by `status` and /metrics.
    std::int64_t unread_bytes = -1;
};

class LoginSink {
public:
    virtual ~LoginSink() = default;
    // Applies events and checkpoint atomically. checkpoint.key is the source's name, or empty
    // for a source without a resume position (a network receiver, a FIFO, a push).
    virtual core::Status deliver(std::span<const core::LoginEvent> events, const core::Checkpoint& checkpoint) = 0;
    // The last checkpoint stored for this source, if any.
    virtual std::optional<std::string> find_checkpoint(const std::string& key) const = 0;
};

class Source {
public:
    virtual ~Source() = default;
    virtual const std::string& name() const = 0;
    // Registers with the loop and begins reading (catching up from its checkpoint first).
    virtual core::Status start(util::EventLoop& loop) = 0;
    virtual void stop(util::EventLoop& loop) = 0;
    virtual SourceCounters counters() const = 0;
    // Why the source is not working now (e.g. its batches cannot be recorded and are retried),
    // for /health; "" when it is well. Not an error log: the source logs its own failures.
    virtual std::string problem() const { return {}; }
    // Reload: the daemon keeps a source whose configuration did not change (no re-bind of a
    // privileged port, no re-read) and only gives it parsers built from the new patterns.
    // `untrusted` is the journald source's parser for entries from untrusted senders.
    virtual void set_parser(LineParser parser, LineParser untrusted) {
        (void)parser;
        (void)untrusted;
    }
};

// What every source that reads text through one LineParser shares (file tail, FIFO, syslog
// receiver, journald): its name, its parser (replaced on reload), the sink it delivers to and the
// clock that gives the reading time. A source with a second parser overrides set_parser().
class LineSource : public Source {
public:
    const std::string& name() const override { return name_; }
    void set_parser(LineParser parser, LineParser untrusted) override {
        (void)untrusted;
        parser_ = std::move(parser);
    }

protected:
    // REQUIRES: `sink` and `clock` outlive the source.
    LineSource(std::string name, LineParser parser, LoginSink& sink, const core::Clock& clock)
        : name_(std::move(name)), parser_(std::move(parser)), sink_(sink), clock_(clock) {}

    std::string name_;
    LineParser parser_;
    LoginSink& sink_;
    const core::Clock& clock_;
};

}  // namespace rp::sources
