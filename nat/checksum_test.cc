// Internet checksum arithmetic (nat/checksum.h) against the packet builder's
// independent byte-wise oracle: full sums, RFC 1624 incremental updates and
// their edge cases, delta algebra.
#include "nat/checksum.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "nat/addr.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Bytes;
using testing::OracleSum;

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// Host-order checksum of p[0, n) computed by natd::Checksum (raw result).
uint16_t NatdChecksum(const uint8_t* p, size_t n) { return FromRaw16(Checksum(p, n)); }

TEST(ChecksumTest, FullSumMatchesOracleForEveryLengthAndAlignment) {
  std::mt19937_64 rng(1);
  const Bytes buf = RandomBytes(rng, 300);
  for (size_t start = 0; start < 4; ++start) {
    for (size_t n = 0; n + start <= buf.size(); ++n) {
      ASSERT_EQ(NatdChecksum(buf.data() + start, n), OracleSum(buf.data() + start, n))
          << "start " << start << " length " << n;
    }
  }
}

TEST(ChecksumTest, OddLengthPadsTheLastByteWithZero) {
  const Bytes odd = {0x12, 0x34, 0x56};
  const Bytes padded = {0x12, 0x34, 0x56, 0x00};
  EXPECT_EQ(NatdChecksum(odd.data(), 3), NatdChecksum(padded.data(), 4));
  // 0x1234 + 0x5600 = 0x6834 -> checksum 0x97cb.
  EXPECT_EQ(NatdChecksum(odd.data(), 3), 0x97cb);
  const Bytes one = {0xab};
  EXPECT_EQ(NatdChecksum(one.data(), 1), uint16_t(~0xab00));
}

TEST(ChecksumTest, AccumulatorCarriesAcrossCalls) {
  std::mt19937_64 rng(2);
  const Bytes buf = RandomBytes(rng, 101);
  for (size_t split = 0; split <= buf.size(); split += 2) {  // split at even offsets
    const uint64_t acc = SumRaw(buf.data(), split);
    EXPECT_EQ(FromRaw16(Checksum(buf.data() + split, buf.size() - split, acc)), OracleSum(buf.data(), buf.size()))
        << split;
  }
}

TEST(ChecksumTest, FoldIsOnesComplementReduction) {
  std::mt19937_64 rng(3);
  EXPECT_EQ(Fold(0), 0);
  EXPECT_EQ(Fold(0xffff), 0xffff);
  EXPECT_EQ(Fold(0x10000), 1);
  EXPECT_EQ(Fold(~uint64_t{0}), 0xffff);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t x = rng() >> (rng() % 64);
    const uint16_t f = Fold(x);
    // x mod 0xffff, with a non-zero multiple of 0xffff folding to 0xffff.
    const uint64_t want = x == 0 ? 0 : (x % 0xffff == 0 ? 0xffff : x % 0xffff);
    ASSERT_EQ(f, want) << std::hex << x;
  }
}

// A buffer whose word 0 is the checksum and word `field` is rewritten; the
// incremental update must equal the full recomputation, bit for bit.
TEST(ChecksumTest, IncrementalUpdateEqualsRecompute) {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 20000; ++i) {
    const size_t words = 2 + rng() % 40;
    Bytes b = RandomBytes(rng, words * 2);
    if (rng() % 4 == 0) std::fill(b.begin(), b.end(), rng() % 2 ? 0x00 : 0xff);  // extreme sums
    StoreRaw16(b.data(), 0);
    StoreRaw16(b.data(), Checksum(b.data(), b.size()));
    const size_t field = 2 * (1 + rng() % (words - 1));
    const uint16_t new_raw = uint16_t(rng() % 8 == 0 ? (rng() % 2 ? 0 : 0xffff) : rng());
    const uint16_t delta = Rewrite16(b.data() + field, new_raw);
    ApplyDeltaAt(b.data(), delta);
    const uint16_t incremental = LoadRaw16(b.data());
    StoreRaw16(b.data(), 0);
    const uint16_t full = Checksum(b.data(), b.size());
    // The recomputation yields 0xffff only for all-zero data, which an
    // incremental update (RFC 1624 eqn. 3) represents as 0x0000 equally well.
    if (full == 0xffff) {
      EXPECT_TRUE(incremental == 0xffff || incremental == 0x0000) << i;
    } else {
      ASSERT_EQ(incremental, full) << "iteration " << i;
    }
  }
}

// RFC 1624 §3: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285. Eqn. 2 (HC - ~m - m')
// would give 0xffff; recomputation, and eqn. 3, give 0x0000.
TEST(ChecksumTest, Rfc1624Section3Example) {
  const uint16_t delta = Delta16(ToRaw16(0x5555), ToRaw16(0x3285));
  EXPECT_EQ(FromRaw16(ApplyDelta(ToRaw16(0xdd2f), delta)), 0x0000);

  // The same as a buffer: [checksum][x][m] with x chosen so HC is 0xdd2f.
  Bytes b = {0x00, 0x00, 0xcd, 0x7a, 0x55, 0x55};
  ASSERT_EQ(OracleSum(b.data(), b.size()), 0xdd2f);
  StoreRaw16(b.data(), ToRaw16(0xdd2f));
  ApplyDeltaAt(b.data(), Rewrite16(b.data() + 4, ToRaw16(0x3285)));
  EXPECT_EQ(testing::Be16(b, 0), 0x0000);
  Bytes zeroed = b;
  zeroed[0] = zeroed[1] = 0;
  EXPECT_EQ(OracleSum(zeroed.data(), zeroed.size()), 0x0000);
  EXPECT_EQ(OracleSum(b.data(), b.size()), 0);  // verifies
}

