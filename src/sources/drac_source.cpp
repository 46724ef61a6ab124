// `type = "drac"`: an rpc.dracd replacement (drac_codec.hpp): ONC RPC program 900101 versions 1
// and 2 on `listen` (default udp and tcp on all IPv4 addresses, ports the kernel chooses, as
// rpc.dracd), registered with the local rpcbind (rpcbind_client.hpp) for each transport when
// started and withdrawn at stop. Callers may open connections and send calls from anywhere
// (the protocol answers a caller it does not trust with ADD_PERM, counted `untrusted`); the
// trusted callers are `allow_from` plus the networks of `allow_file` (rpc.dracd's dracd.allow),
// or, when both are empty, loopback and the host's own addresses (rpc.dracd's default). Each
// DRACPROC_ADD from a trusted caller grants or extends the address (user "", server "drac")
// through the PermitPolicy: ADD_SUCCESS, or ADD_SYSERR when the store refused the write.
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "sources/dropin_source.hpp"
#include "sources/drac_codec.hpp"
#include "sources/rpcbind_client.hpp"
#include "util/small_file.hpp"

namespace rp::sources {
namespace {

using util::Level;
constexpr auto k_rpcbind_deadline = std::chrono::milliseconds(2000);

class DracProtocol final : public DropinProtocol {
public:
    DracProtocol(std::string name, std::vector<core::Cidr> allowed, LoginSink& sink, const core::Clock& clock)
        : name_(std::move(name)), allowed_(std::move(allowed)), sink_(sink), clock_(clock) {}
    ~DracProtocol() override { stopping(); }

    std::unique_ptr<util::StreamSession> session(const util::Peer& peer) override;
    void datagram(std::string_view data, const core::Address& peer, std::string& reply) override {
        reply = answer(data, peer);
    }
    void started(const std::vector<DropinEndpoint>& endpoints) override;
    void stopping() override;

    // The reply to one RPC message from `peer` ("" = none).
    std::string answer(std::string_view msg, const core::Address& peer) {
        auto req = decode_drac_request(msg);
        if (req.malformed) {
            ++counters.malformed;
            warn_.log(Level::warning, "{}: bad RPC message from {}: {}", name_, peer.to_string(), req.error);
        }
        if (req.kind != DracRequest::Kind::add) return std::move(req.reply);
        ++counters.lines;
        if (!trusted(peer)) {
            ++counters.untrusted;
            warn_.log(Level::warning, "{}: DRACPROC_ADD from {} refused (ADD_PERM): not an allowed caller", name_,
                      peer.to_string());
            return encode_drac_reply(req.xid, AddStat::perm);
        }
        ++counters.matches;
        if (auto st = deliver_now(sink_, *req.address, "", "drac", name_, clock_); !st) {
            ++counters.dropped;
            warn_.log(Level::warning, "{}: could not store {}: {}", name_, req.address->to_string(), st.error().message);
            return encode_drac_reply(req.xid, AddStat::syserr);
        }
        return encode_drac_reply(req.xid, AddStat::success);
    }

private:
    bool trusted(const core::Address& a) const {
        for (const auto& c : allowed_)
            if (c.contains(a)) return true;
        return false;
    }

