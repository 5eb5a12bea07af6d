// In-place field rewrites that report how the enclosing checksum changes.
// Each returns the RFC 1624 delta of the bytes it changed, so a caller can
// fold several changes into one update of a covering checksum (an ICMP error
// covers the quoted header, its checksums included).
#ifndef NATD_NAT_REWRITE_H_
#define NATD_NAT_REWRITE_H_

#include <cstdint>

#include "nat/checksum.h"
#include "nat/packet_view.h"

namespace natd {

template <typename Addr>
inline uint16_t RewriteAddr(uint8_t* p, const Addr& to) {
  uint16_t delta = AddrDelta(Addr::Load(p), to);
  to.Store(p);
  return delta;
}

inline uint16_t RewritePort(uint8_t* p, uint16_t to_host) { return Rewrite16(p, ToRaw16(to_host)); }

// Applies `delta` to the checksum at p; returns the delta of the field itself.
inline uint16_t UpdateChecksum(uint8_t* p, uint16_t delta) {
  uint16_t old = LoadRaw16(p);
  ApplyDeltaAt(p, delta);
  return Delta16(old, LoadRaw16(p));
}

inline uint16_t UpdateUdpChecksum(uint8_t* p, uint16_t delta) {
  uint16_t old = LoadRaw16(p);
  ApplyDeltaUdpAt(p, delta);
  return Delta16(old, LoadRaw16(p));
}

// Updates an L4 checksum field for a rewrite whose whole change sums to
// `full_delta`, of which `pseudo_delta` is the pseudo-header's part (the
// addresses). With checksum offload (a TUN's VIRTIO_NET_HDR_F_NEEDS_CSUM, the
// kernel's CHECKSUM_PARTIAL) the field holds the folded pseudo-header sum,
// not complemented, and the device sums the L4 bytes later: then only the
// pseudo-header part is added, as a plain ones' complement sum.
enum class ChecksumMode : uint8_t { kFull, kPartial };

[[gnu::always_inline]] inline void UpdateL4Checksum(uint8_t* p, ChecksumMode mode, bool udp, uint16_t full_delta,
                                                     uint16_t pseudo_delta) {
  if (mode == ChecksumMode::kPartial) {
    StoreRaw16(p, AddDelta(LoadRaw16(p), pseudo_delta));
  } else if (udp) {
    ApplyDeltaUdpAt(p, full_delta);
  } else {
    ApplyDeltaAt(p, full_delta);
  }
}

// Where a packet's L4 checksum sits, relative to the L4 header.
inline constexpr uint16_t kTcpChecksumOffset = 16;
inline constexpr uint16_t kUdpChecksumOffset = 6;
inline constexpr uint16_t kIcmpChecksumOffset = 2;
inline constexpr uint16_t kEchoIdOffset = 4;

// In the packet an ICMP error quotes: rewrites one port of its TCP/UDP header
// (at `port_offset`: 0 the source, 2 the destination) or its echo identifier
// to `port`, and its L4 checksum by `l4_delta` when the quote holds all of
// that field. Returns the ICMP checksum's delta for everything it changed.
inline uint16_t RewriteQuotedL4(uint8_t* ql4, uint32_t quoted_len, L4Kind kind, uint16_t port_offset, uint16_t port,
                                uint16_t l4_delta) {
  switch (kind) {
    case L4Kind::kTcp: {
      uint16_t delta = RewritePort(ql4 + port_offset, port);
      if (quoted_len >= kTcpChecksumOffset + 2u) {
        delta = AddDelta(delta, UpdateChecksum(ql4 + kTcpChecksumOffset, l4_delta));
      }
      return delta;
    }
    case L4Kind::kUdp:
      return AddDelta(RewritePort(ql4 + port_offset, port), UpdateUdpChecksum(ql4 + kUdpChecksumOffset, l4_delta));
    default:  // echo: the identifier is both ends' "port"
      return AddDelta(RewritePort(ql4 + kEchoIdOffset, port), UpdateChecksum(ql4 + kIcmpChecksumOffset, l4_delta));
  }
}

}  // namespace natd

#endif  // NATD_NAT_REWRITE_H_
