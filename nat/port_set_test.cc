#include "nat/port_set.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace natd {
namespace {

using ::testing::HasSubstr;

std::vector<uint16_t> Seq(uint32_t lo, uint32_t hi) {
  std::vector<uint16_t> v;
  for (uint32_t p = lo; p <= hi; ++p) v.push_back(static_cast<uint16_t>(p));
  return v;
}

std::string ErrorOf(const std::string& spec) {
  auto s = PortSet::Parse(spec);
  if (s.ok()) return "<ok: " + s->description() + ">";
  return std::string(s.status().message());
}

// RFC 7597 §5.1, written out independently of the code under test:
// port = A * 2^(16-a) + PSID * 2^m + j, A = 1 .. 2^a - 1, j = 0 .. 2^m - 1.
std::vector<uint16_t> Rfc7597Ports(uint32_t a, uint32_t k, uint32_t m, uint32_t psid) {
  (void)k;
  std::set<uint16_t> out;
  for (uint32_t A = 1; A < (1u << a); ++A) {
    for (uint32_t j = 0; j < (1u << m); ++j) {
      const uint32_t port = A * (1u << (16 - a)) + psid * (1u << m) + j;
      EXPECT_LE(port, 65535u);
      out.insert(static_cast<uint16_t>(port));
    }
  }
  return {out.begin(), out.end()};
}

TEST(PortSetParse, SingleRange) {
  auto s = PortSet::Parse("1024-65535");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ports(), Seq(1024, 65535));
  EXPECT_EQ(s->ports().size(), 64512u);
}

TEST(PortSetParse, ListOfRangesIsSortedAndUnique) {
  auto s = PortSet::Parse("40000-40009, 20000-20004,30000");
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<uint16_t> want = Seq(20000, 20004);
  want.push_back(30000);
  for (uint16_t p : Seq(40000, 40009)) want.push_back(p);
  EXPECT_EQ(s->ports(), want);
}

TEST(PortSetParse, SinglePort) {
  auto s = PortSet::Parse("5000");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ports(), std::vector<uint16_t>{5000});
  auto one = PortSet::Parse("1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->ports(), std::vector<uint16_t>{1});
  auto top = PortSet::Parse("65535");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->ports(), std::vector<uint16_t>{65535});
}

TEST(PortSetParse, Hex) {
  auto s = PortSet::Parse("0x400-0x40F");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ports(), Seq(1024, 1039));
  auto t = PortSet::Parse("0xffff");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ports(), std::vector<uint16_t>{65535});
}

