// relay-ctrl UDP wire format: what relay-ctrl-send (relay-ctrl 3.x, run by a POP server after a
// login) sends to port 811 of each host in its list, and the acknowledgement it waits for. Pure;
// the I/O is in relay_ctrl_source.cpp.
//
// REQUEST: one datagram holding the client's address as text, e.g. "192.0.2.7" (trailing NUL
//          bytes, CR, LF and blanks are tolerated).
// REPLY:   one datagram of one byte 0x01. Without it relay-ctrl-send sends again (five times).
//
// Thread-safety: plain functions.
// Security: the datagram is untrusted; anything but one address gives nothing (and no reply).
#pragma once

#include <optional>
#include <string_view>

#include "core/address.hpp"

namespace rp::sources {

inline constexpr char k_relay_ctrl_ack = '\x01';

std::optional<core::Address> parse_relay_ctrl_datagram(std::string_view datagram);

}  // namespace rp::sources
