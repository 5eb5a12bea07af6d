// out2in: a packet for natd's global address comes in from outside.
//
//   Y:y -> G:x'   becomes   Y:y -> X:x        (when filtering lets Y:y in)
//
// A plain packet is looked up by (Y, x', y) and rewritten with the negation of
// the mapping's deltas. An ICMP error (RFC 5508) about a packet natd sent out
// quotes that packet as it left, G:x' -> Y:y; it is matched by the quoted
// header, never creates or refreshes state, and is rewritten in four places:
//
//   outer IP   dst G -> X                (IPv4 header checksum; ICMPv6
//                                         pseudo-header)
//   ICMP       +---------------------+
//              | quoted IP  src G->X  |  quoted IPv4 header checksum
//              | quoted L4  sport x'->x  quoted L4 checksum, if quoted
//              +---------------------+
//   ICMP checksum: the sum of every change above (the quoted checksums'
//   own changes included).
#ifndef NATD_NAT_OUT2IN_H_
#define NATD_NAT_OUT2IN_H_

#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/rewrite.h"

namespace natd {

// Inlined: one caller (Shard::TranslateIn), on every inbound packet. `ahead`,
// `candidate`: as for TranslateOutbound.
template <typename Addr>
[[gnu::always_inline]] inline DropReason TranslateInbound(MappingTable<Addr>& table, uint8_t* d, const PacketView& v,
                                                          ChecksumMode mode, int64_t now,
                                                          const Hashed<OutsideKey<Addr>>* ahead = nullptr,
                                                          uint32_t candidate = kNil) {
  const Addr remote = Addr::Load(d + v.SrcAddrOffset(Addr::kFamily));
  auto r = table.Inbound(v.dst_port, remote, v.remote_port_of(v.src_port), v.tcp_flags, v.len, now, ahead, candidate);
  if (r.drop != DropReason::kNone) return r.drop;
  const auto& m = table.mapping_of(r.session);
  m.inside.Store(d + v.DstAddrOffset(Addr::kFamily));
  if (Addr::kFamily == 4) ApplyDeltaAt(d + 10, NegateDelta(m.ip_delta));
  uint8_t* l4 = d + v.l4;
  const uint16_t delta = NegateDelta(m.l4_delta);
  const uint16_t pseudo = NegateDelta(m.ip_delta);
  switch (v.kind) {
    case L4Kind::kTcp:
      StoreBe16(l4 + 2, m.inside_port);
      UpdateL4Checksum(l4 + kTcpChecksumOffset, mode, false, delta, pseudo);
      break;
    case L4Kind::kUdp:
      StoreBe16(l4 + 2, m.inside_port);
      UpdateL4Checksum(l4 + kUdpChecksumOffset, mode, true, delta, pseudo);
      break;
    default:  // echo; ICMPv4 has no pseudo-header
      StoreBe16(l4 + kEchoIdOffset, m.inside_port);
      UpdateL4Checksum(l4 + kIcmpChecksumOffset, mode, false, delta, Addr::kFamily == 4 ? 0 : pseudo);
      break;
  }
  return DropReason::kNone;
}

template <typename Addr>
DropReason TranslateInboundError(MappingTable<Addr>& table, uint8_t* d, const PacketView& v, ChecksumMode mode) {
  const QuotedView& q = v.quote;
  const uint16_t qsrc_off = q.l3 + v.src_addr_offset();
  const uint16_t qdst_off = q.l3 + v.dst_addr_offset();
  if (!(Addr::Load(d + qsrc_off) == table.global())) return DropReason::kIcmpErrorNoSession;
  const Addr remote = Addr::Load(d + qdst_off);
  const uint32_t s = table.FindOutside(q.src_port, remote, q.kind == L4Kind::kEcho ? 0 : q.dst_port);
  if (s == kNil) return DropReason::kIcmpErrorNoSession;
  const auto& m = table.mapping_of(s);

  // Outer destination.
  const uint16_t addr_delta = RewriteAddr(d + v.dst_addr_offset(), m.inside);
  uint16_t icmp_delta = 0;
  if (v.family == 4) {
    ApplyDeltaAt(d + 10, addr_delta);
  } else {
    icmp_delta = addr_delta;  // ICMPv6 checksums the pseudo-header
  }
  // Quoted source address, and the quoted IPv4 header checksum.
  icmp_delta = AddDelta(icmp_delta, RewriteAddr(d + qsrc_off, m.inside));
  if (v.family == 4) icmp_delta = AddDelta(icmp_delta, UpdateChecksum(d + q.l3 + 10, addr_delta));
  // Quoted source port / identifier, and the quoted L4 checksum if quoted.
  icmp_delta = AddDelta(icmp_delta, RewriteQuotedL4(d + q.l4, q.end - q.l4, q.kind, 0, m.inside_port,
                                                    NegateDelta(m.l4_delta)));
  // Offloaded: the device sums the ICMP message itself; only the ICMPv6
  // pseudo-header (the outer destination) is the field's to change.
  UpdateL4Checksum(d + v.l4 + kIcmpChecksumOffset, mode, false, icmp_delta, v.family == 4 ? 0 : addr_delta);
  return DropReason::kNone;
}

}  // namespace natd

#endif  // NATD_NAT_OUT2IN_H_
