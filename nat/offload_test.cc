// Translation of packets whose L4 checksum is offloaded (TUN IFF_VNET_HDR with
// VIRTIO_NET_HDR_F_NEEDS_CSUM): the field holds the folded pseudo-header sum
// and the device completes it. After translation, completing the checksum the
// way the device does must give exactly the packet a from-scratch build of the
// translated packet gives.
#include <gtest/gtest.h>

#include "nat/engine.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Be16;
using testing::Build;
using testing::Bytes;
using testing::MakeSpec;
using testing::PacketSpec;

size_t L4Offset(const Bytes& p) { return (p[0] >> 4) == 4 ? (p[0] & 15) * 4u : 40; }
size_t ChecksumOffset(uint8_t proto) { return proto == 6 ? 16 : proto == 17 ? 6 : 2; }

// The pseudo-header sum, folded, uncomplemented: what Linux leaves in the
// field of a CHECKSUM_PARTIAL packet.
uint16_t PseudoSum(const Bytes& p, uint8_t proto) {
  const bool v4 = (p[0] >> 4) == 4;
  const size_t l4 = L4Offset(p);
  const uint32_t len = uint32_t(p.size() - l4);
  Bytes ph(p.begin() + (v4 ? 12 : 8), p.begin() + (v4 ? 20 : 40));
  ph.insert(ph.end(), {0, 0, uint8_t(len >> 8), uint8_t(len), 0, 0, 0, proto});
  // OracleSum returns the complement of the folded sum.
  return uint16_t(~testing::OracleSum(ph.data(), ph.size()));
}

Bytes ToPartial(Bytes p, uint8_t proto) {
  const size_t at = L4Offset(p) + ChecksumOffset(proto);
  const uint16_t s = PseudoSum(p, proto);
  p[at] = uint8_t(s >> 8);
  p[at + 1] = uint8_t(s);
  return p;
}

// What the device does: sum the L4 bytes (field included) and store ~sum.
Bytes Complete(Bytes p, uint8_t proto) {
  const size_t l4 = L4Offset(p), at = l4 + ChecksumOffset(proto);
  uint16_t c = testing::OracleSum(p.data() + l4, p.size() - l4);
  if (proto == 17 && c == 0) c = 0xffff;
  p[at] = uint8_t(c >> 8);
  p[at + 1] = uint8_t(c);
  return p;
}

struct Case {
  int family;
  uint8_t proto;
};

class OffloadTest : public ::testing::TestWithParam<Case> {};

TEST_P(OffloadTest, PartialChecksumsCompleteToTheTranslatedPacket) {
  const Case c = GetParam();
  const bool v4 = c.family == 4;
  const std::string inside = v4 ? "198.18.0.2" : "fd00:18::2";
  const std::string remote = v4 ? "198.19.0.2" : "2001:db8:19::2";
  const std::string global = v4 ? "198.19.0.100" : "2001:db8:19::100";
  EngineConfig cfg;
  cfg.global4 = Ip4{};
  cfg.global6 = Ip6{};
  ASSERT_TRUE(ParseIp4("198.19.0.100", &*cfg.global4));
  ASSERT_TRUE(ParseIp6("2001:db8:19::100", &*cfg.global6));
  cfg.tcp = cfg.udp = *PresetByName("symmetric");  // a random external port: the port really changes
  cfg.max_sessions = 64;
  cfg.seed = 3;
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Shard& shard = (*engine)->shard(0);

  for (size_t payload : {0u, 1u, 1000u, 1401u}) {
    PacketSpec out = MakeSpec(c.family, inside, remote, c.proto, 40000, 443);
    out.payload.assign(payload, 0);
    for (size_t i = 0; i < payload; ++i) out.payload[i] = uint8_t(i * 7 + 3);
    Bytes pkt = ToPartial(Build(out), c.proto);
    ASSERT_EQ(shard.ProcessOne(pkt.data(), uint32_t(pkt.size()), 0, true).action, Action::kForward);
    const size_t l4 = L4Offset(pkt);
    const uint16_t ext = Be16(pkt, l4);
    PacketSpec want = MakeSpec(c.family, global, remote, c.proto, ext, 443);
    want.payload = out.payload;
    EXPECT_EQ(testing::Hex(pkt), testing::Hex(ToPartial(Build(want), c.proto))) << "payload " << payload;
    EXPECT_EQ(testing::Hex(Complete(pkt, c.proto)), testing::Hex(Build(want))) << "payload " << payload;

    PacketSpec in = MakeSpec(c.family, remote, global, c.proto, 443, ext);
    in.payload = out.payload;
    in.tcp_flags = 0x12;
    Bytes reply = ToPartial(Build(in), c.proto);
    ASSERT_EQ(shard.ProcessOne(reply.data(), uint32_t(reply.size()), 0, true).action, Action::kForward);
    PacketSpec back = MakeSpec(c.family, remote, inside, c.proto, 443, 40000);
    back.payload = out.payload;
    back.tcp_flags = 0x12;
    EXPECT_EQ(testing::Hex(Complete(reply, c.proto)), testing::Hex(Build(back))) << "payload " << payload;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, OffloadTest,
                         ::testing::Values(Case{4, 6}, Case{4, 17}, Case{6, 6}, Case{6, 17}),
                         [](const auto& info) {
                           return std::string(info.param.family == 4 ? "v4" : "v6") +
                                  (info.param.proto == 6 ? "_tcp" : "_udp");
                         });

}  // namespace
}  // namespace natd
