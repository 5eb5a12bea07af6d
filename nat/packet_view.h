// PacketView: one parse of an IP packet into the few offsets and values the
// translator needs (after Katran's `packet_description`).
//
//   IPv4 (options kept) | IPv6 [hop-by-hop | routing | destination options]*
//     -> TCP | UDP | ICMP/ICMPv6 echo | ICMP/ICMPv6 error -> quoted IP -> quoted L4
//
// Every header is bounds-checked before it is read; a packet that is
// truncated or inconsistent gets a named DropReason and nothing else is read.
// Ports are kept in host order. For ICMP echo the identifier is the "port" of
// both ends (src_port == dst_port == id).
//
// Fragments (IPv4 MF/offset, IPv6 Fragment header; an IPv6 atomic fragment
// is not a fragment, RFC 6946): `fragment` is set with the datagram's
// identification; a first fragment is parsed down to its L4 header like a
// whole packet (the UDP length then covers more than is here), a later one
// (`later_fragment`) stops at its IP header. A first fragment too short for
// its L4 header is a `tiny-fragment`; a fragmented ICMP error is refused.
//
// Deliberately not parsed: IPsec, and any ICMP type that is neither echo nor
// one of the errors Destination Unreachable, Time Exceeded, Parameter Problem
// and (v6) Packet Too Big.
#ifndef NATD_NAT_PACKET_VIEW_H_
#define NATD_NAT_PACKET_VIEW_H_

#include <cstddef>
#include <cstdint>

#include "nat/drop_reason.h"

namespace natd {

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmp6 = 58;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

enum class L4Kind : uint8_t { kNone, kTcp, kUdp, kEcho, kError };

// The packet an ICMP error quotes: the IP header and the start of its L4.
struct QuotedView {
  uint16_t l3 = 0;  // offset of the quoted IP header in the packet
  uint16_t l4 = 0;  // offset of the quoted L4 header
  uint32_t end = 0;  // end of the quote (the end of the outer packet)
  uint8_t proto = 0;
  L4Kind kind = L4Kind::kNone;  // kTcp, kUdp or kEcho
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

struct PacketView {
  uint32_t len = 0;  // the IP packet's own length (bytes beyond it are ignored)
  uint8_t family = 0;  // 4 or 6
  uint8_t proto = 0;  // upper-layer protocol after extension headers
  L4Kind kind = L4Kind::kNone;
  bool fragment = false;        // one fragment of a datagram
  bool later_fragment = false;  // not the first: nothing below IP was parsed
  uint32_t frag_id = 0;         // the datagram's identification (IPv4: 16 bits)
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t l4 = 0;  // offset of the L4 header
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  QuotedView quote;  // valid when kind == kError

  uint16_t src_addr_offset() const { return family == 4 ? 12 : 8; }
  uint16_t dst_addr_offset() const { return family == 4 ? 16 : 24; }
  // The "port" of the remote end as the tables key it: echo has none.
  uint16_t remote_port_of(uint16_t port) const { return kind == L4Kind::kEcho ? 0 : port; }
};

// Parses data[0, len). On success returns DropReason::kNone and fills *view.
DropReason ParsePacket(const uint8_t* data, size_t len, PacketView* view);

}  // namespace natd

#endif  // NATD_NAT_PACKET_VIEW_H_