    std::string name_;
    std::vector<core::Cidr> allowed_;
    LoginSink& sink_;
    const core::Clock& clock_;
    util::RateLimitedLog warn_;
    std::thread registrar_;                  // registration runs here, never on the loop
    std::atomic<bool> registered_{false};
};

class DracSession final : public util::StreamSession {
public:
    DracSession(DracProtocol& protocol, core::Address peer) : protocol_(protocol), peer_(peer) {}
    Next on_data(std::string_view in, std::string& out) override {
        reader_.feed(in);
        std::string record;
        for (;;) {
            switch (reader_.next(record)) {
                case RecordReader::State::need_more:
                    return Next::more;
                case RecordReader::State::error:
                    return Next::malformed;
                case RecordReader::State::record:
                    break;
            }
            if (auto reply = protocol_.answer(record, peer_); !reply.empty()) out += frame_record(reply);
        }
    }
    std::string_view error_text() const override { return "RPC record too long"; }

private:
    DracProtocol& protocol_;
    core::Address peer_;
    RecordReader reader_{8192};
};

std::unique_ptr<util::StreamSession> DracProtocol::session(const util::Peer& peer) {
    return std::make_unique<DracSession>(*this, peer.address.value_or(core::Address::v4(0)));
}

void DracProtocol::started(const std::vector<DropinEndpoint>& endpoints) {
    std::vector<RpcbMapping> maps;
    std::vector<std::string> netids;
    for (const auto& e : endpoints) {
        const std::string netid = std::string(e.datagram ? "udp" : "tcp") + (e.address.is_v4() ? "" : "6");
        if (std::find(netids.begin(), netids.end(), netid) != netids.end()) continue;  // one address per transport
        netids.push_back(netid);
        for (std::uint32_t vers : {1u, 2u})
            maps.push_back({k_drac_program, vers, netid, universal_address(e.address, e.port)});
    }
    const std::string name = name_;
    registrar_ = std::thread([this, maps, name] {
        const std::vector<RpcbMapping> clear = {{k_drac_program, 1, "", ""}, {k_drac_program, 2, "", ""}};
        (void)rpcbind_exchange(k_rpcbind_socket, RpcbProc::unset, clear, k_rpcbind_deadline);  // a stale entry of ours
        auto res = rpcbind_exchange(k_rpcbind_socket, RpcbProc::set, maps, k_rpcbind_deadline);
        if (!res) {
            util::log(Level::warning,
                      "{}: cannot register program 900101 with rpcbind ({}): clients that look it up there "
                      "(clnt_create, dracauth) will not find this source; it serves its ports anyway",
                      name, res.error().message);
            return;
        }
        registered_ = true;
        std::string what;
        for (std::size_t i = 0; i < maps.size(); ++i)
            what += fmt::format("{}v{} {} {}{}", what.empty() ? "" : ", ", maps[i].vers, maps[i].netid, maps[i].uaddr,
                                (*res)[i] ? "" : " (refused)");
        util::log(Level::info, "{}: registered with rpcbind: {}", name, what);
    });
}

void DracProtocol::stopping() {
    if (registrar_.joinable()) registrar_.join();
    if (!registered_.exchange(false)) return;
    const std::vector<RpcbMapping> clear = {{k_drac_program, 1, "", ""}, {k_drac_program, 2, "", ""}};
    if (auto res = rpcbind_exchange(k_rpcbind_socket, RpcbProc::unset, clear, std::chrono::milliseconds(500)); !res)
        util::log(Level::warning, "{}: cannot withdraw program 900101 from rpcbind: {}", name_, res.error().message);
    else
        util::log(Level::info, "{}: withdrawn from rpcbind", name_);
}

// rpc.dracd's default callers: loopback and the host's own addresses.
std::vector<core::Cidr> default_callers() {
    std::vector<core::Cidr> out = {core::Cidr(core::Address::v4(0x7f000000), 8),
                                   core::Cidr::host(*core::Address::parse("::1"))};
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return out;
    for (auto* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
        sockaddr_storage ss{};
        std::memcpy(&ss, i->ifa_addr, i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
        if (auto a = util::to_address(ss)) out.push_back(core::Cidr::host(*a));
    }
    freeifaddrs(list);
    return out;
}

core::Result<std::vector<core::Cidr>> allowed_callers(const config::SourceConfig& cfg) {
    auto out = cfg.allow_from;
    if (!cfg.allow_file.empty()) {
        auto text = util::read_existing_small_file(cfg.allow_file, 16u << 20);
        if (!text) return core::make_error("allow_file " + text.error().message);
        std::vector<std::string> skipped;
        auto nets = parse_dracd_allow(*text, skipped);
        for (const auto& s : skipped) util::log(Level::warning, "{}: allow_file {}: {}: skipped", cfg.name, cfg.allow_file, s);
        out.insert(out.end(), nets.begin(), nets.end());
        if (nets.empty()) util::log(Level::warning, "{}: allow_file {} lists no network: every caller gets ADD_PERM",
                                    cfg.name, cfg.allow_file);
        return out;
    }
    if (out.empty()) out = default_callers();
    return out;
}

}  // namespace

core::Result<std::unique_ptr<Source>> open_drac_source(const config::SourceConfig& cfg, LoginSink& sink,
                                                       const core::Clock& clock) {
    auto allowed = allowed_callers(cfg);
    if (!allowed) return allowed.error();
    // The protocol answers untrusted callers itself (ADD_PERM), so every peer is admitted.
    DropinOptions o{.protocol = "drac",
                    .listen = cfg.listen.empty() ? std::vector<std::string>{"udp:0.0.0.0:0", "tcp:0.0.0.0:0"}
                                                 : cfg.listen,
                    .filter = util::PeerFilter::any()};
    auto src = DropinSource::open(cfg.name, std::move(o),
                                  std::make_unique<DracProtocol>(cfg.name, std::move(*allowed), sink, clock));
    if (!src) return src.error();
    return std::unique_ptr<Source>(std::move(*src));
}

}  // namespace rp::sources
