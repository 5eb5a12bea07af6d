#include "nat/prefix_set.h"

#include "gtest/gtest.h"

namespace natd {
namespace {

Ip4 V4(const char* s) {
  Ip4 a;
  EXPECT_TRUE(ParseIp4(s, &a)) << s;
  return a;
}
Ip6 V6(const char* s) {
  Ip6 a;
  EXPECT_TRUE(ParseIp6(s, &a)) << s;
  return a;
}

TEST(PrefixSet, MatchesByMask) {
  auto set = PrefixSet::Parse("198.18.0.0/24, fd00:18::/64,10.0.0.0/8");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_TRUE(set->Contains(V4("198.18.0.2")));
  EXPECT_TRUE(set->Contains(V4("198.18.0.255")));
  EXPECT_FALSE(set->Contains(V4("198.18.1.2")));
  EXPECT_FALSE(set->Contains(V4("198.19.0.2")));
  EXPECT_TRUE(set->Contains(V4("10.255.1.1")));
  EXPECT_FALSE(set->Contains(V4("11.0.0.1")));
  EXPECT_TRUE(set->Contains(V6("fd00:18::2")));
  EXPECT_TRUE(set->Contains(V6("fd00:18::ffff:1")));
  EXPECT_FALSE(set->Contains(V6("fd00:19::2")));
  EXPECT_FALSE(set->Contains(V6("2001:db8:19::2")));
  EXPECT_EQ(set->ToString(), "198.18.0.0/24,10.0.0.0/8,fd00:18::/64");
}

TEST(PrefixSet, EdgeLengths) {
  auto all = PrefixSet::Parse("0.0.0.0/0,::/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains(V4("203.0.113.9")));
  EXPECT_TRUE(all->Contains(V6("2001:db8::1")));
  auto hosts = PrefixSet::Parse("192.0.2.7/32,2001:db8::7/128,2001:db8:0:0:8000::/65");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_TRUE(hosts->Contains(V4("192.0.2.7")));
  EXPECT_FALSE(hosts->Contains(V4("192.0.2.6")));
  EXPECT_TRUE(hosts->Contains(V6("2001:db8::7")));
  EXPECT_FALSE(hosts->Contains(V6("2001:db8::6")));
  EXPECT_TRUE(hosts->Contains(V6("2001:db8::8000:0:0:1")));
  EXPECT_FALSE(hosts->Contains(V6("2001:db8::7fff:0:0:1")));
  auto none = PrefixSet::Parse("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(none->Contains(V4("10.0.0.1")));
}

TEST(PrefixSet, PrivateRanges) {
  PrefixSet p = PrefixSet::Private();
  for (const char* in : {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1"}) {
    EXPECT_TRUE(p.Contains(V4(in))) << in;
  }
  for (const char* out : {"172.32.0.1", "192.169.0.1", "100.64.0.1", "8.8.8.8", "198.18.0.2"}) {
    EXPECT_FALSE(p.Contains(V4(out))) << out;
  }
  EXPECT_TRUE(p.Contains(V6("fd00:18::2")));
  EXPECT_TRUE(p.Contains(V6("fc00::1")));
  EXPECT_FALSE(p.Contains(V6("fe80::1")));
  EXPECT_FALSE(p.Contains(V6("2001:db8::1")));
}

TEST(PrefixSet, WithoutDropsThePrefixesHoldingAnAddress) {
  // natd behind a home router: its global address is 192.168.1.50, so that
  // side of 192.168/16 is the outside.
  PrefixSet p = PrefixSet::Private().Without(V4("192.168.1.50")).Without(V6("fd12::50"));
  EXPECT_FALSE(p.Contains(V4("192.168.1.1")));
  EXPECT_TRUE(p.Contains(V4("10.0.0.2")));
  EXPECT_FALSE(p.Contains(V6("fd00::1")));
  EXPECT_EQ(p.ToString(), "10.0.0.0/8,172.16.0.0/12");
  EXPECT_EQ(PrefixSet::Private().Without(V4("8.8.8.8")).ToString(), PrefixSet::Private().ToString());
}

TEST(PrefixSet, RefusesBadText) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.1/8", "fd00::1/64", "fd00::/129", "x/8", "10.0.0.0/-1",
                          "10.0.0.0/8x", "::/"}) {
    EXPECT_FALSE(PrefixSet::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace natd
