// DropinSource: the I/O that the drop-in protocol sources share (`type = "drac"`, "whoson",
// "relay-ctrl-udp"), each of which replaces an older POP-before-SMTP daemon on its own wire
// protocol so that the POP servers calling it need no change. A DropinProtocol (drac_source.cpp,
// whoson_source.cpp, relay_ctrl_source.cpp) holds the protocol; this class binds its `listen`
// endpoints and serves them:
//   tcp endpoints through util::ConnServer (idle limit, longest-idle eviction, per-peer caps,
//     output caps, descriptor back-off), one StreamSession per connection from the protocol;
//   udp endpoints directly on the loop: at most 64 datagrams per wake-up, each from a peer the
//     datagram filter admits handed to the protocol, whose answer goes back with one
//     non-blocking sendto (a full socket buffer drops the answer: the client asks again).
// Peers the filters refuse are counted `untrusted` (stream: closed at accept; datagram: no
// answer). Listeners are bound by open(), before the daemon drops privileges (port 811 is
// below 1024), and served from start(). Grants go through the LoginSink, i.e. the daemon's
// PermitPolicy; a source has no resume position (empty checkpoint key).
//
// Thread-safety: loop thread only (like every Source).
// Security: peers are untrusted. A datagram is read into a fixed 8 KiB buffer (longer ones are
// truncated, counted malformed and not answered); stream memory is bounded by the protocol's
// framer limits and ConnServer's output caps.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/address.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "sources/permit_access.hpp"
#include "sources/source.hpp"
#include "util/acceptor.hpp"
#include "util/conn_server.hpp"
#include "util/event_loop.hpp"
#include "util/log.hpp"
#include "util/unique_fd.hpp"

namespace rp::sources {

// A bound endpoint as the protocol sees it at start (drac registers these with rpcbind).
struct DropinEndpoint {
    bool datagram = false;
    core::Address address;  // the bound address (0.0.0.0 / :: for all)
    int port = 0;
};

class DropinProtocol {
public:
    virtual ~DropinProtocol() = default;
    // A session for one admitted stream connection.
    virtual std::unique_ptr<util::StreamSession> session(const util::Peer& peer) = 0;
    // One datagram from an admitted peer; append the answer, if any, to `reply`.
    virtual void datagram(std::string_view data, const core::Address& peer, std::string& reply) = 0;
    // Called by start() once the endpoints are served, and by stop() before they close.
    virtual void started(const std::vector<DropinEndpoint>& endpoints) { (void)endpoints; }
    virtual void stopping() {}
    SourceCounters counters;  // lines = requests; DropinSource adds what it counts itself
};

struct DropinOptions {
    std::string protocol;                     // for messages: "whoson"
    std::vector<std::string> listen;          // "tcp:H:P", "udp:H:P", "H:P" (tcp)
    util::PeerFilter filter;                  // which peers are served at all (stream and datagram)
    bool stream = true, datagram = true;      // which endpoint kinds the protocol serves
    std::size_t max_clients = 256;
    std::size_t max_clients_per_peer = 16;  // non-loopback peers
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
};

class DropinSource final : public Source {
public:
    // Binds every endpoint (all or nothing; the error names the endpoint).
    static core::Result<std::unique_ptr<DropinSource>> open(std::string name, DropinOptions opts,
                                                            std::unique_ptr<DropinProtocol> protocol);
    ~DropinSource() override;
    DropinSource(const DropinSource&) = delete;
    DropinSource& operator=(const DropinSource&) = delete;

    const std::string& name() const override { return name_; }
    core::Status start(util::EventLoop& loop) override;
    // Stops serving: datagram sockets stay bound, TCP listeners and connections close (the
    // daemon destroys a stopped source; a later start() serves the datagram endpoints only).
    void stop(util::EventLoop& loop) override;
    SourceCounters counters() const override;

    // Bound endpoints with their real ports ("udp:127.0.0.1:40123"), in `listen` order.
    std::vector<std::string> local_endpoints() const;

private:
    struct Datagram {
        util::UniqueFd fd;
        util::Endpoint endpoint;  // with the real port
    };
    DropinSource(std::string name, DropinOptions opts, std::unique_ptr<DropinProtocol> protocol);
    core::Status bind(const std::string& text);
    void on_datagrams(Datagram& d);

    std::string name_;
    DropinOptions opts_;
    std::unique_ptr<DropinProtocol> protocol_;
    std::vector<std::string> order_;                   // local endpoints in `listen` order
    std::vector<util::BoundListener> stream_;           // bound, not yet served
    std::vector<std::unique_ptr<Datagram>> datagrams_;
    std::vector<DropinEndpoint> endpoints_;
    std::unique_ptr<util::ConnServer> server_;  // while started
    util::EventLoop* loop_ = nullptr;
    std::uint64_t refused_datagrams_ = 0, truncated_ = 0;
    std::uint64_t refused_streams_ = 0, overflow_seen_ = 0, malformed_seen_ = 0;  // of a stopped server_
    util::RateLimitedLog warn_;
};

// Delivers one login at `now` (TimeOrigin::push) through `sink`, i.e. the daemon's PermitPolicy.
core::Status deliver_now(LoginSink& sink, const core::Address& ip, std::string user, std::string server,
                         const std::string& source, const core::Clock& clock);

// The factories for the three kinds, and the one the daemon calls for any of them.
bool is_dropin_type(std::string_view type);
core::Result<std::unique_ptr<Source>> open_dropin_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                         PermitAccess& access, const core::Clock& clock);
core::Result<std::unique_ptr<Source>> open_drac_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                       const core::Clock& clock);
core::Result<std::unique_ptr<Source>> open_whoson_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                         PermitAccess& access, const core::Clock& clock);
core::Result<std::unique_ptr<Source>> open_relay_ctrl_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                             const core::Clock& clock);

}  // namespace rp::sources
