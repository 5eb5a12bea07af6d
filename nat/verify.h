// Full from-scratch checksum verification, for debug builds
// (-DNATD_VERIFY_CHECKSUMS, on in --config=asan): the shard checks that every
// packet whose checksums were valid before translation is still valid after
// the incremental updates. Never on the fast path of a release build.
#ifndef NATD_NAT_VERIFY_H_
#define NATD_NAT_VERIFY_H_

#include <cstdint>

#include "nat/packet_view.h"

namespace natd {

// True when the IPv4 header checksum (v4) and the L4 checksum (TCP, UDP
// unless zero over IPv4, ICMP/ICMPv6) of the parsed packet verify.
bool ChecksumsValid(const uint8_t* d, const PacketView& v);

}  // namespace natd

#endif  // NATD_NAT_VERIFY_H_
