// AuthPolicySource (`type = "dovecot-auth-policy"`): relaypermit acting as Dovecot's auth policy
// server. Dovecot POSTs `?command=report` after each authentication (auth_policy_report_after_auth);
// a report with "success":true and protocol "imap" or "pop3" becomes a LoginEvent (server
// "dovecot-auth-policy", user = `login`, address = `remote`, time = now) delivered at once with
// an empty checkpoint key (no resume position: nothing to replay). Every request, report or
// `command=allow`, is answered 200 `{"status":0,"msg":""}` (neutral: never rejects a login).
// The HTTP parsing and the report rules are in auth_policy_codec.hpp.
//
// Listeners: `listen` endpoints (tcp "HOST:PORT"/"tcp:HOST:PORT"/"[v6]:PORT" or "unix:/path";
// udp is a config error). Unix sockets are mode 0666: their directory must guard access. TCP peers must be inside `allow_from` (empty = loopback only):
// others are closed at once and counted `untrusted`. With `api_header` set, a request without
// that exact header gets 401 and grants nothing (counted `untrusted`). A malformed request (bad
// HTTP, chunked, oversized) gets 400/413 and the connection is closed (`malformed`); a report
// without `remote` or `protocol`, or with an invalid address, is answered 200 but counted
// `malformed` and grants nothing.
// Counters: lines = HTTP requests, matches = granting reports, dropped = grants the sink refused.
//
// Thread-safety: loop thread only (like every Source).
// Security: peers are untrusted network clients. Memory per connection is bounded by the
// HttpLimits (16 KiB headers, 64 KiB body) plus pending replies (a peer that does not read is
// closed); at most `max_clients` connections (more are closed at once); idle connections are
// closed after `idle_timeout`.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/auth_policy_codec.hpp"
#include "sources/file_tail_source.hpp"
#include "sources/source.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::sources {

struct AuthPolicyOptions {
    std::vector<std::string> listen;
    std::vector<core::Cidr> allow_from;  // empty = loopback (127.0.0.0/8, ::1)
    std::string api_header;              // "Name: value"; empty = none required
    HttpLimits limits;
    std::size_t max_clients = 1024;
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
};

class AuthPolicySource final : public Source {
public:
    // REQUIRES: sink and clock outlive the source.
    AuthPolicySource(std::string name, AuthPolicyOptions opts, LoginSink& sink, const core::Clock& clock);
    ~AuthPolicySource() override;
    AuthPolicySource(const AuthPolicySource&) = delete;
    AuthPolicySource& operator=(const AuthPolicySource&) = delete;

    const std::string& name() const override { return name_; }
    // Binds every endpoint (all or nothing; the error names the endpoint) without accepting yet;
    // a no-op when bound. The daemon calls it right after open_auth_policy_source(), so it binds
    // before it drops privileges (ports below 1024 with `user =`), as for every other source.
    core::Status bind();
    // Binds (unless bind() did) and starts accepting.
    core::Status start(util::EventLoop& loop) override;
    // Closes listeners (removing unix socket files it created) and connections. Idempotent.
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override { return counters_; }

    // Bound endpoints in canonical form with real ports ("tcp:127.0.0.1:40123").
    std::vector<std::string> local_endpoints() const;
    std::size_t open_connections() const;

private:
    struct Listener;
    struct Connection;

    void on_accept(Listener& l);
    void on_event(Connection& c, std::uint32_t events);
    bool handle_requests(Connection& c);  // false: connection closed
    void handle_request(const HttpRequest& req, std::string& reply);
    bool flush(Connection& c);
    void close_connection(Connection& c);
    void sweep();

    std::string name_;
    AuthPolicyOptions opts_;
    std::optional<ApiHeader> api_header_;
    LoginSink& sink_;
    const core::Clock& clock_;
    util::EventLoop* loop_ = nullptr;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::vector<std::unique_ptr<Connection>> connections_;
    util::EventLoop::TimerId sweep_timer_ = 0;
    SourceCounters counters_;
    util::RateLimitedLog warn_;
};

// Factory for the daemon. The LineParser is unused (this source reads no log lines).
core::Result<std::unique_ptr<Source>> open_auth_policy_source(const config::SourceConfig& cfg, LineParser parser,
                                                              LoginSink& sink, const core::Clock& clock);

}  // namespace rp::sources