TEST(PortSetParse, Errors) {
  EXPECT_THAT(ErrorOf("1000-2000,1500-2500"), HasSubstr("overlap"));
  EXPECT_THAT(ErrorOf("1000,1000"), HasSubstr("overlap"));
  EXPECT_THAT(ErrorOf("0"), HasSubstr("1 <= lo"));
  EXPECT_THAT(ErrorOf("0-100"), HasSubstr("1 <= lo"));
  EXPECT_THAT(ErrorOf("1024-65536"), HasSubstr("65535"));
  EXPECT_THAT(ErrorOf("70000"), HasSubstr("65535"));
  EXPECT_THAT(ErrorOf("0x10000"), HasSubstr("65535"));
  EXPECT_THAT(ErrorOf("2000-1000"), HasSubstr("lo <= hi"));
  EXPECT_THAT(ErrorOf("abc"), HasSubstr("'abc' is not a port"));
  EXPECT_THAT(ErrorOf("1024-xyz"), HasSubstr("not a port or LO-HI range"));
  EXPECT_THAT(ErrorOf("1024-2000,"), HasSubstr("not a port"));
  EXPECT_THAT(ErrorOf("-5"), HasSubstr("not a port"));
  EXPECT_THAT(ErrorOf("1024-"), HasSubstr("not a port"));  // a range missing its end
  EXPECT_THAT(ErrorOf("1-2-3"), HasSubstr("not a port"));
  EXPECT_THAT(ErrorOf("0x"), HasSubstr("not a port"));
  EXPECT_THAT(ErrorOf("0xg1"), HasSubstr("not a port"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("empty"));
  EXPECT_THAT(ErrorOf("   "), HasSubstr("empty"));
  // Every message names the spec it is about.
  EXPECT_THAT(ErrorOf("2000-1000"), HasSubstr("bad port set '2000-1000'"));
}

TEST(PortSetParse, MapEErrors) {
  EXPECT_THAT(ErrorOf("v6plus:256"), HasSubstr("PSID 256 does not fit in k=8"));
  EXPECT_THAT(ErrorOf("ocn-vc:64"), HasSubstr("PSID 64 does not fit in k=6"));
  EXPECT_THAT(ErrorOf("v6plus:"), HasSubstr("PSID is not a number"));
  EXPECT_THAT(ErrorOf("v6plus:zz"), HasSubstr("PSID is not a number"));
  EXPECT_THAT(ErrorOf("v6plus:-1"), HasSubstr("PSID is not a number"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=8,m=5,psid=1"), HasSubstr("a+k+m must be 16, got 4+8+5"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=7,m=4,psid=1"), HasSubstr("a+k+m must be 16"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=8,m=4"), HasSubstr("missing 'psid'"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=8,m=4,psid=1,x=2"), HasSubstr("unknown key 'x'"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=8,m=four,psid=1"), HasSubstr("'m' is not a number"));
  EXPECT_THAT(ErrorOf("map-e:a=16,k=0,m=0,psid=0"), HasSubstr("k must be 1..15"));
  EXPECT_THAT(ErrorOf("map-e:a=4,k=8,m=4,psid=300"), HasSubstr("does not fit"));
  EXPECT_FALSE(PortSet::MapE(4, 8, 4, 256).ok());
  EXPECT_FALSE(PortSet::MapE(5, 8, 4, 1).ok());
}

TEST(PortSetParse, MapESpellings) {
  auto a = PortSet::Parse("v6plus:0x12");
  auto b = PortSet::Parse("v6plus:psid=18");
  auto c = PortSet::Parse("map-e:a=4,k=8,m=4,psid=18");
  auto d = PortSet::MapE(4, 8, 4, 18);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->ports(), Rfc7597Ports(4, 8, 4, 18));
  EXPECT_EQ(b->ports(), a->ports());
  EXPECT_EQ(c->ports(), a->ports());
  EXPECT_EQ(d->ports(), a->ports());
  EXPECT_THAT(a->description(), HasSubstr("240 ports"));
}

struct Layout {
  const char* prefix;
  uint32_t a, k, m;
  size_t per_psid;
};

void CheckLayout(const Layout& l) {
  SCOPED_TRACE(l.prefix);
  const uint32_t psids = 1u << l.k;
  std::vector<int> owner(65536, -1);
  for (uint32_t psid = 0; psid < psids; ++psid) {
    SCOPED_TRACE(psid);
    auto s = PortSet::Parse(std::string(l.prefix) + std::to_string(psid));
    ASSERT_TRUE(s.ok()) << s.status();
    const std::vector<uint16_t>& got = s->ports();
    ASSERT_EQ(got.size(), l.per_psid);
    EXPECT_EQ(got, Rfc7597Ports(l.a, l.k, l.m, psid));
    // Blocks of 2^m contiguous ports, 2^a - 1 of them.
    const size_t block = size_t{1} << l.m;
    for (size_t b = 0; b < got.size(); b += block) {
      EXPECT_EQ(got[b] % block, 0u);
      for (size_t j = 1; j < block; ++j) ASSERT_EQ(got[b + j], got[b] + j) << "block at " << got[b];
      if (b > 0) {
        EXPECT_EQ(got[b] - got[b - block], 1u << (16 - l.a));
      }
    }
    EXPECT_GE(got.front(), 1u << (16 - l.a));  // A >= 1: nothing below 2^(16-a)
    for (uint16_t p : got) {
      ASSERT_EQ(owner[p], -1) << "port " << p << " in PSID " << owner[p] << " and " << psid;
      owner[p] = static_cast<int>(psid);
    }
  }
  // Together with A = 0 (ports below 2^(16-a)) the PSIDs cover every port.
  for (uint32_t p = 0; p < 65536; ++p) {
    if (p < (1u << (16 - l.a))) {
      EXPECT_EQ(owner[p], -1) << p;
    } else {
      ASSERT_NE(owner[p], -1) << "port " << p << " in no PSID";
      EXPECT_EQ(static_cast<uint32_t>(owner[p]), (p >> l.m) & (psids - 1)) << p;
    }
  }
}

TEST(PortSetMapE, V6PlusEveryPsid) { CheckLayout({"v6plus:", 4, 8, 4, 240}); }
TEST(PortSetMapE, OcnVcEveryPsid) { CheckLayout({"ocn-vc:", 6, 6, 4, 1008}); }
TEST(PortSetMapE, GenericEveryPsid) { CheckLayout({"map-e:a=3,k=5,m=8,psid=", 3, 5, 8, 7 * 256}); }

TEST(PortSetMapE, KnownV6PlusPorts) {
  // A hand-checked example: PSID 0x12 -> blocks 0x1120-0x112f, 0x2120-..., 0xf120-0xf12f.
  auto s = PortSet::Parse("v6plus:0x12");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ports().front(), 0x1120);
  EXPECT_EQ(s->ports()[15], 0x112f);
  EXPECT_EQ(s->ports()[16], 0x2120);
  EXPECT_EQ(s->ports().back(), 0xf12f);
}

void CheckPlan(const PortSet& set, uint32_t shards) {
  SCOPED_TRACE(set.description() + " / " + std::to_string(shards) + " shards");
  auto plan = PortPlan::Make(set, shards);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->shards(), shards);
  std::vector<uint16_t> concat;
  size_t min_size = SIZE_MAX, max_size = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    const auto& slice = plan->Slice(s);
    ASSERT_FALSE(slice.empty());
    min_size = std::min(min_size, slice.size());
    max_size = std::max(max_size, slice.size());
    for (size_t i = 0; i < slice.size(); ++i) {
      ASSERT_EQ(plan->OwnerOf(slice[i]), s);
      ASSERT_EQ(plan->IndexInSlice(slice[i]), i);
      if (i > 0) {
        ASSERT_LT(slice[i - 1], slice[i]);
      }
      concat.push_back(slice[i]);
    }
  }
  // Contiguous in the set's order, disjoint, covering: concatenation == set.
  EXPECT_EQ(concat, set.ports());
  EXPECT_LE(max_size - min_size, 1u);
  std::set<uint16_t> in_set(set.ports().begin(), set.ports().end());
  for (uint32_t p = 0; p < 65536; ++p) {
    if (!in_set.count(static_cast<uint16_t>(p))) {
      ASSERT_EQ(plan->OwnerOf(static_cast<uint16_t>(p)), PortPlan::kNoShard) << p;
    }
  }
}