// A checksum field of 0xffff (-0) updates like 0x0000 (+0).
TEST(ChecksumTest, BothZerosUpdateAlike) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1000; ++i) {
    const uint16_t delta = uint16_t(rng());
    const uint16_t a = ApplyDelta(0x0000, delta), b = ApplyDelta(0xffff, delta);
    EXPECT_TRUE(a == b || (a | b) == 0xffff) << delta;
  }
}

TEST(ChecksumTest, UdpZeroStaysZeroAndComputedZeroIsSentAsOnes) {
  uint8_t field[2] = {0, 0};
  ApplyDeltaUdpAt(field, Delta16(ToRaw16(0x1234), ToRaw16(0x4321)));
  EXPECT_EQ(LoadRaw16(field), 0);  // "no checksum" (IPv4) is left alone

  // The RFC 1624 §3 update yields 0x0000, which UDP must send as 0xffff.
  StoreRaw16(field, ToRaw16(0xdd2f));
  ApplyDeltaUdpAt(field, Delta16(ToRaw16(0x5555), ToRaw16(0x3285)));
  EXPECT_EQ(FromRaw16(LoadRaw16(field)), 0xffff);
  // And 0xffff updates as the zero it stands for.
  ApplyDeltaUdpAt(field, Delta16(ToRaw16(0x3285), ToRaw16(0x5555)));
  EXPECT_EQ(FromRaw16(LoadRaw16(field)), 0xdd2f);
}

TEST(ChecksumTest, DeltaAlgebra) {
  std::mt19937_64 rng(6);
  for (int i = 0; i < 20000; ++i) {
    const uint16_t a = uint16_t(rng()), b = uint16_t(rng()), c = uint16_t(rng());
    // A delta and its negation cancel: the sum is ones' complement zero.
    const uint16_t zero = AddDelta(a, NegateDelta(a));
    ASSERT_TRUE(zero == 0xffff || zero == 0) << a;
    // Addition commutes and associates (on values mod 0xffff).
    ASSERT_EQ(AddDelta(a, b) % 0xffff, AddDelta(b, a) % 0xffff);
    ASSERT_EQ(AddDelta(AddDelta(a, b), c) % 0xffff, AddDelta(a, AddDelta(b, c)) % 0xffff);
    // Delta16 of a round trip is zero; of a chain, the sum of its steps.
    ASSERT_EQ(AddDelta(Delta16(a, b), Delta16(b, a)) % 0xffff, 0);
    ASSERT_EQ(AddDelta(Delta16(a, b), Delta16(b, c)) % 0xffff, Delta16(a, c) % 0xffff);
  }
}

// Applying a delta and then its negation restores the checksum exactly
// (0xffff, the all-zero-data checksum, comes back as its twin 0x0000).
TEST(ChecksumTest, ApplyThenNegateRoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint16_t c = uint16_t(rng()), d = uint16_t(rng());
    const uint16_t back = ApplyDelta(ApplyDelta(c, d), NegateDelta(d));
    if (c == 0xffff) {
      ASSERT_TRUE(back == 0xffff || back == 0) << d;
    } else {
      ASSERT_EQ(back, c) << "checksum " << c << " delta " << d;
    }
  }
}

// Several fields changed at once: the delta of all the bytes equals the sum
// of per-word deltas, and one update with it equals recomputation.
TEST(ChecksumTest, MultiWordDeltas) {
  std::mt19937_64 rng(8);
  for (int i = 0; i < 5000; ++i) {
    Bytes b = RandomBytes(rng, 2 + 2 * (4 + rng() % 30));
    StoreRaw16(b.data(), 0);
    StoreRaw16(b.data(), Checksum(b.data(), b.size()));
    const size_t off = 2 + 2 * (rng() % ((b.size() - 2) / 2 - 3));
    const Bytes old(b.begin() + off, b.begin() + off + 6);
    const Bytes repl = RandomBytes(rng, 6);
    const uint16_t delta = DeltaBytes(old.data(), repl.data(), 6);
    uint16_t sum = 0;
    for (size_t w = 0; w < 6; w += 2)
      sum = AddDelta(sum, Delta16(LoadRaw16(old.data() + w), LoadRaw16(repl.data() + w)));
    ASSERT_EQ(delta % 0xffff, sum % 0xffff);
    std::copy(repl.begin(), repl.end(), b.begin() + off);
    ApplyDeltaAt(b.data(), delta);
    ASSERT_EQ(OracleSum(b.data(), b.size()), 0) << testing::Hex(b);
  }
}

// Address deltas as the mapping table computes them (addr.h).
TEST(ChecksumTest, AddressDeltas) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 5000; ++i) {
    Bytes b = RandomBytes(rng, 2 + 16 + 10);
    StoreRaw16(b.data(), 0);
    StoreRaw16(b.data(), Checksum(b.data(), b.size()));
    const Bytes to = RandomBytes(rng, 16);
    if (i % 2) {
      const Ip4 from4 = Ip4::Load(b.data() + 2), to4 = Ip4::Load(to.data());
      to4.Store(b.data() + 2);
      ApplyDeltaAt(b.data(), AddrDelta(from4, to4));
    } else {
      const Ip6 from6 = Ip6::Load(b.data() + 2), to6 = Ip6::Load(to.data());
      to6.Store(b.data() + 2);
      ApplyDeltaAt(b.data(), AddrDelta(from6, to6));
    }
    ASSERT_EQ(OracleSum(b.data(), b.size()), 0) << i;
  }
}

}  // namespace
}  // namespace natd
