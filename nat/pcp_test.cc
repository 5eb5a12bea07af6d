// The PCP / NAT-PMP wire format against messages written out by hand from
// RFC 6887 and RFC 6886 (natpmpc's requests are exactly these bytes).
#include "nat/pcp.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace natd::pcp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes PcpMap(uint8_t proto, uint16_t internal, uint16_t suggested, uint32_t lifetime, Bytes options = {}) {
  Bytes b(60, 0);
  b[0] = 2;
  b[1] = 1;  // MAP
  b[4] = uint8_t(lifetime >> 24);
  b[5] = uint8_t(lifetime >> 16);
  b[6] = uint8_t(lifetime >> 8);
  b[7] = uint8_t(lifetime);
  const uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2};
  std::memcpy(&b[8], client, 16);
  for (int i = 0; i < 12; ++i) b[24 + i] = uint8_t(0xa0 + i);  // nonce
  b[36] = proto;
  b[40] = uint8_t(internal >> 8);
  b[41] = uint8_t(internal);
  b[42] = uint8_t(suggested >> 8);
  b[43] = uint8_t(suggested);
  b.insert(b.end(), options.begin(), options.end());
  return b;
}

TEST(Pcp, ParsesNatPmpRequests) {
  Request r;
  const Bytes addr = {0, 0};
  ASSERT_TRUE(Parse(addr.data(), addr.size(), &r));
  EXPECT_EQ(r.kind, Kind::kNatPmp);
  EXPECT_EQ(r.op, Op::kExternalAddress);
  // Map TCP 8080 -> suggested 8080 for 3600 s.
  const Bytes map = {0, 2, 0, 0, 0x1f, 0x90, 0x1f, 0x90, 0, 0, 0x0e, 0x10};
  ASSERT_TRUE(Parse(map.data(), map.size(), &r));
  EXPECT_EQ(r.op, Op::kMap);
  EXPECT_EQ(r.protocol, 6);
  EXPECT_EQ(r.internal_port, 8080);
  EXPECT_EQ(r.suggested_port, 8080);
  EXPECT_EQ(r.lifetime, 3600u);
  EXPECT_EQ(r.error, Result::kSuccess);
  const Bytes udp = {0, 1, 0, 0, 0x13, 0x88, 0, 0, 0, 0, 0, 0};  // delete UDP 5000
  ASSERT_TRUE(Parse(udp.data(), udp.size(), &r));
  EXPECT_EQ(r.protocol, 17);
  EXPECT_EQ(r.lifetime, 0u);
  const Bytes short_map = {0, 1, 0, 0, 0x13};
  ASSERT_TRUE(Parse(short_map.data(), short_map.size(), &r));
  EXPECT_EQ(r.error, Result::kMalformedRequest);
  const Bytes unknown = {0, 9};
  ASSERT_TRUE(Parse(unknown.data(), unknown.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppOpcode);
  const Bytes response = {0, 128, 0, 0};
  EXPECT_FALSE(Parse(response.data(), response.size(), &r)) << "responses are ignored";
  EXPECT_FALSE(Parse(response.data(), 1, &r));
}

TEST(Pcp, BuildsNatPmpResponses) {
  Request r;
  const Bytes addr = {0, 0};
  ASSERT_TRUE(Parse(addr.data(), addr.size(), &r));
  Answer a;
  a.epoch = 77;
  const uint8_t g[4] = {198, 19, 0, 100};
  MapV4(g, a.external_ip);
  uint8_t out[64];
  ASSERT_EQ(Build(r, a, addr.data(), addr.size(), out, sizeof out), 12u);
  EXPECT_EQ(Bytes(out, out + 12), (Bytes{0, 128, 0, 0, 0, 0, 0, 77, 198, 19, 0, 100}));

  const Bytes map = {0, 2, 0, 0, 0x1f, 0x90, 0x1f, 0x90, 0, 0, 0x0e, 0x10};
  ASSERT_TRUE(Parse(map.data(), map.size(), &r));
  a.external_port = 40000;
  a.lifetime = 3600;
  ASSERT_EQ(Build(r, a, map.data(), map.size(), out, sizeof out), 16u);
  EXPECT_EQ(Bytes(out, out + 16), (Bytes{0, 130, 0, 0, 0, 0, 0, 77, 0x1f, 0x90, 0x9c, 0x40, 0, 0, 0x0e, 0x10}));
  a.result = Result::kNoResources;
  ASSERT_EQ(Build(r, a, map.data(), map.size(), out, sizeof out), 16u);
  EXPECT_EQ(out[3], 4) << "out of resources";
  EXPECT_EQ(Build(r, a, map.data(), map.size(), out, 15), 0u) << "no room";
}

TEST(Pcp, ParsesAndAnswersPcpMap) {
  const Bytes req = PcpMap(17, 5000, 5000, 7200);
  Request r;
  ASSERT_TRUE(Parse(req.data(), req.size(), &r));
  EXPECT_EQ(r.kind, Kind::kPcp);
  EXPECT_EQ(r.op, Op::kMap);
  EXPECT_EQ(r.protocol, 17);
  EXPECT_EQ(r.internal_port, 5000);
  EXPECT_EQ(r.lifetime, 7200u);
  EXPECT_TRUE(IsMappedV4(r.client));
  EXPECT_EQ(r.client[12], 198);
  EXPECT_EQ(r.error, Result::kSuccess);
  EXPECT_FALSE(r.prefer_failure);

  Answer a;
  a.lifetime = 3600;
  a.epoch = 5;
  a.external_port = 41000;
  const uint8_t g[4] = {198, 19, 0, 100};
  MapV4(g, a.external_ip);
  uint8_t out[128];
  ASSERT_EQ(Build(r, a, req.data(), req.size(), out, sizeof out), 60u);
  EXPECT_EQ(out[0], 2);
  EXPECT_EQ(out[1], 0x81);
  EXPECT_EQ(out[3], 0);
  EXPECT_EQ(out[7], 3600 & 0xff);
  EXPECT_EQ(out[11], 5);
  EXPECT_EQ(Bytes(out + 24, out + 36), Bytes(req.begin() + 24, req.begin() + 36)) << "the nonce comes back";
  EXPECT_EQ(out[36], 17);
  EXPECT_EQ(out[42] << 8 | out[43], 41000);
  EXPECT_EQ(Bytes(out + 44, out + 60), Bytes(a.external_ip, a.external_ip + 16));
}

Bytes Concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(Pcp, OptionsAndErrors) {
  Request r;
  const Bytes prefer = PcpMap(6, 80, 80, 100, {2, 0, 0, 0});
  ASSERT_TRUE(Parse(prefer.data(), prefer.size(), &r));
  EXPECT_TRUE(r.prefer_failure);
  EXPECT_EQ(r.error, Result::kSuccess);
  const Bytes optional = PcpMap(6, 80, 80, 100, {200, 0, 0, 4, 1, 2, 3, 4});
  ASSERT_TRUE(Parse(optional.data(), optional.size(), &r));
  EXPECT_EQ(r.error, Result::kSuccess) << "optional options are ignored";
  const Bytes filter = PcpMap(6, 80, 80, 100, Concat({3, 0, 0, 20}, Bytes(20, 0)));
  ASSERT_TRUE(Parse(filter.data(), filter.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppOption);
  const Bytes third_party = PcpMap(6, 80, 80, 100, Concat({1, 0, 0, 16}, Bytes(16, 0)));
  ASSERT_TRUE(Parse(third_party.data(), third_party.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppOption);
  const Bytes overrun = PcpMap(6, 80, 80, 100, {200, 0, 0, 8, 1, 2, 3, 4});
  ASSERT_TRUE(Parse(overrun.data(), overrun.size(), &r));
  EXPECT_EQ(r.error, Result::kMalformedOption);
  const Bytes icmp = PcpMap(1, 80, 80, 100), all = PcpMap(0, 0, 0, 100);
  ASSERT_TRUE(Parse(icmp.data(), icmp.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppProtocol) << "ICMP";
  ASSERT_TRUE(Parse(all.data(), all.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppProtocol) << "all protocols";
  Bytes peer = PcpMap(6, 80, 80, 100);
  peer[1] = 2;
  peer.resize(80);
  ASSERT_TRUE(Parse(peer.data(), peer.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppOpcode);
  Bytes v1 = PcpMap(6, 80, 80, 100);
  v1[0] = 1;
  ASSERT_TRUE(Parse(v1.data(), v1.size(), &r));
  EXPECT_EQ(r.error, Result::kUnsuppVersion);
  uint8_t out[128];
  ASSERT_EQ(Build(r, Answer{}, v1.data(), v1.size(), out, sizeof out), 24u);
  EXPECT_EQ(out[0], 2) << "answered with the version natd speaks";
  EXPECT_EQ(out[3], 1);
  Bytes odd = PcpMap(6, 80, 80, 100);
  odd.resize(58);
  ASSERT_TRUE(Parse(odd.data(), odd.size(), &r));
  EXPECT_EQ(r.error, Result::kMalformedRequest) << "not a multiple of 4";
  Bytes short_map = PcpMap(6, 80, 80, 100);
  short_map.resize(40);
  ASSERT_TRUE(Parse(short_map.data(), short_map.size(), &r));
  EXPECT_EQ(r.error, Result::kMalformedRequest);
  EXPECT_FALSE(Parse(short_map.data(), 20, &r)) << "shorter than a header: ignored";
  Bytes announce(24, 0);
  announce[0] = 2;
  ASSERT_TRUE(Parse(announce.data(), announce.size(), &r));
  EXPECT_EQ(r.op, Op::kAnnounce);
  EXPECT_EQ(r.error, Result::kSuccess);
}

// Every prefix of every request parses or is ignored without reading past it.
TEST(Pcp, TruncationIsSafe) {
  const std::vector<Bytes> all = {PcpMap(6, 80, 80, 100, {2, 0, 0, 0}), Bytes{0, 2, 0, 0, 0x1f, 0x90, 0x1f, 0x90, 0, 0, 1, 0}};
  for (const Bytes& full : all) {
    for (size_t n = 0; n <= full.size(); ++n) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + n);
      Request r;
      if (Parse(cut.data(), cut.size(), &r)) {
        uint8_t out[128];
        Build(r, Answer{}, cut.data(), cut.size(), out, sizeof out);
      }
    }
  }
}

}  // namespace
}  // namespace natd::pcp