TEST(PortPlan, SlicesPartitionTheSet) {
  for (const char* spec : {"1024-65535", "20000-20009,30000-30002", "v6plus:7", "ocn-vc:63", "5000-5006"}) {
    auto set = PortSet::Parse(spec);
    ASSERT_TRUE(set.ok()) << spec;
    for (uint32_t shards : {1u, 2u, 3u, 4u, 7u}) CheckPlan(*set, shards);
  }
  auto v6 = PortSet::Parse("v6plus:1");
  ASSERT_TRUE(v6.ok());
  CheckPlan(*v6, 240);  // one port each
  CheckPlan(*PortSet::Parse("1024-65535"), PortPlan::kMaxShards);
}

TEST(PortPlan, Errors) {
  auto small = PortSet::Parse("5000-5003");
  ASSERT_TRUE(small.ok());
  auto too_many = PortPlan::Make(*small, 5);
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("has 4 ports, fewer than the 5 shards"));
  EXPECT_TRUE(PortPlan::Make(*small, 4).ok());
  auto zero = PortPlan::Make(*small, 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(std::string(zero.status().message()), HasSubstr("shard count 0"));
  auto big = PortSet::Parse("1024-65535");
  auto over = PortPlan::Make(*big, PortPlan::kMaxShards + 1);
  ASSERT_FALSE(over.ok());
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("out of range"));
}

}  // namespace
}  // namespace natd
