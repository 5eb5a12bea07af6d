// The engine's configuration, fixed at start. The daemon fills it from flags
// (tools/); ValidateConfig refuses impossible combinations with a message
// that names the setting.
#ifndef NATD_NAT_CONFIG_H_
#define NATD_NAT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "nat/addr.h"
#include "nat/behavior.h"
#include "nat/port_set.h"
#include "nat/prefix_set.h"

namespace natd {

// The defaults are the RFCs' minimums. Only UDP's floor is enforced (RFC 4787
// REQ-5 says never under 2 min); shorter TCP and ICMP timeouts are the
// operator's choice (and the tests' way to see expiry in seconds).
struct Timeouts {
  // RFC 5382 REQ-5: established >= 2 h 4 min; transitory (opening, closing,
  // reset) >= 4 min.
  int64_t tcp_established_ms = (2 * 3600 + 4 * 60) * 1000;
  int64_t tcp_transitory_ms = 4 * 60 * 1000;
  // RFC 4787 REQ-5: UDP mappings must not expire in under 2 min; 5 min is
  // the recommended default.
  int64_t udp_ms = 5 * 60 * 1000;
  int64_t icmp_ms = 60 * 1000;  // RFC 5508 REQ-1: at least 60 s
};

inline constexpr int64_t kMinUdpTimeoutMs = 2 * 60 * 1000;

struct EngineConfig {
  uint32_t shards = 1;
  std::optional<Ip4> global4;
  std::optional<Ip6> global6;
  // Address pools: more global addresses after global4 / global6. Each has
  // its own port slices (every shard its slice of each address's ports) and
  // its share of the table capacity; every mapping of one inside address uses
  // the same one ("paired", RFC 4787 REQ-2; PairedIndex in addr.h).
  std::vector<Ip4> more_global4;
  std::vector<Ip6> more_global6;
  Behavior tcp = *PresetByName("port-restricted-cone");
  Behavior udp = *PresetByName("port-restricted-cone");
  Behavior icmp = *PresetByName("port-restricted-cone");
  PortSet ports = *PortSet::Range(1024, 65535);
  Timeouts timeouts;
  // Sessions each table (one protocol of one family) holds across all
  // shards; storage for them is allocated at start.
  uint32_t max_sessions = 1 << 18;
  // Make the tables' reserved memory resident at start (nat/table_alloc.h),
  // so that resident memory does not creep up as sessions land on pages
  // never touched before.
  bool prefault = false;
  // Sessions one inside address may hold in each table (protocol and
  // family); 0: no limit (RFC 6888 REQ-4). Enforced per shard, as
  // ceil(limit / shards), since a host's endpoints spread over the shards.
  uint32_t max_sessions_per_host = 0;
  // When a new mapping or session is refused (no port, table full, host
  // quota), the inside host gets an ICMP Destination Unreachable
  // "communication administratively prohibited" (ICMPv4 code 13, RFC 1812
  // §5.2.7.1; ICMPv6 code 1, RFC 4443 §3.1), at most this many per second
  // per shard; 0: never.
  uint32_t icmp_prohibited_per_second = 100;
  // Random external ports tried before a new mapping is refused.
  uint32_t port_probes = 32;
  // Inbound UDP refreshes a session too (RFC 4787 REQ-6 makes it optional).
  bool udp_inbound_refresh = false;
  // The inside networks. A packet from one of them to a global address is
  // hairpinned (RFC 4787 REQ-9, RFC 5382 REQ-8): translated outbound for its
  // sender, then inbound to the inside host that holds the destination port.
  // From any other source it is plain inbound.
  PrefixSet inside = PrefixSet::Private();
  // Fragmented datagrams (fragment_table.h), over all shards: entries for
  // datagrams in flight, fragments held until their datagram's first one
  // arrives (by count and bytes), and how long an entry outlives its last
  // fragment (and a held fragment waits).
  uint32_t fragment_datagrams = 4096;
  uint32_t fragments_held = 512;
  uint32_t fragment_held_bytes = 4 << 20;
  int64_t fragment_timeout_ms = 5000;
  // Explicit mappings inside hosts may ask for (PCP / NAT-PMP), per protocol
  // and family over all shards; 0: none (the server is off). Each inside
  // address may hold at most explicit_per_host of them per table.
  uint32_t explicit_mappings = 0;
  uint32_t explicit_per_host = 64;
  // Seed for port randomization; 0 picks one from the OS.
  uint64_t seed = 0;
};

absl::Status ValidateConfig(const EngineConfig& c);

}  // namespace natd

#endif  // NATD_NAT_CONFIG_H_
