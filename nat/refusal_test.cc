// When natd refuses an inside host's new flow (no port, table full, host
// quota) it answers in the packet's own buffer with an ICMP Destination
// Unreachable "communication administratively prohibited", rate-limited;
// inbound refusals are never answered.
#include <gtest/gtest.h>

#include "nat/engine.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Be16;
using testing::Build;
using testing::Bytes;
using testing::MakeSpec;

constexpr const char* kGlobal4 = "198.19.0.100";
constexpr const char* kGlobal6 = "2001:db8:19::100";

// `max_sessions` 1 fills the table with one session (inbound newcomers are
// then refused); the default leaves room, so two ports run out first.
std::unique_ptr<Engine> MakeEngine(uint32_t per_second, uint32_t max_sessions = 64) {
  EngineConfig c;
  c.global4 = Ip4{};
  c.global6 = Ip6{};
  EXPECT_TRUE(ParseIp4(kGlobal4, &*c.global4));
  EXPECT_TRUE(ParseIp6(kGlobal6, &*c.global6));
  c.udp = *PresetByName("full-cone");
  c.ports = *PortSet::Parse("2000-2001");  // two ports: the third flow is refused
  c.max_sessions = max_sessions;
  c.icmp_prohibited_per_second = per_second;
  c.seed = 5;
  static NullEventSink static_sink;
  auto e = Engine::Create(c, &static_sink);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

struct Sent {
  Bytes original;
  Bytes buffer;  // with room to spare, as the dataplane's pool gives
  PacketRef ref;
};

Sent Udp(int family, uint16_t sport, size_t payload = 100) {
  Sent s;
  auto sp = MakeSpec(family, family == 4 ? "198.18.0.2" : "fd00:18::2", family == 4 ? "198.19.0.2" : "2001:db8:19::2",
                     17, sport, 53);
  sp.payload.assign(payload, 0x77);
  s.original = Build(sp);
  s.buffer = s.original;
  s.buffer.resize(2048);
  s.ref = PacketRef{s.buffer.data(), uint32_t(s.original.size()), uint32_t(s.buffer.size()), false};
  return s;
}

class RefusalTest : public ::testing::TestWithParam<int> {};

TEST_P(RefusalTest, RefusedFlowGetsAdministrativelyProhibited) {
  const int family = GetParam();
  const bool v4 = family == 4;
  auto e = MakeEngine(100);
  Shard& shard = e->shard(0);
  for (uint16_t p : {uint16_t(40000), uint16_t(40001)}) {
    Sent s = Udp(family, p);
    ASSERT_EQ(shard.ProcessOne(s.ref, 0).action, Action::kForward);
  }
  for (size_t payload : {size_t(100), size_t(1400)}) {
    Sent s = Udp(family, 40002, payload);
    const Verdict v = shard.ProcessOne(s.ref, 0);
    ASSERT_EQ(v.action, Action::kReply);
    EXPECT_EQ(v.reason, DropReason::kNoPort);
    Bytes reply(s.buffer.begin(), s.buffer.begin() + s.ref.len);
    EXPECT_TRUE(testing::OracleChecksumsValid(reply)) << testing::Hex(reply);
    const size_t hdr = v4 ? 20 : 40;
    EXPECT_EQ(reply[v4 ? 9 : 6], v4 ? 1 : 58);
    EXPECT_EQ(reply[hdr], v4 ? 3 : 1) << "Destination Unreachable";
    EXPECT_EQ(reply[hdr + 1], v4 ? 13 : 1) << "administratively prohibited";
    Bytes src(reply.begin() + (v4 ? 12 : 8), reply.begin() + (v4 ? 16 : 24));
    Bytes dst(reply.begin() + (v4 ? 16 : 24), reply.begin() + (v4 ? 20 : 40));
    EXPECT_EQ(dst, Bytes(s.original.begin() + (v4 ? 12 : 8), s.original.begin() + (v4 ? 16 : 24)))
        << "addressed to the inside host";
    // It comes from natd's global address and quotes the refused packet as sent.
    const Bytes global =
        Build(MakeSpec(family, v4 ? kGlobal4 : kGlobal6, v4 ? kGlobal4 : kGlobal6, 17, 1, 1));
    EXPECT_EQ(src, Bytes(global.begin() + (v4 ? 12 : 8), global.begin() + (v4 ? 16 : 24)));
    const size_t quoted = reply.size() - hdr - 8;
    EXPECT_EQ(quoted, std::min(s.original.size(), size_t(v4 ? 548 : 1232)));
    EXPECT_EQ(Bytes(reply.begin() + hdr + 8, reply.end()), Bytes(s.original.begin(), s.original.begin() + quoted));
    EXPECT_LE(reply.size(), v4 ? 576u : 1280u);
  }
  EXPECT_EQ(shard.counters().icmp_prohibited_sent.value(), 2u);
}

TEST_P(RefusalTest, NoRoomNoReply) {
  auto e = MakeEngine(100);
  Shard& shard = e->shard(0);
  for (uint16_t p : {uint16_t(40000), uint16_t(40001)}) {
    Sent s = Udp(GetParam(), p);
    ASSERT_EQ(shard.ProcessOne(s.ref, 0).action, Action::kForward);
  }
  Sent s = Udp(GetParam(), 40002);
  const Bytes before = s.original;
  EXPECT_EQ(shard.ProcessOne(s.buffer.data(), uint32_t(s.original.size()), 0).action, Action::kDrop);
  EXPECT_EQ(Bytes(s.buffer.begin(), s.buffer.begin() + before.size()), before) << "a dropped packet is untouched";
}

TEST_P(RefusalTest, RateLimitedPerSecond) {
  auto e = MakeEngine(2);
  Shard& shard = e->shard(0);
  for (uint16_t p : {uint16_t(40000), uint16_t(40001)}) {
    Sent s = Udp(GetParam(), p);
    ASSERT_EQ(shard.ProcessOne(s.ref, 0).action, Action::kForward);
  }
  auto refuse = [&](int64_t now) {
    Sent s = Udp(GetParam(), 40002);
    return shard.ProcessOne(s.ref, now).action;
  };
  EXPECT_EQ(refuse(1000), Action::kReply);
  EXPECT_EQ(refuse(1500), Action::kReply);
  EXPECT_EQ(refuse(1999), Action::kDrop) << "third in the same second";
  EXPECT_EQ(refuse(2000), Action::kReply) << "a new second";
  EXPECT_EQ(shard.counters().icmp_prohibited_sent.value(), 3u);
  EXPECT_EQ(shard.counters().icmp_prohibited_suppressed.value(), 1u);
  EXPECT_EQ(shard.counters().drop(DropReason::kNoPort).value(), 4u) << "every refusal is counted as a drop";
}

TEST_P(RefusalTest, InboundRefusalsAreNotAnswered) {
  const int family = GetParam();
  const bool v4 = family == 4;
  auto e = MakeEngine(100, /*max_sessions=*/1);  // an inbound newcomer finds the table full
  Shard& shard = e->shard(0);
  Sent out = Udp(family, 40000);
  ASSERT_EQ(shard.ProcessOne(out.ref, 0).action, Action::kForward);
  const uint16_t ext = Be16(out.buffer, v4 ? 20 : 40);  // the mapping's external port
  auto in = MakeSpec(family, v4 ? "203.0.113.9" : "2001:db8:99::9", v4 ? kGlobal4 : kGlobal6, 17, 53, ext);
  Bytes pkt = Build(in);
  pkt.resize(2048);
  PacketRef ref{pkt.data(), uint32_t(Build(in).size()), 2048, false};
  const Verdict v = shard.ProcessOne(ref, 0);
  EXPECT_EQ(v.action, Action::kDrop);
  EXPECT_EQ(v.reason, DropReason::kTableFull);
}

INSTANTIATE_TEST_SUITE_P(Families, RefusalTest, ::testing::Values(4, 6));

}  // namespace
}  // namespace natd
