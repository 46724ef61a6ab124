// DRAC wire format: the ONC RPC (RFC 5531) calls of program 900101 that dracauth() clients send
// (Dovecot's drac plugin, patched qpopper and UW servers), the replies rpc.dracd gives, TCP
// record marking, the rpcbind (RFC 1833) SET/UNSET calls that announce the program, and
// rpc.dracd's dracd.allow file. Pure: bytes in, values out; the I/O is in drac_source.cpp.
//
// CALL (all XDR: big-endian 4-byte units, opaque data padded to 4 bytes):
//   xid, msg_type 0 (CALL), rpcvers 2, prog 900101, vers, proc,
//   cred {flavor, length <= 400, body}, verf {flavor, length <= 400, body}, arguments
//   vers 1 proc 1 DRACPROC_ADD: unsigned long ip_addr   the IPv4 address as a number: the 4
//                                                       bytes on the wire are network order
//   vers 2 proc 1 DRACPROC_ADD: char ip_addr6[16]       rpcgen's xdr_vector of xdr_char: 16
//                                                       ints, each a sign-extended byte
//   proc 0 NULL: no arguments, empty result
// REPLY (accepted): xid, 1 (REPLY), 0 (MSG_ACCEPTED), verf AUTH_NONE {0, 0}, accept_stat, and
//   SUCCESS (0): addstat  (0 ADD_SUCCESS, 1 ADD_PERM: caller not allowed, 2 ADD_SYSERR)
//   PROG_UNAVAIL (1); PROG_MISMATCH (2): low 1, high 2; PROC_UNAVAIL (3); GARBAGE_ARGS (4)
// REPLY (denied): xid, 1, 1 (MSG_DENIED), 0 (RPC_MISMATCH), low 2, high 2.
// Example, a v1 ADD of 192.0.2.7 (hex): xid 00000001 00000000 00000002 00015f95 00000001
//   00000001, cred 00000000 00000000, verf 00000000 00000000, c0000207.
// A message that is not a call, or too short to hold one, gets no answer (as rpc.dracd).
//
// Record marking (TCP): each message is one or more fragments, each preceded by a 4-byte
// header: bit 31 = last fragment, bits 0-30 = fragment length.
//
// dracd.allow: one `netmask netaddr` pair of dotted quads per line (`255.255.255.0 192.0.2.0`);
// lines starting with '#' and blank lines are comments. rpc.dracd admits a caller when
// (caller & netmask) == netaddr.
//
// Thread-safety: plain functions and value types; RecordReader is a value per connection.
// Security: all input is untrusted network data: every length is checked against what remains
// and bounded (opaque auth bodies 400 bytes, records `max_record`); nothing is allocated from a
// length read off the wire beyond those bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/result.hpp"

namespace rp::sources {

inline constexpr std::uint32_t k_drac_program = 900101;

enum class AddStat : std::uint32_t { success = 0, perm = 1, syserr = 2 };

// What to do with one RPC message.
struct DracRequest {
    enum class Kind : std::uint8_t {
        drop,    // not a call (or too short to answer): send nothing
        answer,  // send `reply` as it is (NULL procedure, or an RPC-level error)
        add,     // DRACPROC_ADD of `address`: decide, then send encode_drac_reply(xid, stat)
    };
    Kind kind = Kind::drop;
    std::uint32_t xid = 0;
    std::uint32_t version = 0;
    std::optional<core::Address> address;
    std::string reply;
    bool malformed = false;  // drop, or an error answer: the message broke the protocol
    std::string error;       // why, for the log (never contains message bytes)
};

DracRequest decode_drac_request(std::string_view msg);
std::string encode_drac_reply(std::uint32_t xid, AddStat stat);

// Reassembles record-marked messages from a byte stream.
class RecordReader {
public:
    enum class State : std::uint8_t { record, need_more, error };
    explicit RecordReader(std::size_t max_record = 8192) : max_record_(max_record) {}
    void feed(std::string_view in) { buf_.append(in); }
    // record: `out` holds the next complete message. error: a record longer than max_record;
    // the stream cannot be resynchronised (every later call returns error).
    State next(std::string& out);
    std::size_t buffered() const { return buf_.size() + record_.size(); }

private:
    std::size_t max_record_;
    std::string buf_;     // unparsed bytes
    std::string record_;  // fragments of the current record so far
    bool failed_ = false;
};

std::string frame_record(std::string_view msg);  // one last fragment

// rpcbind version 4 SET (proc 1) / UNSET (proc 2) of (prog, vers, netid, universal address).
enum class RpcbProc : std::uint32_t { set = 1, unset = 2 };
std::string encode_rpcb_call(std::uint32_t xid, RpcbProc proc, std::uint32_t prog, std::uint32_t vers,
                             std::string_view netid, std::string_view uaddr, std::string_view owner);
// The boolean result of an accepted, successful reply to call `xid`; an error otherwise.
core::Result<bool> parse_rpcb_reply(std::string_view msg, std::uint32_t xid);
// "a.b.c.d.p1.p2" / "2001:db8::1.p1.p2": the universal address of `a` and `port`.
std::string universal_address(const core::Address& a, int port);

// The networks of a dracd.allow text. Lines that are neither comments nor a valid pair (a
// non-contiguous mask, host bits in netaddr, anything else) are skipped and described in
// `skipped` ("line 3: ...").
std::vector<core::Cidr> parse_dracd_allow(std::string_view text, std::vector<std::string>& skipped);

}  // namespace rp::sources
