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

#include "nat/checksum.h"
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
  friend bool operator==(const QuotedView&, const QuotedView&) = default;
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
  // The same, where the family is known when compiling (an Addr's kFamily).
  static constexpr uint16_t SrcAddrOffset(int family) { return family == 4 ? 12 : 8; }
  static constexpr uint16_t DstAddrOffset(int family) { return family == 4 ? 16 : 24; }
  // The "port" of the remote end as the tables key it: echo has none.
  uint16_t remote_port_of(uint16_t port) const { return kind == L4Kind::kEcho ? 0 : port; }
  friend bool operator==(const PacketView&, const PacketView&) = default;
};

// Parses data[0, len) (the general walk, every case). On success returns
// DropReason::kNone and fills *view.
DropReason ParsePacketAny(const uint8_t* data, size_t len, PacketView* view);

// ParseCommonPacket's TCP / UDP header after an IP header of kHdr bytes:
// whether it is all there (and consistent).
template <uint32_t kHdr>
[[gnu::always_inline]] inline bool CommonL4Valid(const uint8_t* d, uint32_t total, uint8_t proto) {
  const uint8_t* l4 = d + kHdr;
  const uint32_t avail = total - kHdr;  // total >= kHdr
  if (proto == kProtoTcp) {
    if (avail < 20) return false;
    const uint32_t doff = (l4[12] >> 4) * 4u;
    return doff >= 20 && doff <= avail;
  }
  if (proto == kProtoUdp) {
    if (avail < 8) return false;
    const uint32_t ulen = LoadBe16(l4 + 4);
    return ulen >= 8 && ulen <= avail;
  }
  return false;
}

// The view of a packet CommonL4Valid accepted (IPv4 without options and not
// a fragment, or IPv6 without extension headers), `total` bytes long. Also
// for Shard::Process, whose look-ahead checked the packet.
template <uint32_t kHdr>
[[gnu::always_inline]] inline void FillCommonView(const uint8_t* d, uint32_t total, uint8_t proto, PacketView* v) {
  const uint8_t* l4 = d + kHdr;
  *v = PacketView{};
  v->len = total;
  v->family = kHdr == 20 ? 4 : 6;
  v->proto = proto;
  v->kind = proto == kProtoTcp ? L4Kind::kTcp : L4Kind::kUdp;
  if (kHdr == 20) v->frag_id = LoadBe16(d + 4);
  v->l4 = uint16_t(kHdr);
  v->src_port = LoadBe16(l4);
  v->dst_port = LoadBe16(l4 + 2);
  if (proto == kProtoTcp) v->tcp_flags = l4[13];
}

template <uint32_t kHdr>
[[gnu::always_inline]] inline bool ParseCommonL4(const uint8_t* d, uint32_t total, uint8_t proto, PacketView* v) {
  if (!CommonL4Valid<kHdr>(d, total, proto)) return false;
  FillCommonView<kHdr>(d, total, proto, v);
  return true;
}

// ParseCommonPacket's IP header test, the family known (kHdr 20: IPv4,
// whose first byte the caller found 0x45; 40: IPv6, its version checked and
// len >= 40): the packet's own length, or 0 when it is not the common one.
template <uint32_t kHdr>
[[gnu::always_inline]] inline uint32_t CommonIpTotal(const uint8_t* d, size_t len) {
  if constexpr (kHdr == 20) {
    const uint32_t total = LoadBe16(d + 2);  // <= 0xffff: ParsePacketAny's length cap never applies
    return total > len || total < 20 || (LoadBe16(d + 6) & 0x3fff) != 0 ? 0 : total;
  } else {
    const uint32_t total = 40 + LoadBe16(d + 4);  // <= 0xffff + 40: nor here
    return total > len ? 0 : total;  // TCP or UDP next (CommonL4Valid): no extension header
  }
}

// The common packet without the general walk: IPv4 without options and not
// a fragment, or IPv6 without extension headers, carrying TCP or UDP whose
// header is all there (and consistent). Fills *view as ParsePacketAny would
// and returns true; false for anything else, *view then unspecified. Reads
// nothing before checking it is there.
[[gnu::always_inline]] inline bool ParseCommonPacket(const uint8_t* d, size_t len, PacketView* v) {
  if (len < 20) return false;
  if (d[0] == 0x45) {
    const uint32_t total = CommonIpTotal<20>(d, len);
    return total != 0 && ParseCommonL4<20>(d, total, d[9], v);
  }
  if ((d[0] >> 4) == 6 && len >= 40) {
    const uint32_t total = CommonIpTotal<40>(d, len);
    return total != 0 && ParseCommonL4<40>(d, total, d[6], v);
  }
  return false;
}

// Parses data[0, len). On success returns DropReason::kNone and fills *view.
// The common packet's parse is inlined into the caller.
[[gnu::always_inline]] inline DropReason ParsePacket(const uint8_t* data, size_t len, PacketView* view) {
  return ParseCommonPacket(data, len, view) ? DropReason::kNone : ParsePacketAny(data, len, view);
}

}  // namespace natd

#endif  // NATD_NAT_PACKET_VIEW_H_
