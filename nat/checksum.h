// Internet checksum arithmetic: RFC 1071 sums and RFC 1624 incremental updates.
//
// Every 16-bit word here is a *raw* word: two bytes in network order loaded
// natively (memcpy into a uint16_t). Ones' complement addition is byte-order
// independent (RFC 1071 §2(B)), so sums over raw words, stored back raw, are
// correct on any host without a single byte swap.
//
// A "delta" is the folded ones' complement sum of (~old + new) over the words a
// rewrite changes. It is computed once per mapping (address and port change
// together) and applied to each packet's checksum with RFC 1624 eqn. 3:
//     HC' = ~(~HC + ~m + m')
// The reverse translation applies the negated delta (~delta is its additive
// inverse in ones' complement arithmetic).
#ifndef NATD_NAT_CHECKSUM_H_
#define NATD_NAT_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace natd {

inline uint16_t LoadRaw16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void StoreRaw16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// Host-order value <-> raw (network-order-in-memory) word.
inline uint16_t ToRaw16(uint16_t host) { return __builtin_bswap16(host); }
inline uint16_t FromRaw16(uint16_t raw) { return __builtin_bswap16(raw); }
inline uint16_t LoadBe16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// Folds a wide ones' complement accumulator to 16 bits (end-around carry).
inline uint16_t Fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Unfolded sum of the raw words of [p, p+n); an odd trailing byte is padded
// with zero as RFC 1071 says.
inline uint64_t SumRaw(const uint8_t* p, size_t n, uint64_t acc = 0) {
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    acc += LoadRaw16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    uint8_t last[2] = {p[0], 0};
    acc += LoadRaw16(last);
  }
  return acc;
}

// The checksum (raw) of a buffer whose checksum field is zero.
inline uint16_t Checksum(const uint8_t* p, size_t n, uint64_t acc = 0) {
  return static_cast<uint16_t>(~Fold(SumRaw(p, n, acc)));
}

// Folds the sum of two 16-bit words (at most 0x1fffe): one end-around carry
// is all it takes, the same result as Fold. The per-packet helpers below are
// forced inline: they are a few instructions each, on every packet.
[[gnu::always_inline]] inline uint16_t Fold2(uint32_t sum) {
  return static_cast<uint16_t>((sum & 0xffffu) + (sum >> 16));
}

// Ones' complement addition of two folded deltas.
[[gnu::always_inline]] inline uint16_t AddDelta(uint16_t a, uint16_t b) { return Fold2(uint32_t(a) + b); }
[[gnu::always_inline]] inline uint16_t NegateDelta(uint16_t d) { return static_cast<uint16_t>(~d); }

// Delta for one word changing from old_raw to new_raw.
[[gnu::always_inline]] inline uint16_t Delta16(uint16_t old_raw, uint16_t new_raw) {
  return Fold2(uint32_t(uint16_t(~old_raw)) + new_raw);
}

// Delta for n bytes (n even) changing from old to new.
inline uint16_t DeltaBytes(const uint8_t* old_bytes, const uint8_t* new_bytes, size_t n) {
  uint64_t acc = 0;
  for (size_t i = 0; i < n; i += 2) {
    acc += uint16_t(~LoadRaw16(old_bytes + i));
    acc += LoadRaw16(new_bytes + i);
  }
  return Fold(acc);
}

// RFC 1624 eqn. 3 on a raw checksum value.
[[gnu::always_inline]] inline uint16_t ApplyDelta(uint16_t csum_raw, uint16_t delta) {
  return static_cast<uint16_t>(~Fold2(uint32_t(uint16_t(~csum_raw)) + delta));
}

// Applies a delta to the checksum field at p.
[[gnu::always_inline]] inline void ApplyDeltaAt(uint8_t* p, uint16_t delta) {
  StoreRaw16(p, ApplyDelta(LoadRaw16(p), delta));
}

// UDP: a zero checksum means "none" over IPv4 and stays zero; a computed zero
// is transmitted as all ones (RFC 768).
[[gnu::always_inline]] inline void ApplyDeltaUdpAt(uint8_t* p, uint16_t delta) {
  uint16_t c = LoadRaw16(p);
  if (c == 0) return;
  c = ApplyDelta(c, delta);
  StoreRaw16(p, c == 0 ? 0xffff : c);
}

// Rewrites the 16-bit field at p to new_raw and returns the checksum delta.
inline uint16_t Rewrite16(uint8_t* p, uint16_t new_raw) {
  uint16_t old_raw = LoadRaw16(p);
  StoreRaw16(p, new_raw);
  return Delta16(old_raw, new_raw);
}

}  // namespace natd

#endif  // NATD_NAT_CHECKSUM_H_
