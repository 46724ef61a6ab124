#include "sources/drac_codec.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace rp::sources {
namespace {

constexpr std::uint32_t k_call = 0, k_reply = 1;
constexpr std::uint32_t k_rpc_version = 2;
constexpr std::uint32_t k_max_auth = 400;  // RFC 5531: opaque_auth bodies are at most 400 bytes
constexpr std::uint32_t k_rpcb_program = 100000, k_rpcb_version = 4;
enum AcceptStat : std::uint32_t { success = 0, prog_unavail = 1, prog_mismatch = 2, proc_unavail = 3, garbage_args = 4 };

// Reads XDR units from a message; every read checks what remains.
class XdrReader {
public:
    explicit XdrReader(std::string_view in) : in_(in) {}
    bool u32(std::uint32_t& v) {
        if (in_.size() < 4) return false;
        v = (std::uint32_t(std::uint8_t(in_[0])) << 24) | (std::uint32_t(std::uint8_t(in_[1])) << 16) |
            (std::uint32_t(std::uint8_t(in_[2])) << 8) | std::uint32_t(std::uint8_t(in_[3]));
        in_.remove_prefix(4);
        return true;
    }
    // An opaque_auth: flavor, then a body of at most k_max_auth bytes, padded.
    bool skip_auth() {
        std::uint32_t flavor = 0, len = 0;
        if (!u32(flavor) || !u32(len) || len > k_max_auth) return false;
        const std::size_t padded = (len + 3) & ~std::size_t{3};
        if (in_.size() < padded) return false;
        in_.remove_prefix(padded);
        return true;
    }
    std::string_view rest() const { return in_; }

private:
    std::string_view in_;
};

void put_u32(std::string& out, std::uint32_t v) {
    const std::array<char, 4> b{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.append(b.data(), b.size());
}

void put_string(std::string& out, std::string_view s) {
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out.append(s);
    out.append((4 - s.size() % 4) % 4, '\0');
}

std::string accepted_header(std::uint32_t xid, std::uint32_t stat) {
    std::string out;
    for (std::uint32_t v : {xid, k_reply, 0u /*MSG_ACCEPTED*/, 0u /*AUTH_NONE*/, 0u /*length*/, stat}) put_u32(out, v);
    return out;
}

DracRequest answer(std::uint32_t xid, std::string reply, std::string error = {}) {
    DracRequest r;
    r.kind = DracRequest::Kind::answer;
    r.xid = xid;
    r.reply = std::move(reply);
    r.malformed = !error.empty();
    r.error = std::move(error);
    return r;
}

DracRequest dropped(std::string error) {
    DracRequest r;
    r.malformed = true;
    r.error = std::move(error);
    return r;
}

// The arguments of DRACPROC_ADD for `vers` (1 or 2), or nothing when they do not decode.
std::optional<core::Address> decode_add_args(std::uint32_t vers, std::string_view args) {
    XdrReader r(args);
    if (vers == 1) {
        std::uint32_t ip = 0;
        if (!r.u32(ip)) return std::nullopt;
        return core::Address::v4(ip);
    }
    std::array<std::uint8_t, 16> bytes{};
    for (auto& b : bytes) {
        std::uint32_t v = 0;
        if (!r.u32(v)) return std::nullopt;
        // A char as xdr_char sends it: a sign-extended (-128..127) or plain (0..255) byte.
        const auto s = static_cast<std::int32_t>(v);
        if (s < -128 || s > 255) return std::nullopt;
        b = static_cast<std::uint8_t>(v & 0xff);
    }
    return core::Address::v6(bytes);  // v4-mapped becomes IPv4
}

}  // namespace

DracRequest decode_drac_request(std::string_view msg) {
    XdrReader r(msg);
    std::uint32_t xid = 0, type = 0, rpcvers = 0, prog = 0, vers = 0, proc = 0;
    if (!r.u32(xid) || !r.u32(type)) return dropped("message shorter than an RPC header");
    if (type != k_call) return dropped("not an RPC call");
    if (!r.u32(rpcvers)) return dropped("truncated RPC call");
    if (rpcvers != k_rpc_version) {
        std::string out;
        for (std::uint32_t v : {xid, k_reply, 1u /*MSG_DENIED*/, 0u /*RPC_MISMATCH*/, k_rpc_version, k_rpc_version})
            put_u32(out, v);
        return answer(xid, std::move(out), "RPC version " + std::to_string(rpcvers));
    }
    if (!r.u32(prog) || !r.u32(vers) || !r.u32(proc) || !r.skip_auth() || !r.skip_auth())
        return dropped("truncated RPC call");
    if (prog != k_drac_program) return answer(xid, accepted_header(xid, prog_unavail), "program " + std::to_string(prog));
    if (vers != 1 && vers != 2) {
        auto out = accepted_header(xid, prog_mismatch);
        put_u32(out, 1);
        put_u32(out, 2);
        return answer(xid, std::move(out), "version " + std::to_string(vers));
    }
    if (proc == 0) return answer(xid, accepted_header(xid, success));
    if (proc != 1) return answer(xid, accepted_header(xid, proc_unavail), "procedure " + std::to_string(proc));
    auto address = decode_add_args(vers, r.rest());
    if (!address) return answer(xid, accepted_header(xid, garbage_args), "undecodable DRACPROC_ADD arguments");
    DracRequest req;
    req.kind = DracRequest::Kind::add;
    req.xid = xid;
    req.version = vers;
    req.address = address;
    return req;
}

std::string encode_drac_reply(std::uint32_t xid, AddStat stat) {
    auto out = accepted_header(xid, success);
    put_u32(out, static_cast<std::uint32_t>(stat));
    return out;
}

RecordReader::State RecordReader::next(std::string& out) {
    if (failed_) return State::error;
    for (;;) {
        if (buf_.size() < 4) return State::need_more;
        std::uint32_t header = 0;
        XdrReader(buf_).u32(header);
        const bool last = (header & 0x80000000u) != 0;
        const std::size_t len = header & 0x7fffffffu;
        if (record_.size() + len > max_record_) {
            failed_ = true;
            buf_.clear();
            record_.clear();
            return State::error;
        }
        if (buf_.size() < 4 + len) return State::need_more;
        record_.append(buf_, 4, len);
        buf_.erase(0, 4 + len);
        if (last) {
            out = std::move(record_);
            record_.clear();
            return State::record;
        }
    }
}

std::string frame_record(std::string_view msg) {
    std::string out;
    put_u32(out, 0x80000000u | static_cast<std::uint32_t>(msg.size()));
    out.append(msg);
    return out;
}

std::string encode_rpcb_call(std::uint32_t xid, RpcbProc proc, std::uint32_t prog, std::uint32_t vers,
                             std::string_view netid, std::string_view uaddr, std::string_view owner) {
    std::string out;
    for (std::uint32_t v : {xid, k_call, k_rpc_version, k_rpcb_program, k_rpcb_version, static_cast<std::uint32_t>(proc),
                            0u, 0u, 0u, 0u /*cred and verf: AUTH_NONE*/, prog, vers})
        put_u32(out, v);
    put_string(out, netid);
    put_string(out, uaddr);
    put_string(out, owner);
    return out;
}

core::Result<bool> parse_rpcb_reply(std::string_view msg, std::uint32_t xid) {
    XdrReader r(msg);
    std::uint32_t got = 0, type = 0, reply_stat = 0, stat = 0, value = 0;
    if (!r.u32(got) || !r.u32(type) || !r.u32(reply_stat)) return core::make_error("short reply");
    if (got != xid || type != k_reply) return core::make_error("not the reply to our call");
    if (reply_stat != 0) return core::make_error("call denied (authentication or RPC version)");
    if (!r.skip_auth() || !r.u32(stat)) return core::make_error("short reply");
    if (stat != success) return core::make_error("call not accepted (status " + std::to_string(stat) + ")");
    if (!r.u32(value)) return core::make_error("short reply");
    return value != 0;
}

std::string universal_address(const core::Address& a, int port) {
    return fmt::format("{}.{}.{}", a.to_string(), (port >> 8) & 0xff, port & 0xff);
}

namespace {

std::optional<core::Address> dotted_quad(std::string_view s) {
    auto a = core::Address::parse(s);
    if (!a || !a->is_v4() || s.find(':') != std::string_view::npos) return std::nullopt;
    return a;
}

// The prefix length of a contiguous netmask, or nothing.
std::optional<int> mask_prefix(const core::Address& mask) {
    std::uint32_t m = 0;
    for (int i = 0; i < 4; ++i) m = (m << 8) | mask.bytes()[static_cast<std::size_t>(i)];
    const std::uint32_t inverted = ~m;
    if ((inverted & (inverted + 1)) != 0) return std::nullopt;  // ones must all lead
    int n = 0;
    while (n < 32 && (m & (0x80000000u >> n)) != 0) ++n;
    return n;
}

}  // namespace

std::vector<core::Cidr> parse_dracd_allow(std::string_view text, std::vector<std::string>& skipped) {
    std::vector<core::Cidr> out;
    int number = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++number;
        const auto start = line.find_first_not_of(" \t\r");
        if (start == std::string_view::npos || line[start] == '#') continue;
        line.remove_prefix(start);
        const auto sp = line.find_first_of(" \t");
        const auto mask = dotted_quad(line.substr(0, sp));
        std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp);
        rest.remove_prefix(std::min(rest.size(), rest.find_first_not_of(" \t")));
        const auto end = rest.find_first_of(" \t\r#");
        const auto addr = dotted_quad(rest.substr(0, end));
        const auto prefix = mask ? mask_prefix(*mask) : std::nullopt;
        if (!mask || !addr || !prefix) {
            skipped.push_back(fmt::format("line {}: not a `netmask netaddr` pair of IPv4 addresses", number));
            continue;
        }
        const core::Cidr net(*addr, *prefix);
        if (net.network() != *addr) {
            skipped.push_back(fmt::format("line {}: {} has bits outside the netmask (it can never match)", number,
                                          addr->to_string()));
            continue;
        }
        out.push_back(net);
    }
    return out;
}

}  // namespace rp::sources
