// External port sets and their split into per-shard slices.
//
// A PortSet is the ports natd may give out: one or more ranges
// ("1024-65535", "20000-29999,40000-49999"), or a MAP-E port set
// (RFC 7597 §5.1) for one PSID:
//
//     port = A * 2^(16-a) + PSID * 2^m + j,   A = 1 .. 2^a - 1,  j = 0 .. 2^m - 1
//
//   0                   1
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//  +-------+---------------+-------+
//  |   A   |     PSID      |   j   |    v6plus: a=4, k=8, m=4 (15 blocks of 16 = 240 ports)
//  +-------+---------------+-------+    ocn-vc: a=6, k=6, m=4 (63 blocks of 16 = 1008 ports)
//
// A >= 1 keeps every port below 2^(16-a) out of the set (the system ports
// 0-1023 when a <= 6). ICMP echo identifiers come from the same set (RFC 7597 §8.2).
//
// A PortPlan cuts the set, in ascending order, into one contiguous slice per
// shard. Ownership is a pure function of the port, so steering an inbound
// packet to its shard needs no table.
#ifndef NATD_NAT_PORT_SET_H_
#define NATD_NAT_PORT_SET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace natd {

class PortSet {
 public:
  // Accepts "LO-HI[,LO-HI...]" (a single port "P" too), "v6plus:PSID",
  // "ocn-vc:PSID" and "map-e:a=A,k=K,m=M,psid=PSID" (numbers decimal or 0x hex).
  static absl::StatusOr<PortSet> Parse(std::string_view spec);
  static absl::StatusOr<PortSet> Range(uint32_t lo, uint32_t hi);
  static absl::StatusOr<PortSet> MapE(uint32_t a, uint32_t k, uint32_t m, uint32_t psid);

  const std::vector<uint16_t>& ports() const { return ports_; }  // ascending, unique
  const std::string& description() const { return description_; }

 private:
  std::vector<uint16_t> ports_;
  std::string description_;
};

class PortPlan {
 public:
  static constexpr uint8_t kNoShard = 0xff;
  static constexpr uint32_t kMaxShards = 254;

  // Requires 1 <= shards <= kMaxShards and at least one port per shard.
  static absl::StatusOr<PortPlan> Make(const PortSet& set, uint32_t shards);

  // The shard that owns `port`, or kNoShard when it is not in the set.
  uint8_t OwnerOf(uint16_t port) const { return owner_[port]; }
  // The ports of one shard, ascending.
  const std::vector<uint16_t>& Slice(uint32_t shard) const { return slices_[shard]; }
  // Position of an owned port inside its shard's slice.
  uint32_t IndexInSlice(uint16_t port) const { return index_[port]; }
  uint32_t shards() const { return static_cast<uint32_t>(slices_.size()); }

 private:
  std::vector<uint8_t> owner_;   // 65536 entries
  std::vector<uint16_t> index_;  // 65536 entries
  std::vector<std::vector<uint16_t>> slices_;
};

}  // namespace natd

#endif  // NATD_NAT_PORT_SET_H_
