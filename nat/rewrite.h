// In-place field rewrites that report how the enclosing checksum changes.
// Each returns the RFC 1624 delta of the bytes it changed, so a caller can
// fold several changes into one update of a covering checksum (an ICMP error
// covers the quoted header, its checksums included).
#ifndef NATD_NAT_REWRITE_H_
#define NATD_NAT_REWRITE_H_

#include <cstdint>

#include "nat/checksum.h"

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

inline void UpdateL4Checksum(uint8_t* p, ChecksumMode mode, bool udp, uint16_t full_delta, uint16_t pseudo_delta) {
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

}  // namespace natd

#endif  // NATD_NAT_REWRITE_H_
