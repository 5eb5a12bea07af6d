// in2out: an inside host's packet leaves through natd.
//
//   X:x -> Y:y   becomes   G:x' -> Y:y
//
// The session (and if needed the mapping) comes from the MappingTable of the
// packet's protocol; the source address and port (echo identifier) are
// rewritten in place and every checksum is updated with the mapping's
// precomputed deltas: the IPv4 header checksum with the address delta, the
// L4 checksum with the address+port delta (ICMPv4 echo: the identifier only,
// it has no pseudo-header). A zero IPv4 UDP checksum stays zero. With
// checksum offload (kPartial) only the pseudo-header sum in the field moves.
//
// An ICMP error an inside host sends about a packet it received through natd
// (RFC 5508 §4.2: a port unreachable for a UDP datagram, say) quotes that
// packet as delivered, Y:y -> X:x; it leaves as the remote end must see it:
//
//   outer IP   src X -> G                (IPv4 header checksum; ICMPv6
//                                         pseudo-header)
//   quoted IP  dst X -> G                (quoted IPv4 header checksum)
//   quoted L4  dport x -> x'             (quoted L4 checksum, if quoted)
//   ICMP checksum: the sum of every change above.
//
// It is matched by the quoted session and never creates or refreshes state.
// Fragments: the shard passes a first fragment here like a whole packet and
// rewrites later ones itself (fragment_table.h).
#ifndef NATD_NAT_IN2OUT_H_
#define NATD_NAT_IN2OUT_H_

#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/rewrite.h"

namespace natd {

// Inlined: one caller (Shard::Translate), on every outbound packet. `ahead`,
// `candidate`: the key a batch's look-ahead hashed for the packet and the
// session it found in this table (MappingTable::Outbound).
template <typename Addr>
[[gnu::always_inline]] inline DropReason TranslateOutbound(MappingTable<Addr>& table, uint8_t* d, const PacketView& v,
                                                           ChecksumMode mode, int64_t now,
                                                           const Hashed<InsideKey<Addr>>* ahead = nullptr,
                                                           uint32_t candidate = kNil) {
  uint8_t* src = d + v.SrcAddrOffset(Addr::kFamily);
  const Addr remote = Addr::Load(d + v.DstAddrOffset(Addr::kFamily));
  auto r = table.Outbound(Addr::Load(src), v.src_port, remote, v.remote_port_of(v.dst_port), v.tcp_flags, v.len, now,
                          ahead, candidate);
  if (r.drop != DropReason::kNone) return r.drop;
  const auto& m = table.mapping_of(r.session);
  table.global().Store(src);
  if (Addr::kFamily == 4) ApplyDeltaAt(d + 10, m.ip_delta);
  uint8_t* l4 = d + v.l4;
  switch (v.kind) {
    case L4Kind::kTcp:
      StoreBe16(l4, m.external_port);
      UpdateL4Checksum(l4 + kTcpChecksumOffset, mode, false, m.l4_delta, m.ip_delta);
      break;
    case L4Kind::kUdp:
      StoreBe16(l4, m.external_port);
      UpdateL4Checksum(l4 + kUdpChecksumOffset, mode, true, m.l4_delta, m.ip_delta);
      break;
    default:  // echo; ICMPv4 has no pseudo-header
      StoreBe16(l4 + kEchoIdOffset, m.external_port);
      UpdateL4Checksum(l4 + kIcmpChecksumOffset, mode, false, m.l4_delta, Addr::kFamily == 4 ? 0 : m.ip_delta);
      break;
  }
  return DropReason::kNone;
}

template <typename Addr>
DropReason TranslateOutboundError(MappingTable<Addr>& table, uint8_t* d, const PacketView& v, ChecksumMode mode) {
  const QuotedView& q = v.quote;
  const uint16_t qsrc_off = q.l3 + v.src_addr_offset();
  const uint16_t qdst_off = q.l3 + v.dst_addr_offset();
  const Addr remote = Addr::Load(d + qsrc_off);
  const uint32_t s =
      table.FindInside(Addr::Load(d + qdst_off), q.dst_port, remote, q.kind == L4Kind::kEcho ? 0 : q.src_port);
  if (s == kNil) return DropReason::kIcmpErrorNoSession;
  const auto& m = table.mapping_of(s);

  // Outer source: whoever inside sent the error, it leaves from the global address.
  const uint16_t outer_delta = RewriteAddr(d + v.src_addr_offset(), table.global());
  uint16_t icmp_delta = 0;
  if (v.family == 4) {
    ApplyDeltaAt(d + 10, outer_delta);
  } else {
    icmp_delta = outer_delta;  // ICMPv6 checksums the pseudo-header
  }
  // Quoted destination address, and the quoted IPv4 header checksum.
  icmp_delta = AddDelta(icmp_delta, RewriteAddr(d + qdst_off, table.global()));
  if (v.family == 4) icmp_delta = AddDelta(icmp_delta, UpdateChecksum(d + q.l3 + 10, m.ip_delta));
  // Quoted destination port / identifier, and the quoted L4 checksum if quoted.
  icmp_delta =
      AddDelta(icmp_delta, RewriteQuotedL4(d + q.l4, q.end - q.l4, q.kind, 2, m.external_port, m.l4_delta));
  UpdateL4Checksum(d + v.l4 + kIcmpChecksumOffset, mode, false, icmp_delta, v.family == 4 ? 0 : outer_delta);
  return DropReason::kNone;
}

}  // namespace natd

#endif  // NATD_NAT_IN2OUT_H_
