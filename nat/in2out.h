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
// Not handled here (dropped with a named reason by the shard): ICMP errors
// sent by inside hosts (kOutboundIcmpError) and fragments (kFragment).
#ifndef NATD_NAT_IN2OUT_H_
#define NATD_NAT_IN2OUT_H_

#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/rewrite.h"

namespace natd {

template <typename Addr>
DropReason TranslateOutbound(MappingTable<Addr>& table, uint8_t* d, const PacketView& v, ChecksumMode mode,
                             int64_t now) {
  uint8_t* src = d + v.src_addr_offset();
  const Addr remote = Addr::Load(d + v.dst_addr_offset());
  auto r = table.Outbound(Addr::Load(src), v.src_port, remote, v.remote_port_of(v.dst_port), v.tcp_flags, v.len, now);
  if (r.drop != DropReason::kNone) return r.drop;
  const auto& m = table.mapping_of(r.session);
  table.global().Store(src);
  if (v.family == 4) ApplyDeltaAt(d + 10, m.ip_delta);
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
      UpdateL4Checksum(l4 + kIcmpChecksumOffset, mode, false, m.l4_delta, v.family == 4 ? 0 : m.ip_delta);
      break;
  }
  return DropReason::kNone;
}

}  // namespace natd

#endif  // NATD_NAT_IN2OUT_H_
