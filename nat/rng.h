// A small, fast PRNG (SplitMix64) for port randomization: one per shard, so
// no state is shared between threads. Not cryptographic; RFC 6056 asks for
// unpredictable ports from off-path attackers, which the OS-seeded stream
// provides against anyone who cannot observe many of natd's mappings.
#ifndef NATD_NAT_RNG_H_
#define NATD_NAT_RNG_H_

#include <cstdint>

namespace natd {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n << 2^32.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }

 private:
  uint64_t state_;
};

}  // namespace natd

#endif  // NATD_NAT_RNG_H_
