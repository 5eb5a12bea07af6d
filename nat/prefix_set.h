// PrefixSet: the inside networks, as CIDR prefixes of either family.
//
// natd sees both directions on one TUN device, so "inbound" is decided by the
// destination (a global address). A packet to a global address whose source
// is inside is neither plain inbound nor outbound: it is hairpinned (RFC 4787
// REQ-9, RFC 5382 REQ-8) — translated outbound for its sender, then inbound
// for the inside host that owns the destination's mapping. This set is how
// natd tells an inside source from a remote one.
//
// A handful of prefixes is the expected size: lookups are a linear scan over
// masks, done only for packets addressed to a global address.
#ifndef NATD_NAT_PREFIX_SET_H_
#define NATD_NAT_PREFIX_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nat/addr.h"

namespace natd {

class PrefixSet {
 public:
  // "10.0.0.0/8,fd00::/8" (commas or spaces; empty: no prefix). A prefix with
  // host bits set or a length past the family's width is an error.
  static absl::StatusOr<PrefixSet> Parse(const std::string& text);
  // The private ranges of RFC 1918 and RFC 4193 (ULA). Not RFC 6598's
  // shared space: behind a carrier-grade NAT that is the outside.
  static PrefixSet Private();
  // The same set less every prefix that holds `a` (a global address in a
  // private range: natd behind another NAT, whose side is outside).
  PrefixSet Without(const Ip4& a) const;
  PrefixSet Without(const Ip6& a) const;

  bool Contains(const Ip4& a) const;
  bool Contains(const Ip6& a) const;
  // `addr` is 4 or 16 network-order bytes, per `family`.
  bool Contains(int family, const uint8_t* addr) const {
    return family == 4 ? Contains(Ip4::Load(addr)) : Contains(Ip6::Load(addr));
  }
  bool empty() const { return v4_.empty() && v6_.empty(); }
  std::string ToString() const;

 private:
  struct P4 {
    uint32_t net, mask;  // host order
    int len;
  };
  struct P6 {
    uint64_t net_hi, net_lo, mask_hi, mask_lo;  // host order
    int len;
  };
  std::vector<P4> v4_;
  std::vector<P6> v6_;
};

}  // namespace natd

#endif  // NATD_NAT_PREFIX_SET_H_
