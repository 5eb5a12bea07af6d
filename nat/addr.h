// Addresses as the tables store them: raw network-order bytes, compared and
// hashed as integers. Ip4 and Ip6 are the two address families; tables are
// templated on them so an IPv4 key stays small (a 12-byte session key).
#ifndef NATD_NAT_ADDR_H_
#define NATD_NAT_ADDR_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "nat/checksum.h"

namespace natd {

struct Ip4 {
  uint32_t raw = 0;  // network order in memory

  static constexpr int kFamily = 4;
  static constexpr size_t kBytes = 4;
  static Ip4 Load(const uint8_t* p) {
    Ip4 a;
    std::memcpy(&a.raw, p, 4);
    return a;
  }
  void Store(uint8_t* p) const { std::memcpy(p, &raw, 4); }
  // Folded ones' complement sum of the address's raw words.
  uint16_t WordSum() const { return Fold(uint32_t(raw & 0xffff) + (raw >> 16)); }
  friend bool operator==(Ip4 a, Ip4 b) { return a.raw == b.raw; }
  template <typename H>
  friend H AbslHashValue(H h, Ip4 a) {
    return H::combine(std::move(h), a.raw);
  }
};

struct Ip6 {
  uint64_t hi = 0, lo = 0;  // network order bytes 0..7 and 8..15

  static constexpr int kFamily = 6;
  static constexpr size_t kBytes = 16;
  static Ip6 Load(const uint8_t* p) {
    Ip6 a;
    std::memcpy(&a.hi, p, 8);
    std::memcpy(&a.lo, p + 8, 8);
    return a;
  }
  void Store(uint8_t* p) const {
    std::memcpy(p, &hi, 8);
    std::memcpy(p + 8, &lo, 8);
  }
  uint16_t WordSum() const {
    uint64_t s = (hi & 0xffffffffu) + (hi >> 32) + (lo & 0xffffffffu) + (lo >> 32);
    return Fold(s);
  }
  friend bool operator==(const Ip6& a, const Ip6& b) { return a.hi == b.hi && a.lo == b.lo; }
  template <typename H>
  friend H AbslHashValue(H h, const Ip6& a) {
    return H::combine(std::move(h), a.hi, a.lo);
  }
};

// Paired address pooling (RFC 4787 REQ-2): which of n global addresses every
// mapping of an inside address uses. A fixed (unseeded) mix, so the choice
// is the same after a restart and in every shard.
// (splitmix64's finalizer: neighbouring addresses land apart.)
inline uint64_t PairingMix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline size_t PairedIndex(const Ip4& a, size_t n) { return n <= 1 ? 0 : size_t(PairingMix(a.raw) % n); }
inline size_t PairedIndex(const Ip6& a, size_t n) {
  return n <= 1 ? 0 : size_t(PairingMix(PairingMix(a.hi) ^ a.lo) % n);
}

// Checksum delta for an address changing from `from` to `to`.
template <typename Addr>
uint16_t AddrDelta(const Addr& from, const Addr& to) {
  return AddDelta(NegateDelta(from.WordSum()), to.WordSum());
}

std::string ToString(const Ip4& a);
std::string ToString(const Ip6& a);

// Parses a dotted quad / an IPv6 literal; false when malformed.
bool ParseIp4(const std::string& text, Ip4* out);
bool ParseIp6(const std::string& text, Ip6* out);

}  // namespace natd

#endif  // NATD_NAT_ADDR_H_
