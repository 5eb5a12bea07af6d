// MappingTable driven directly, with a hand clock: RFC 4787 behaviour of every
// preset, port allocation, exhaustion and capacity, TCP state (RFC 5382),
// UDP / ICMP timeouts and expiry.
#include "nat/mapping_table.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nat/addr.h"
#include "nat/behavior.h"
#include "nat/config.h"
#include "nat/events.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/rng.h"

namespace natd {
namespace {

constexpr int64_t kSec = 1000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kTransitory = 4 * kMin;
constexpr int64_t kEstablished = 2 * 60 * kMin + 4 * kMin;
constexpr int64_t kUdp = 5 * kMin;
constexpr int64_t kIcmp = 60 * kSec;

constexpr uint8_t kSyn = kTcpSyn;
constexpr uint8_t kAck = kTcpAck;
constexpr uint8_t kSynAck = kTcpSyn | kTcpAck;
constexpr uint8_t kFinAck = kTcpFin | kTcpAck;
constexpr uint8_t kRst = kTcpRst;

class RecordingSink : public EventSink {
 public:
  void MappingInserted(const MappingEvent& e) override { inserted.push_back(e); }
  void MappingRemoved(const MappingEvent& e, RemoveReason why) override { removed.push_back({e, why}); }
  void MappingRefused(const MappingEvent& e, DropReason why) override { refused.push_back({e, why}); }
  void PacketDropped(DropReason, const uint8_t*, size_t) override { ++dropped; }

  std::vector<MappingEvent> inserted;
  std::vector<std::pair<MappingEvent, RemoveReason>> removed;
  std::vector<std::pair<MappingEvent, DropReason>> refused;
  int dropped = 0;
};

// Addresses of either family, numbered.
template <typename A>
A Addr(const std::string& v4, const std::string& v6);
template <>
Ip4 Addr<Ip4>(const std::string& v4, const std::string&) {
  Ip4 a;
  EXPECT_TRUE(ParseIp4(v4, &a)) << v4;
  return a;
}
template <>
Ip6 Addr<Ip6>(const std::string&, const std::string& v6) {
  Ip6 a;
  EXPECT_TRUE(ParseIp6(v6, &a)) << v6;
  return a;
}
template <typename A>
A Inside(int i) {
  return Addr<A>("10.0.0." + std::to_string(i), "fd00::" + std::to_string(i));
}
template <typename A>
A Remote(int i) {
  return Addr<A>("203.0.113." + std::to_string(i), "2001:db8::" + std::to_string(i));
}
template <typename A>
A Global() {
  return Addr<A>("192.0.2.1", "2001:db8:ffff::1");
}

TableConfig Cfg(uint8_t proto, const Behavior& b, uint32_t capacity = 4096) {
  TableConfig c;
  c.proto = proto;
  c.behavior = b;
  c.capacity = capacity;
  c.port_probes = 32;
  if (proto == kProtoTcp) {
    c.timeout_ms = kTransitory;
    c.established_timeout_ms = kEstablished;
  } else if (proto == kProtoUdp) {
    c.timeout_ms = kUdp;
  } else {
    c.timeout_ms = kIcmp;
  }
  return c;
}

Behavior Preset(const char* name) {
  auto b = PresetByName(name);
  EXPECT_TRUE(b.ok()) << name;
  return *b;
}

PortPlan MakePlan(const std::string& spec, uint32_t shards) {
  auto set = PortSet::Parse(spec);
  EXPECT_TRUE(set.ok()) << set.status();
  auto plan = PortPlan::Make(*set, shards);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return *std::move(plan);
}

template <typename A>
struct Harness {
  using Table = MappingTable<A>;
  using Result = typename Table::Result;

  explicit Harness(const TableConfig& cfg, const std::string& ports = "1024-65535", uint32_t shards = 1,
                   uint32_t shard = 0, uint64_t seed = 42)
      : plan(MakePlan(ports, shards)), rng(seed), shard_index(shard) {
    table = std::make_unique<Table>(cfg, Global<A>(), shard, &plan, &rng, &counters, &sink);
  }

  Result Out(const A& x, uint16_t xp, const A& y, uint16_t yp, int64_t now, uint8_t flags = 0) {
    Result r = table->Outbound(x, xp, y, yp, flags, 100, now);
    CheckInvariants();
    return r;
  }
  Result In(uint16_t ext, const A& y, uint16_t yp, int64_t now, uint8_t flags = 0) {
    Result r = table->Inbound(ext, y, yp, flags, 100, now);
    CheckInvariants();
    return r;
  }
  size_t Expire(int64_t now) {
    size_t n = table->Expire(now);
    CheckInvariants();
    return n;
  }
  uint16_t Port(const Result& r) const { return table->mapping_of(r.session).external_port; }
  const typename Table::Session& S(const Result& r) const { return table->session(r.session); }

  // Counters balance with what is live, and every live port is ours.
  void CheckInvariants() {
    EXPECT_EQ(counters.mappings_inserted.value() - counters.mappings_removed.value(), table->mapping_count());
    EXPECT_EQ(counters.sessions_inserted.value() - counters.sessions_removed.value(), table->session_count());
    EXPECT_EQ(sink.inserted.size() - sink.removed.size(), table->mapping_count());
    EXPECT_LE(table->mapping_count(), table->session_count() + table->explicit_count());
    size_t visited = 0;
    table->ForEachSession([&](const auto& m, const auto&) {
      ++visited;
      EXPECT_EQ(plan.OwnerOf(m.external_port), shard_index) << "port " << m.external_port << " not in our slice";
    });
    EXPECT_EQ(visited, table->session_count());
  }

  PortPlan plan;
  Rng rng;
  Counters counters;
  RecordingSink sink;
  uint32_t shard_index;
  std::unique_ptr<Table> table;
};

bool Denied(DropReason r) { return r == DropReason::kFiltered || r == DropReason::kNoMapping; }

template <typename A>
class MappingTableTest : public ::testing::Test {};
using Families = ::testing::Types<Ip4, Ip6>;
TYPED_TEST_SUITE(MappingTableTest, Families);

// ---------------------------------------------------------------------------
// Presets

// IPv6 hosts numbered in their addresses' last bytes (inside hosts and
// remote ones), as in bench/engine_workload.h: every session key hashes
// apart. (The hash once kept those bytes in the same few bits of each
// address's word, and a key XORs two words: these 65536 keys had 4096
// distinct hashes.)
TEST(TableHash, Ip6KeysNumberedInTheLastBytesHashApart) {
  std::set<size_t> hashes;
  uint32_t keys = 0;
  for (uint32_t host = 0; host < 256; ++host) {
    for (uint32_t remote = 0; remote < 16; ++remote) {
      for (uint32_t port = 0; port < 16; ++port) {
        uint8_t in[16] = {0xfd, 0, 0, 0x18}, re[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x19};
        in[12] = 10, in[15] = uint8_t(host);
        re[12] = 198, re[13] = 19, re[15] = uint8_t(remote);
        hashes.insert(TableHash()(InsideKey<Ip6>{Ip6::Load(in), Ip6::Load(re), uint16_t(1024 + port), 443}));
        ++keys;
      }
    }
  }
  EXPECT_EQ(hashes.size(), keys);
}

TEST(Presets, TableMatchesTheDocumentation) {
  ASSERT_EQ(AllPresets().size(), 9u);
  using D = Dependence;
  using S = PortStrategy;
  using P = PortSharing;
  struct Row {
    const char* name;
    D mapping, filtering;
    S strategy;
    P sharing;
  };
  const Row rows[] = {
      {"full-cone", D::kEndpointIndependent, D::kEndpointIndependent, S::kPreserve, P::kExclusive},
      {"restricted-cone", D::kEndpointIndependent, D::kAddressDependent, S::kPreserve, P::kExclusive},
      {"port-restricted-cone", D::kEndpointIndependent, D::kAddressPortDependent, S::kPreserve, P::kExclusive},
      {"symmetric", D::kAddressPortDependent, D::kAddressPortDependent, S::kRandom, P::kExclusive},
      {"quasi-restricted-cone", D::kAddressDependent, D::kAddressDependent, S::kReuseLast, P::kPerRemoteAddress},
      {"quasi-port-restricted-cone", D::kAddressPortDependent, D::kAddressPortDependent, S::kReuseLast,
       P::kPerRemoteEndpoint},
      {"quasi-symmetric", D::kAddressPortDependent, D::kAddressPortDependent, S::kRandom, P::kPerRemoteEndpoint},
      {"address-dependent", D::kAddressDependent, D::kAddressDependent, S::kIncrement, P::kExclusive},
      {"address-port-dependent", D::kAddressPortDependent, D::kAddressPortDependent, S::kIncrement,
       P::kExclusive},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    auto b = PresetByName(row.name);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->name, row.name);
    EXPECT_EQ(b->mapping, row.mapping);
    EXPECT_EQ(b->filtering, row.filtering);
    EXPECT_EQ(b->strategy, row.strategy);
    EXPECT_EQ(b->sharing, row.sharing);
  }
  auto bad = PresetByName("cone");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("unknown NAT preset 'cone'"));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("quasi-symmetric"));
  EXPECT_EQ(MappingName(D::kAddressDependent), "ADM");
  EXPECT_EQ(FilteringName(D::kAddressPortDependent), "APDF");
}

// ---------------------------------------------------------------------------
// The RFC 4787 matrix.

enum class Ports {
  kAllSame,       // p1 == p2 == p3
  kAdmNext,       // p1 == p2, p3 = next port in the slice
  kAllNext,       // p1, next, next again
  kRandomUnique,  // three different, not the inside port
  kRandom,        // not all equal, not the inside port
};

struct Expect {
  const char* name;
  size_t mappings;
  Ports ports;
  bool y1_other_port_in;  // Y1 from a port X never sent to
  bool y3_in;             // an address X never sent to
};

const Expect kExpect[] = {
    {"full-cone", 1, Ports::kAllSame, true, true},
    {"restricted-cone", 1, Ports::kAllSame, true, false},
    {"port-restricted-cone", 1, Ports::kAllSame, false, false},
    {"symmetric", 3, Ports::kRandomUnique, false, false},
    {"quasi-restricted-cone", 2, Ports::kAllSame, true, false},
    {"quasi-port-restricted-cone", 3, Ports::kAllSame, false, false},
    {"quasi-symmetric", 3, Ports::kRandom, false, false},
    {"address-dependent", 2, Ports::kAdmNext, true, false},
    {"address-port-dependent", 3, Ports::kAllNext, false, false},
};

const Expect& ExpectFor(std::string_view name) {
  for (const Expect& e : kExpect) {
    if (e.name == name) return e;
  }
  ADD_FAILURE() << "no expectation for " << name;
  return kExpect[0];
}

template <typename A>
void RunMatrix(const Behavior& b, uint8_t proto) {
  SCOPED_TRACE(std::string(b.name) + (proto == kProtoTcp ? " tcp" : " udp"));
  const Expect& want = ExpectFor(b.name);
  // Two shards: our slice (shard 0) is 1024..33279; 20000 is inside it.
  Harness<A> h(Cfg(proto, b), "1024-65535", 2, 0);
  const A x = Inside<A>(1), y1 = Remote<A>(1), y2 = Remote<A>(2), y3 = Remote<A>(3);
  const uint16_t xp = 20000, yp1 = 3478, yp2 = 3479, yp_other = 4000;
  const bool tcp = proto == kProtoTcp;
  const uint8_t open = tcp ? kSyn : 0;
  int64_t now = 1000;

  auto r1 = h.Out(x, xp, y1, yp1, now, open);
  auto r2 = h.Out(x, xp, y1, yp2, now, open);
  auto r3 = h.Out(x, xp, y2, yp1, now, open);
  ASSERT_EQ(r1.drop, DropReason::kNone);
  ASSERT_EQ(r2.drop, DropReason::kNone);
  ASSERT_EQ(r3.drop, DropReason::kNone);
  const uint16_t p1 = h.Port(r1), p2 = h.Port(r2), p3 = h.Port(r3);
  EXPECT_EQ(h.table->session_count(), 3u);
  EXPECT_EQ(h.table->mapping_count(), want.mappings);
  EXPECT_EQ(h.sink.inserted.size(), want.mappings);
  switch (want.ports) {
    case Ports::kAllSame:
      EXPECT_EQ(p1, xp) << "inside port tried first";
      EXPECT_EQ(p2, p1);
      EXPECT_EQ(p3, p1);
      break;
    case Ports::kAdmNext:
      EXPECT_EQ(p1, xp);
      EXPECT_EQ(p2, p1);
      EXPECT_EQ(p3, p1 + 1);
      break;
    case Ports::kAllNext:
      EXPECT_EQ(p1, xp);
      EXPECT_EQ(p2, p1 + 1);
      EXPECT_EQ(p3, p1 + 2);
      break;
    case Ports::kRandomUnique:
      EXPECT_NE(p1, xp);
      EXPECT_NE(p1, p2);
      EXPECT_NE(p1, p3);
      EXPECT_NE(p2, p3);
      break;
    case Ports::kRandom:
      EXPECT_NE(p1, xp);
      EXPECT_FALSE(p1 == p2 && p2 == p3);
      break;
  }
  // Repeating a packet finds the same session.
  auto again = h.Out(x, xp, y1, yp1, now + 1, tcp ? kAck : 0);
  EXPECT_EQ(again.drop, DropReason::kNone);
  EXPECT_EQ(again.session, r1.session);
  // Each session is found by both keys.
  EXPECT_EQ(h.table->FindInside(x, xp, y2, yp1), r3.session);
  EXPECT_EQ(h.table->FindOutside(p3, y2, yp1), r3.session);
  EXPECT_EQ(h.table->FindOutside(p1, y3, yp1), kNil);

  // Inbound from Y1:y1, which X sent to: always accepted, same session.
  auto in1 = h.In(p1, y1, yp1, now + 2, tcp ? kSynAck : 0);
  EXPECT_EQ(in1.drop, DropReason::kNone);
  EXPECT_EQ(in1.session, r1.session);
  EXPECT_EQ(h.table->mapping_of(r1.session).packets_in, 1u);

  // Inbound from Y1 on a port X never sent to.
  if (tcp) {
    // Never without a SYN (or with a RST), whatever the filtering.
    auto ack = h.In(p1, y1, yp_other, now + 3, kAck);
    EXPECT_EQ(ack.session, kNil);
    EXPECT_EQ(ack.drop, want.y1_other_port_in ? DropReason::kTcpNoSession : ack.drop);
    EXPECT_TRUE(ack.drop == DropReason::kTcpNoSession || Denied(ack.drop)) << DropReasonName(ack.drop);
    auto rst = h.In(p1, y1, yp_other, now + 3, kSyn | kRst);
    EXPECT_EQ(rst.session, kNil);
    EXPECT_NE(rst.drop, DropReason::kNone);
  }
  const size_t sessions_before = h.table->session_count();
  auto in2 = h.In(p1, y1, yp_other, now + 4, open);
  if (want.y1_other_port_in) {
    ASSERT_EQ(in2.drop, DropReason::kNone);
    EXPECT_EQ(h.table->session_count(), sessions_before + 1);
    const auto& m = h.table->mapping_of(in2.session);
    EXPECT_EQ(m.inside, x);
    EXPECT_EQ(m.inside_port, xp);
    EXPECT_EQ(m.external_port, p1);
    EXPECT_EQ(h.table->FindOutside(p1, y1, yp_other), in2.session);
    EXPECT_EQ(h.table->FindInside(x, xp, y1, yp_other), in2.session);
    // X's answer goes out through the inbound-made session.
    auto reply = h.Out(x, xp, y1, yp_other, now + 5, tcp ? kSynAck : 0);
    EXPECT_EQ(reply.session, in2.session);
    EXPECT_EQ(h.Port(reply), p1);
    if (tcp) {
      EXPECT_TRUE(h.S(reply).tcp_state & kTcpStEstablished);
    }
  } else {
    EXPECT_TRUE(Denied(in2.drop)) << DropReasonName(in2.drop);
    EXPECT_EQ(in2.session, kNil);
    EXPECT_EQ(h.table->session_count(), sessions_before);
  }

  // Inbound from an address X never sent to.
  auto in3 = h.In(p1, y3, yp1, now + 6, open);
  if (want.y3_in) {
    ASSERT_EQ(in3.drop, DropReason::kNone);
    EXPECT_EQ(h.table->mapping_of(in3.session).inside, x);
    EXPECT_EQ(h.table->mapping_of(in3.session).inside_port, xp);
  } else {
    EXPECT_TRUE(Denied(in3.drop)) << DropReasonName(in3.drop);
    EXPECT_EQ(in3.session, kNil);
  }
  // A port nobody holds.
  uint16_t unused = 30000;
  while (unused == p1 || unused == p2 || unused == p3) ++unused;
  auto none = h.In(unused, y1, yp1, now + 7, open);
  EXPECT_EQ(none.drop, DropReason::kNoMapping);
  // No table refusals happened; flushing empties everything.
  EXPECT_TRUE(h.sink.refused.empty());
  h.table->Flush();
  h.CheckInvariants();
  EXPECT_EQ(h.table->session_count(), 0u);
  EXPECT_EQ(h.table->mapping_count(), 0u);
  ASSERT_FALSE(h.sink.removed.empty());
  EXPECT_EQ(h.sink.removed.back().second, RemoveReason::kFlushed);
}

TYPED_TEST(MappingTableTest, Rfc4787MatrixUdp) {
  for (const Behavior& b : AllPresets()) RunMatrix<TypeParam>(b, kProtoUdp);
}

TYPED_TEST(MappingTableTest, Rfc4787MatrixTcp) {
  for (const Behavior& b : AllPresets()) RunMatrix<TypeParam>(b, kProtoTcp);
}

// "increment" walks the slice in order, across gaps in the port set.
TYPED_TEST(MappingTableTest, IncrementFollowsSliceOrder) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("address-port-dependent")), "5000-5001,7000-7009");
  const A x = Inside<A>(1);
  std::vector<uint16_t> got;
  for (int i = 0; i < 4; ++i) {
    auto r = h.Out(x, 5001, Remote<A>(1), static_cast<uint16_t>(100 + i), 0);
    ASSERT_EQ(r.drop, DropReason::kNone);
    got.push_back(h.Port(r));
  }
  EXPECT_EQ(got, (std::vector<uint16_t>{5001, 7000, 7001, 7002}));
  // Another inside endpoint whose port is free starts at its own port.
  auto r = h.Out(Inside<A>(2), 5000, Remote<A>(1), 100, 0);
  ASSERT_EQ(r.drop, DropReason::kNone);
  EXPECT_EQ(h.Port(r), 5000);
  // ... and the next after a taken one skips it.
  auto r2 = h.Out(Inside<A>(2), 5000, Remote<A>(1), 101, 0);
  EXPECT_EQ(h.Port(r2), 7003);
}

// Increment never steps back: the port after the last one given, even when
// that last one has been freed meanwhile.
TYPED_TEST(MappingTableTest, IncrementContinuesAfterLastGivenPort) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("address-port-dependent")), "5000-5099");
  const A x = Inside<A>(1), y = Remote<A>(1);
  auto a = h.Out(x, 5010, y, 1, 0);
  auto b = h.Out(x, 5010, y, 2, 10 * kSec);
  ASSERT_EQ(h.Port(a), 5010);
  ASSERT_EQ(h.Port(b), 5011);
  h.Out(x, 5010, y, 1, 100 * kSec);  // keeps the first mapping alive
  EXPECT_EQ(h.Expire(10 * kSec + kUdp), 1u);
  ASSERT_EQ(h.table->mapping_count(), 1u);
  auto c = h.Out(x, 5010, y, 3, 10 * kSec + kUdp);
  ASSERT_EQ(c.drop, DropReason::kNone);
  EXPECT_EQ(h.Port(c), 5012);
}

// Reuse-last: the port last given to the inside endpoint comes first, also
// when it is not the inside port (here the inside port is outside the set).
TYPED_TEST(MappingTableTest, ReuseLastReusesARandomPort) {
  using A = TypeParam;
  for (const char* name : {"quasi-restricted-cone", "quasi-port-restricted-cone"}) {
    SCOPED_TRACE(name);
    Harness<A> h(Cfg(kProtoUdp, Preset(name)), "20000-29999");
    const A x = Inside<A>(1);
    auto a = h.Out(x, 40000, Remote<A>(1), 53, 0);
    ASSERT_EQ(a.drop, DropReason::kNone);
    const uint16_t p = h.Port(a);
    EXPECT_GE(p, 20000);
    EXPECT_LE(p, 29999);
    for (int i = 2; i < 6; ++i) {
      auto r = h.Out(x, 40000, Remote<A>(i), static_cast<uint16_t>(50 + i), i);
      ASSERT_EQ(r.drop, DropReason::kNone);
      EXPECT_EQ(h.Port(r), p) << i;
    }
    EXPECT_EQ(h.table->mapping_count(), 5u);
  }
}

// Preserve: the inside port when free, another one when not.
TYPED_TEST(MappingTableTest, PreserveFallsBackWhenTaken) {
  using A = TypeParam;
  for (const char* name : {"full-cone", "restricted-cone", "port-restricted-cone"}) {
    SCOPED_TRACE(name);
    Harness<A> h(Cfg(kProtoUdp, Preset(name)));
    auto a = h.Out(Inside<A>(1), 5000, Remote<A>(1), 53, 0);
    auto b = h.Out(Inside<A>(2), 5000, Remote<A>(2), 53, 0);
    ASSERT_EQ(a.drop, DropReason::kNone);
    ASSERT_EQ(b.drop, DropReason::kNone);
    EXPECT_EQ(h.Port(a), 5000);
    EXPECT_NE(h.Port(b), 5000);  // exclusive: even towards another remote
    // Inbound to each port reaches its own inside endpoint.
    auto in = h.In(h.Port(b), Remote<A>(2), 53, 1);
    ASSERT_EQ(in.drop, DropReason::kNone);
    EXPECT_EQ(h.table->mapping_of(in.session).inside, Inside<A>(2));
  }
}

// Ports outside our shard's slice are never given, whatever the strategy.
TYPED_TEST(MappingTableTest, PortsComeFromOwnSlice) {
  using A = TypeParam;
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    Harness<A> h(Cfg(kProtoUdp, b), "1024-65535", 3, 1);
    for (int i = 0; i < 60; ++i) {
      const uint16_t xp = static_cast<uint16_t>(1024 + i * 1000);  // in every shard's slice
      auto r = h.Out(Inside<A>(1 + i % 5), xp, Remote<A>(1 + i % 3), static_cast<uint16_t>(80 + i % 2), i);
      ASSERT_EQ(r.drop, DropReason::kNone);
      EXPECT_EQ(h.plan.OwnerOf(h.Port(r)), 1u);
    }
  }
}

// ---------------------------------------------------------------------------
// Quasi presets: external ports shared between inside endpoints.

TYPED_TEST(MappingTableTest, QuasiRestrictedConeSharesPortPerRemoteAddress) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("quasi-restricted-cone")));
  const A x1 = Inside<A>(1), x2 = Inside<A>(2), y1 = Remote<A>(1), y2 = Remote<A>(2);
  auto a = h.Out(x1, 5000, y1, 3478, 0);
  auto b = h.Out(x2, 5000, y2, 3478, 0);
  ASSERT_EQ(a.drop, DropReason::kNone);
  ASSERT_EQ(b.drop, DropReason::kNone);
  EXPECT_EQ(h.Port(a), 5000);
  EXPECT_EQ(h.Port(b), 5000);  // shared: the remote addresses differ
  // Towards Y1, which x1 already uses port 5000 for, x2 needs another port,
  // even to another port of Y1.
  auto c = h.Out(x2, 5000, y1, 9999, 0);
  ASSERT_EQ(c.drop, DropReason::kNone);
  EXPECT_NE(h.Port(c), 5000);
  // Inbound to 5000 goes to whoever talks to that address.
  auto in1 = h.In(5000, y1, 3478, 1);
  auto in2 = h.In(5000, y2, 3478, 1);
  ASSERT_EQ(in1.drop, DropReason::kNone);
  ASSERT_EQ(in2.drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_of(in1.session).inside, x1);
  EXPECT_EQ(h.table->mapping_of(in2.session).inside, x2);
  // ADF: another port of Y2 reaches x2 as well.
  auto in3 = h.In(5000, y2, 9999, 2);
  ASSERT_EQ(in3.drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_of(in3.session).inside, x2);
  EXPECT_EQ(h.table->mapping_of(in3.session).inside_port, 5000);
  auto in4 = h.In(h.Port(c), y1, 9999, 2);
  ASSERT_EQ(in4.drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_of(in4.session).inside, x2);
  // A third address reaches nobody.
  EXPECT_TRUE(Denied(h.In(5000, Remote<A>(3), 3478, 3).drop));
}

TYPED_TEST(MappingTableTest, QuasiPortRestrictedConeSharesPortPerRemoteEndpoint) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("quasi-port-restricted-cone")));
  const A x1 = Inside<A>(1), x2 = Inside<A>(2), y1 = Remote<A>(1);
  auto a = h.Out(x1, 5000, y1, 1111, 0);
  auto b = h.Out(x2, 5000, y1, 2222, 0);
  ASSERT_EQ(a.drop, DropReason::kNone);
  ASSERT_EQ(b.drop, DropReason::kNone);
  EXPECT_EQ(h.Port(a), 5000);
  EXPECT_EQ(h.Port(b), 5000);  // same address, different remote ports
  auto c = h.Out(x2, 5000, y1, 1111, 0);
  ASSERT_EQ(c.drop, DropReason::kNone);
  EXPECT_NE(h.Port(c), 5000);
  auto in1 = h.In(5000, y1, 1111, 1);
  auto in2 = h.In(5000, y1, 2222, 1);
  ASSERT_EQ(in1.drop, DropReason::kNone);
  ASSERT_EQ(in2.drop, DropReason::kNone);
  EXPECT_EQ(in1.session, a.session);
  EXPECT_EQ(in2.session, b.session);
  EXPECT_EQ(h.table->mapping_of(in1.session).inside, x1);
  EXPECT_EQ(h.table->mapping_of(in2.session).inside, x2);
  EXPECT_TRUE(Denied(h.In(5000, y1, 3333, 2).drop));
}

// ---------------------------------------------------------------------------
// Running out: ports, then table capacity.

bool Shares(const Behavior& b) { return b.sharing != PortSharing::kExclusive; }

TYPED_TEST(MappingTableTest, PortExhaustionAndRecovery) {
  using A = TypeParam;
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    TableConfig cfg = Cfg(kProtoUdp, b);
    cfg.port_probes = 64;  // random probes over 4 ports: make a miss of the free one negligible
    Harness<A> h(cfg, "5000-5003");
    const A y = Remote<A>(1);
    std::set<uint16_t> used;
    for (int i = 0; i < 4; ++i) {
      auto r = h.Out(Inside<A>(1 + i), static_cast<uint16_t>(6000 + i), y, 53, i * kSec);
      ASSERT_EQ(r.drop, DropReason::kNone) << i;
      used.insert(h.Port(r));
    }
    EXPECT_EQ(used, (std::set<uint16_t>{5000, 5001, 5002, 5003}));
    // The fifth inside endpoint towards the same remote end: no port.
    auto full = h.Out(Inside<A>(5), 6004, y, 53, 10 * kSec);
    EXPECT_EQ(full.drop, DropReason::kNoPort);
    EXPECT_EQ(full.session, kNil);
    ASSERT_EQ(h.sink.refused.size(), 1u);
    EXPECT_EQ(h.sink.refused[0].second, DropReason::kNoPort);
    EXPECT_EQ(h.sink.refused[0].first.inside_port, 6004);
    EXPECT_EQ(h.sink.refused[0].first.remote_port, 53);
    EXPECT_EQ(h.sink.refused[0].first.external_port, 0);
    EXPECT_EQ(h.sink.refused[0].first.proto, kProtoUdp);
    EXPECT_EQ(h.table->mapping_count(), 4u);
    // Towards another remote address a port is free only where ports are shared.
    auto other = h.Out(Inside<A>(5), 6004, Remote<A>(2), 53, 10 * kSec);
    if (Shares(b)) {
      EXPECT_EQ(other.drop, DropReason::kNone);
    } else {
      EXPECT_EQ(other.drop, DropReason::kNoPort);
      EXPECT_EQ(h.sink.refused.size(), 2u);
    }
    // The first mapping expires: its port can be given again.
    EXPECT_EQ(h.Expire(kUdp - 1), 0u);
    EXPECT_EQ(h.Expire(kUdp), 1u);
    ASSERT_EQ(h.sink.removed.size(), 1u);
    EXPECT_EQ(h.sink.removed[0].second, RemoveReason::kExpired);
    const uint16_t freed = h.sink.removed[0].first.external_port;
    auto retry = h.Out(Inside<A>(5), 6004, y, 53, kUdp + 1);
    ASSERT_EQ(retry.drop, DropReason::kNone);
    EXPECT_EQ(h.Port(retry), freed);
  }
}

// RFC 6888 REQ-4: one inside host cannot take more than its quota of a
// table, whatever the preset; other hosts are not affected; expiry gives the
// quota back. Inbound-made sessions (EIF) count too.
TYPED_TEST(MappingTableTest, HostQuota) {
  using A = TypeParam;
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    TableConfig cfg = Cfg(kProtoUdp, b);
    cfg.host_quota = 3;
    Harness<A> h(cfg);
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(h.Out(Inside<A>(1), uint16_t(7000 + i), Remote<A>(1), 53, 0).drop, DropReason::kNone);
    }
    EXPECT_EQ(h.Out(Inside<A>(1), 7003, Remote<A>(1), 53, 0).drop, DropReason::kHostQuota);
    EXPECT_EQ(h.Out(Inside<A>(1), 7000, Remote<A>(2), 53, 0).drop, DropReason::kHostQuota) << "a new session too";
    ASSERT_EQ(h.sink.refused.size(), 2u);
    EXPECT_EQ(h.sink.refused[0].second, DropReason::kHostQuota);
    EXPECT_EQ(h.Out(Inside<A>(2), 7000, Remote<A>(1), 53, 0).drop, DropReason::kNone) << "another host";
    EXPECT_EQ(h.Out(Inside<A>(1), 7000, Remote<A>(1), 53, kSec).drop, DropReason::kNone) << "existing sessions work";
    if (b.filtering == Dependence::kEndpointIndependent) {
      const uint16_t p = h.table->mapping_of(h.table->FindInside(Inside<A>(2), 7000, Remote<A>(1), 53)).external_port;
      EXPECT_EQ(h.In(p, Remote<A>(5), 53, 0).drop, DropReason::kNone) << "host 2 has room";
      EXPECT_EQ(h.In(p, Remote<A>(6), 53, 0).drop, DropReason::kNone);
      EXPECT_EQ(h.In(p, Remote<A>(7), 53, 0).drop, DropReason::kHostQuota) << "inbound-made sessions count";
    }
    h.Expire(kUdp + 2 * kSec);
    EXPECT_EQ(h.table->session_count(), 0u);
    EXPECT_EQ(h.Out(Inside<A>(1), 7003, Remote<A>(1), 53, kUdp + 2 * kSec).drop, DropReason::kNone)
        << "expiry gives the quota back";
  }
}

TYPED_TEST(MappingTableTest, TableFull) {
  using A = TypeParam;
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    Harness<A> h(Cfg(kProtoUdp, b, /*capacity=*/3));
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(h.Out(Inside<A>(1 + i), 7000, Remote<A>(1), 53, 0).drop, DropReason::kNone);
    }
    auto r = h.Out(Inside<A>(4), 7000, Remote<A>(1), 53, kSec);
    EXPECT_EQ(r.drop, DropReason::kTableFull);
    // A new session of an existing inside endpoint is refused as well.
    auto r2 = h.Out(Inside<A>(1), 7000, Remote<A>(2), 53, kSec);
    EXPECT_EQ(r2.drop, DropReason::kTableFull);
    ASSERT_EQ(h.sink.refused.size(), 2u);
    EXPECT_EQ(h.sink.refused[0].second, DropReason::kTableFull);
    EXPECT_EQ(h.sink.refused[1].second, DropReason::kTableFull);
    EXPECT_EQ(h.table->session_count(), 3u);
    // Existing sessions keep working.
    EXPECT_EQ(h.Out(Inside<A>(2), 7000, Remote<A>(1), 53, kSec).drop, DropReason::kNone);
    if (b.filtering == Dependence::kEndpointIndependent) {
      const uint16_t p = h.table->mapping_of(h.table->FindInside(Inside<A>(1), 7000, Remote<A>(1), 53)).external_port;
      EXPECT_EQ(h.In(p, Remote<A>(9), 53, kSec).drop, DropReason::kTableFull);
    }
    // Inside(1) and Inside(3) expire at kUdp, Inside(2) was refreshed at 1 s.
    EXPECT_EQ(h.Expire(kUdp), 2u);
    EXPECT_EQ(h.Out(Inside<A>(4), 7000, Remote<A>(1), 53, kUdp).drop, DropReason::kNone);
    EXPECT_EQ(h.table->session_count(), 2u);
  }
}

TYPED_TEST(MappingTableTest, ZeroCapacityRefusesCleanly) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("full-cone"), 0));
  EXPECT_EQ(h.Out(Inside<A>(1), 7000, Remote<A>(1), 53, 0).drop, DropReason::kTableFull);
  EXPECT_EQ(h.Expire(1000000), 0u);
}

// ---------------------------------------------------------------------------
// TCP state and timers (RFC 5382).

template <typename A>
struct TcpFixture {
  TcpFixture() : h(Cfg(kProtoTcp, Preset("port-restricted-cone"))) {}
  typename Harness<A>::Result Out(int64_t now, uint8_t flags) { return h.Out(x, 5000, y, 443, now, flags); }
  typename Harness<A>::Result In(int64_t now, uint8_t flags) { return h.In(5000, y, 443, now, flags); }
  bool Live() const { return h.table->FindInside(x, 5000, y, 443) != kNil; }
  uint8_t State() const { return h.table->session(h.table->FindInside(x, 5000, y, 443)).tcp_state; }
  int64_t Expires() const { return h.table->session(h.table->FindInside(x, 5000, y, 443)).expires_ms; }

  Harness<A> h;
  A x = Inside<A>(1), y = Remote<A>(1);
};

TYPED_TEST(MappingTableTest, TcpSynOutIsTransitory) {
  TcpFixture<TypeParam> f;
  ASSERT_EQ(f.Out(0, kSyn).drop, DropReason::kNone);
  EXPECT_EQ(f.State() & kTcpStEstablished, 0);
  EXPECT_EQ(f.Expires(), kTransitory);
  EXPECT_EQ(f.h.Expire(kTransitory - 1), 0u);
  EXPECT_TRUE(f.Live());
  EXPECT_EQ(f.h.Expire(kTransitory), 1u);
  EXPECT_FALSE(f.Live());
  EXPECT_EQ(f.h.table->mapping_count(), 0u);
}

TYPED_TEST(MappingTableTest, TcpHandshakeEstablishes) {
  TcpFixture<TypeParam> f;
  ASSERT_EQ(f.Out(0, kSyn).drop, DropReason::kNone);
  ASSERT_EQ(f.In(500, kSynAck).drop, DropReason::kNone);
  EXPECT_NE(f.State() & kTcpStEstablished, 0);
  ASSERT_EQ(f.Out(1000, kAck).drop, DropReason::kNone);
  // Idle for longer than the transitory timeout: still there.
  EXPECT_EQ(f.h.Expire(1000 + kTransitory + kSec), 0u);
  EXPECT_TRUE(f.Live());
  EXPECT_EQ(f.h.Expire(1000 + kEstablished - 1), 0u);
  EXPECT_TRUE(f.Live());
  EXPECT_TRUE(f.h.sink.removed.empty());
  EXPECT_EQ(f.h.Expire(1000 + kEstablished), 1u);
  EXPECT_FALSE(f.Live());
  ASSERT_EQ(f.h.sink.removed.size(), 1u);
  EXPECT_EQ(f.h.sink.removed[0].first.external_port, 5000);
}

TYPED_TEST(MappingTableTest, TcpInboundRefreshesEstablished) {
  TcpFixture<TypeParam> f;
  f.Out(0, kSyn);
  f.In(10, kSynAck);
  ASSERT_EQ(f.In(kMin, kAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), kMin + kEstablished);
}

TYPED_TEST(MappingTableTest, TcpFinBothWaysIsTransitory) {
  TcpFixture<TypeParam> f;
  f.Out(0, kSyn);
  f.In(10, kSynAck);
  f.Out(20, kAck);
  // One FIN: half-closed, still established.
  ASSERT_EQ(f.Out(kMin, kFinAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), kMin + kEstablished);
  ASSERT_EQ(f.In(kMin + 100, kFinAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), kMin + 100 + kTransitory);
  ASSERT_EQ(f.Out(kMin + 200, kAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), kMin + 200 + kTransitory);
  EXPECT_EQ(f.h.Expire(kMin + 200 + kTransitory - 1), 0u);
  EXPECT_EQ(f.h.Expire(kMin + 200 + kTransitory), 1u);
  EXPECT_FALSE(f.Live());
}

TYPED_TEST(MappingTableTest, TcpRstIsTransitory) {
  for (bool inbound : {false, true}) {
    SCOPED_TRACE(inbound ? "rst in" : "rst out");
    TcpFixture<TypeParam> f;
    f.Out(0, kSyn);
    f.In(10, kSynAck);
    f.Out(20, kAck);
    ASSERT_EQ((inbound ? f.In(kMin, kRst) : f.Out(kMin, kRst)).drop, DropReason::kNone);
    EXPECT_NE(f.State() & kTcpStRst, 0);
    EXPECT_EQ(f.Expires(), kMin + kTransitory);
    // Nothing more: it ends after the transitory timeout.
    EXPECT_EQ(f.h.Expire(kMin + kTransitory), 1u);
  }
}

// A stray or spoofed RST the endpoints ignore (RFC 5961) must not doom an
// established connection to the transitory timeout: traffic after it makes
// the session established again (RFC 6146 §3.5.2.2, RFC 7857 §2).
TYPED_TEST(MappingTableTest, TcpTrafficAfterRstIsEstablishedAgain) {
  for (bool inbound : {false, true}) {
    SCOPED_TRACE(inbound ? "rst in" : "rst out");
    TcpFixture<TypeParam> f;
    f.Out(0, kSyn);
    f.In(10, kSynAck);
    f.Out(20, kAck);
    ASSERT_EQ((inbound ? f.In(kMin, kRst) : f.Out(kMin, kRst)).drop, DropReason::kNone);
    EXPECT_EQ(f.Expires(), kMin + kTransitory);
    f.In(kMin + 10, kAck);
    EXPECT_EQ(f.State() & kTcpStRst, 0);
    EXPECT_EQ(f.Expires(), kMin + 10 + kEstablished);
  }
  // Before the connection was established a RST stays final.
  TcpFixture<TypeParam> g;
  g.Out(0, kSyn);
  g.In(10, kRst);
  g.Out(20, kAck);
  EXPECT_NE(g.State() & kTcpStRst, 0);
  EXPECT_EQ(g.Expires(), 20 + kTransitory);
}

TYPED_TEST(MappingTableTest, TcpRstWithoutSessionCreatesNothing) {
  TcpFixture<TypeParam> f;
  EXPECT_EQ(f.Out(0, kRst).drop, DropReason::kTcpNoSession);
  EXPECT_EQ(f.h.table->session_count(), 0u);
  EXPECT_TRUE(f.h.sink.inserted.empty());
}

TYPED_TEST(MappingTableTest, TcpNewSynAfterCloseReopens) {
  for (bool by_rst : {false, true}) {
    SCOPED_TRACE(by_rst ? "closed by rst" : "closed by fin");
    TcpFixture<TypeParam> f;
    f.Out(0, kSyn);
    f.In(10, kSynAck);
    if (by_rst) {
      f.In(20, kRst);
    } else {
      f.Out(20, kFinAck);
      f.In(30, kFinAck);
    }
    EXPECT_EQ(f.Expires() - (by_rst ? 20 : 30), kTransitory);
    // Same 4-tuple, new connection: opening again (transitory) ...
    ASSERT_EQ(f.Out(kMin, kSyn).drop, DropReason::kNone);
    EXPECT_EQ(f.State(), kTcpStSynOut);
    EXPECT_EQ(f.Expires(), kMin + kTransitory);
    // ... then established.
    ASSERT_EQ(f.In(kMin + 10, kSynAck).drop, DropReason::kNone);
    EXPECT_NE(f.State() & kTcpStEstablished, 0);
    EXPECT_EQ(f.Expires(), kMin + 10 + kEstablished);
    EXPECT_EQ(f.h.table->session_count(), 1u);
  }
}

TYPED_TEST(MappingTableTest, TcpMidstreamPickupIsTransitoryUntilAnswered) {
  TcpFixture<TypeParam> f;
  ASSERT_EQ(f.Out(0, kAck).drop, DropReason::kNone);
  EXPECT_NE(f.State() & kTcpStMidstream, 0);
  EXPECT_EQ(f.State() & kTcpStEstablished, 0);
  EXPECT_EQ(f.Expires(), kTransitory);
  ASSERT_EQ(f.Out(kMin, kAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), kMin + kTransitory);
  ASSERT_EQ(f.In(2 * kMin, kAck).drop, DropReason::kNone);
  EXPECT_NE(f.State() & kTcpStEstablished, 0);
  EXPECT_EQ(f.Expires(), 2 * kMin + kEstablished);
  EXPECT_EQ(f.h.Expire(2 * kMin + kTransitory + kSec), 0u);
  EXPECT_TRUE(f.Live());
}

TYPED_TEST(MappingTableTest, TcpInboundSynOpensThroughEif) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoTcp, Preset("full-cone")));
  ASSERT_EQ(h.Out(Inside<A>(1), 5000, Remote<A>(1), 443, 0, kSyn).drop, DropReason::kNone);
  // Anyone may open a connection to the mapping, with a SYN only.
  EXPECT_EQ(h.In(5000, Remote<A>(7), 1234, 1, kAck).drop, DropReason::kTcpNoSession);
  EXPECT_EQ(h.In(5000, Remote<A>(7), 1234, 1, kFinAck).drop, DropReason::kTcpNoSession);
  EXPECT_EQ(h.In(5000, Remote<A>(7), 1234, 1, kRst).drop, DropReason::kTcpNoSession);
  auto syn = h.In(5000, Remote<A>(7), 1234, 2, kSyn);
  ASSERT_EQ(syn.drop, DropReason::kNone);
  EXPECT_EQ(h.S(syn).tcp_state, kTcpStSynIn);
  EXPECT_EQ(h.S(syn).expires_ms, 2 + kTransitory);
  auto synack = h.Out(Inside<A>(1), 5000, Remote<A>(7), 1234, 3, kSynAck);
  EXPECT_EQ(synack.session, syn.session);
  EXPECT_NE(h.S(synack).tcp_state & kTcpStEstablished, 0);
  EXPECT_EQ(h.S(synack).expires_ms, 3 + kEstablished);
}

// ---------------------------------------------------------------------------
// UDP and ICMP timers.

TYPED_TEST(MappingTableTest, UdpRefreshedByOutboundOnly) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("port-restricted-cone")));
  const A x = Inside<A>(1), y = Remote<A>(1);
  auto r = h.Out(x, 5000, y, 53, 0);
  ASSERT_EQ(r.drop, DropReason::kNone);
  EXPECT_EQ(h.S(r).expires_ms, kUdp);
  ASSERT_EQ(h.In(5000, y, 53, 4 * kMin).drop, DropReason::kNone);
  EXPECT_EQ(h.S(r).expires_ms, kUdp);  // inbound does not refresh
  EXPECT_EQ(h.Expire(kUdp - 1), 0u);
  EXPECT_EQ(h.Expire(kUdp), 1u);
  EXPECT_EQ(h.table->FindInside(x, 5000, y, 53), kNil);

  auto r2 = h.Out(x, 5000, y, 53, 10 * kMin);
  ASSERT_EQ(h.Out(x, 5000, y, 53, 12 * kMin).session, r2.session);
  EXPECT_EQ(h.S(r2).expires_ms, 12 * kMin + kUdp);
  EXPECT_EQ(h.Expire(10 * kMin + kUdp), 0u);
  EXPECT_EQ(h.Expire(12 * kMin + kUdp), 1u);
}

TYPED_TEST(MappingTableTest, UdpInboundRefreshWhenConfigured) {
  using A = TypeParam;
  TableConfig cfg = Cfg(kProtoUdp, Preset("port-restricted-cone"));
  cfg.inbound_refresh = true;
  Harness<A> h(cfg);
  const A x = Inside<A>(1), y = Remote<A>(1);
  auto r = h.Out(x, 5000, y, 53, 0);
  ASSERT_EQ(h.In(5000, y, 53, 4 * kMin).drop, DropReason::kNone);
  EXPECT_EQ(h.S(r).expires_ms, 4 * kMin + kUdp);
  EXPECT_EQ(h.Expire(kUdp), 0u);
  EXPECT_EQ(h.Expire(4 * kMin + kUdp), 1u);
}

TYPED_TEST(MappingTableTest, IcmpSixtySeconds) {
  using A = TypeParam;
  const uint8_t proto = A::kFamily == 4 ? kProtoIcmp : kProtoIcmp6;
  Harness<A> h(Cfg(proto, Preset("port-restricted-cone")));
  auto r = h.Out(Inside<A>(1), 0x1234, Remote<A>(1), 0, 0);
  ASSERT_EQ(r.drop, DropReason::kNone);
  EXPECT_EQ(h.Port(r), 0x1234);
  EXPECT_EQ(h.In(0x1234, Remote<A>(1), 0, 10 * kSec).session, r.session);
  EXPECT_EQ(h.Expire(kIcmp - 1), 0u);
  EXPECT_EQ(h.Expire(kIcmp), 1u);
  ASSERT_EQ(h.sink.removed.size(), 1u);
  EXPECT_EQ(h.sink.removed[0].first.proto, proto);
}

// ---------------------------------------------------------------------------
// Expiry.

TYPED_TEST(MappingTableTest, MappingLivesUntilItsLastSession) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("full-cone")));
  const A x = Inside<A>(1);
  auto s1 = h.Out(x, 5000, Remote<A>(1), 53, 0);
  auto s2 = h.Out(x, 5000, Remote<A>(2), 53, 10 * kSec);
  ASSERT_EQ(s1.drop, DropReason::kNone);
  ASSERT_EQ(s2.drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_count(), 1u);
  EXPECT_EQ(h.table->session_count(), 2u);
  EXPECT_EQ(h.table->mapping_of(s2.session).sessions, 2u);

  EXPECT_EQ(h.Expire(kUdp - 1), 0u);
  EXPECT_EQ(h.Expire(kUdp), 1u);  // the first session only
  EXPECT_EQ(h.table->session_count(), 1u);
  EXPECT_EQ(h.table->mapping_count(), 1u);
  EXPECT_TRUE(h.sink.removed.empty());
  EXPECT_EQ(h.table->FindInside(x, 5000, Remote<A>(1), 53), kNil);
  EXPECT_EQ(h.table->FindOutside(5000, Remote<A>(2), 53), s2.session);
  EXPECT_EQ(h.Expire(10 * kSec + kUdp - 1), 0u);
  EXPECT_TRUE(h.sink.removed.empty());
  EXPECT_EQ(h.Expire(10 * kSec + kUdp), 1u);
  EXPECT_EQ(h.table->session_count(), 0u);
  EXPECT_EQ(h.table->mapping_count(), 0u);
  ASSERT_EQ(h.sink.removed.size(), 1u);
  EXPECT_EQ(h.sink.removed[0].second, RemoveReason::kExpired);
  EXPECT_EQ(h.sink.removed[0].first.external_port, 5000);
  EXPECT_EQ(h.sink.removed[0].first.inside_port, 5000);
  EXPECT_EQ(h.counters.mappings_removed.value(), 1u);
  EXPECT_EQ(h.counters.sessions_removed.value(), 2u);
  // Port 5000 is free again.
  auto again = h.Out(Inside<A>(2), 5000, Remote<A>(3), 53, 11 * kMin);
  EXPECT_EQ(h.Port(again), 5000);
}

TYPED_TEST(MappingTableTest, ExpireRemovesExactlyWhatIsDue) {
  using A = TypeParam;
  Harness<A> h(Cfg(kProtoUdp, Preset("symmetric")));
  // 50 sessions created one second apart, some refreshed later.
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(h.Out(Inside<A>(1), 5000, Remote<A>(1 + i % 7), static_cast<uint16_t>(1000 + i), i * kSec).drop,
              DropReason::kNone);
  }
  for (int i = 0; i < 50; i += 5) {
    h.Out(Inside<A>(1), 5000, Remote<A>(1 + i % 7), static_cast<uint16_t>(1000 + i), 60 * kSec);
  }
  auto due = [&](int64_t now) {
    size_t n = 0;
    h.table->ForEachSession([&](const auto&, const auto& s) { n += s.expires_ms <= now; });
    return n;
  };
  size_t total = 0;
  for (int64_t now : {kUdp - 1, kUdp, kUdp + 500, kUdp + 20 * kSec, kUdp + 59 * kSec + 999, kUdp + 60 * kSec}) {
    const size_t want = due(now);
    const size_t live = h.table->session_count();
    EXPECT_EQ(h.Expire(now), want) << now;
    total += want;
    EXPECT_EQ(h.table->session_count(), live - want);
    EXPECT_EQ(due(now), 0u);
  }
  EXPECT_EQ(total, 50u);
  EXPECT_EQ(h.table->mapping_count(), 0u);
  EXPECT_EQ(h.sink.removed.size(), 50u);
}

// Expiry is lazy (a packet only moves expires_ms; expiry moves what it finds
// refreshed): whatever the order of refreshes, TCP class changes, shortened
// timeouts and expiry times, Expire(now) removes exactly the sessions with
// expires_ms <= now, no sooner and no later.
TYPED_TEST(MappingTableTest, LazyExpiryIsExact) {
  using A = TypeParam;
  for (uint8_t proto : {kProtoUdp, kProtoTcp}) {
    SCOPED_TRACE(int(proto));
    TableConfig cfg = Cfg(proto, Preset("port-restricted-cone"), 512);
    cfg.timeout_ms = 20 * kSec;
    cfg.established_timeout_ms = 90 * kSec;
    Harness<A> h(cfg);
    Rng rng(11);
    int64_t now = 0;
    size_t removed = 0;
    const uint8_t flags[] = {kSyn, kSynAck, kAck, kAck, kAck, kFinAck, kRst};
    for (int i = 0; i < 20000; ++i) {
      now += rng.Below(4) == 0 ? rng.Below(5000) : rng.Below(50);
      const A x = Inside<A>(1 + rng.Below(4));
      const uint16_t xp = static_cast<uint16_t>(5000 + rng.Below(16));
      const A y = Remote<A>(1 + rng.Below(4));
      const uint8_t f = proto == kProtoTcp ? flags[rng.Below(7)] : 0;
      if (rng.Below(4) == 0) {
        h.In(xp, y, 443, now, f);  // port-preserving: the external port is xp
      } else {
        h.Out(x, xp, y, 443, now, f);
      }
      if (rng.Below(500) == 0) {
        // A shorter or longer timeout, live; now and then back.
        TableConfig live = h.table->config();
        live.timeout_ms = (5 + rng.Below(30)) * kSec;
        live.established_timeout_ms = (10 + rng.Below(120)) * kSec;
        h.table->SetLive(live, now);
        h.CheckInvariants();
      }
      if (rng.Below(8) == 0) {
        const int64_t at = now + (rng.Below(3) == 0 ? 0 : rng.Below(2000));
        size_t due = 0;
        h.table->ForEachSession([&](const auto&, const auto& s) { due += s.expires_ms <= at; });
        ASSERT_EQ(h.Expire(at), due) << "step " << i << " at " << at;
        removed += due;
        h.table->ForEachSession([&](const auto&, const auto& s) { ASSERT_GT(s.expires_ms, at) << "step " << i; });
        now = at;
      }
    }
    EXPECT_GT(removed, 1000u) << "the run expires sessions";
    now += 200 * kSec;
    h.Expire(now);
    EXPECT_EQ(h.table->session_count(), 0u);
  }
}

// Live settings (natd's SIGHUP, MappingTable::SetLive).

TYPED_TEST(MappingTableTest, LiveShorterTimeoutCapsExistingSessions) {
  using A = TypeParam;
  TableConfig cfg = Cfg(kProtoUdp, Preset("symmetric"));
  Harness<A> h(cfg);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(h.Out(Inside<A>(1), 5000, Remote<A>(1), uint16_t(1000 + i), i * 10 * kSec).drop, DropReason::kNone);
  }
  cfg.timeout_ms = 2 * kMin;
  h.table->SetLive(cfg, 30 * kSec);
  h.CheckInvariants();
  EXPECT_EQ(h.table->session_count(), 3u) << "no session is lost";
  h.table->ForEachSession([&](const auto&, const auto& s) { EXPECT_EQ(s.expires_ms, 30 * kSec + 2 * kMin); });
  auto fresh = h.Out(Inside<A>(1), 5000, Remote<A>(2), 53, 40 * kSec);
  EXPECT_EQ(h.S(fresh).expires_ms, 40 * kSec + 2 * kMin) << "new sessions get the new timeout";
  EXPECT_EQ(h.Expire(30 * kSec + 2 * kMin - 1), 0u);
  EXPECT_EQ(h.Expire(30 * kSec + 2 * kMin), 3u);
  EXPECT_EQ(h.Expire(40 * kSec + 2 * kMin), 1u);
}

TYPED_TEST(MappingTableTest, LiveLongerTimeoutAppliesFromTheNextRefresh) {
  using A = TypeParam;
  TableConfig cfg = Cfg(kProtoUdp, Preset("port-restricted-cone"));
  Harness<A> h(cfg);
  auto r = h.Out(Inside<A>(1), 5000, Remote<A>(1), 53, 0);
  cfg.timeout_ms = 10 * kMin;
  cfg.inbound_refresh = true;
  h.table->SetLive(cfg, kMin);
  EXPECT_EQ(h.S(r).expires_ms, kUdp) << "an existing session keeps its expiry";
  ASSERT_EQ(h.In(5000, Remote<A>(1), 53, 2 * kMin).drop, DropReason::kNone);
  EXPECT_EQ(h.S(r).expires_ms, 12 * kMin) << "refreshed inbound too, with the new timeout";
  EXPECT_EQ(h.Expire(12 * kMin - 1), 0u);
  EXPECT_EQ(h.Expire(12 * kMin), 1u);
}

TYPED_TEST(MappingTableTest, LiveTcpTimeoutsPerClass) {
  TcpFixture<TypeParam> f;
  ASSERT_EQ(f.Out(0, kSyn).drop, DropReason::kNone);
  ASSERT_EQ(f.In(500, kSynAck).drop, DropReason::kNone);
  ASSERT_EQ(f.Out(1000, kAck).drop, DropReason::kNone);
  auto opening = f.h.Out(Inside<TypeParam>(2), 6000, Remote<TypeParam>(1), 443, 1000, kSyn);
  TableConfig cfg = f.h.table->config();
  cfg.established_timeout_ms = 10 * kMin;
  f.h.table->SetLive(cfg, 2000);
  EXPECT_EQ(f.Expires(), 2000 + 10 * kMin) << "established: capped by the shorter established timeout";
  EXPECT_EQ(f.h.S(opening).expires_ms, 1000 + kTransitory) << "transitory: unchanged";
  ASSERT_EQ(f.Out(3000, kAck).drop, DropReason::kNone);
  EXPECT_EQ(f.Expires(), 3000 + 10 * kMin);
  EXPECT_EQ(f.h.Expire(1000 + kTransitory), 1u);
  EXPECT_EQ(f.h.Expire(3000 + 10 * kMin), 1u);
}

TYPED_TEST(MappingTableTest, LiveHostQuotaCountsExistingSessions) {
  using A = TypeParam;
  TableConfig cfg = Cfg(kProtoUdp, Preset("port-restricted-cone"));
  Harness<A> h(cfg);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(h.Out(Inside<A>(1), uint16_t(7000 + i), Remote<A>(1), 53, 0).drop, DropReason::kNone);
  }
  cfg.host_quota = 2;
  h.table->SetLive(cfg, kSec);
  EXPECT_EQ(h.table->session_count(), 3u) << "a host over a lowered quota keeps its sessions";
  EXPECT_EQ(h.Out(Inside<A>(1), 7003, Remote<A>(1), 53, kSec).drop, DropReason::kHostQuota);
  EXPECT_EQ(h.Out(Inside<A>(1), 7000, Remote<A>(1), 53, kSec).drop, DropReason::kNone) << "existing sessions work";
  EXPECT_EQ(h.Out(Inside<A>(2), 7000, Remote<A>(1), 53, kSec).drop, DropReason::kNone) << "another host";
  cfg.host_quota = 0;
  h.table->SetLive(cfg, 2 * kSec);
  EXPECT_EQ(h.Out(Inside<A>(1), 7003, Remote<A>(1), 53, 2 * kSec).drop, DropReason::kNone) << "no limit";
  cfg.host_quota = 5;
  h.table->SetLive(cfg, 3 * kSec);
  EXPECT_EQ(h.Out(Inside<A>(1), 7004, Remote<A>(1), 53, 3 * kSec).drop, DropReason::kNone) << "the 5th";
  EXPECT_EQ(h.Out(Inside<A>(1), 7005, Remote<A>(1), 53, 3 * kSec).drop, DropReason::kHostQuota) << "counted again";
  h.Expire(3 * kSec + kUdp);
  EXPECT_EQ(h.table->session_count(), 0u);
  EXPECT_EQ(h.Out(Inside<A>(1), 7005, Remote<A>(1), 53, 4 * kSec + kUdp).drop, DropReason::kNone)
      << "expiry gives the quota back";
}

TYPED_TEST(MappingTableTest, ChurnKeepsCountersBalanced) {
  using A = TypeParam;
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    Harness<A> h(Cfg(kProtoUdp, b, 200), "20000-20099");
    Rng rng(7);
    int64_t now = 0;
    for (int i = 0; i < 3000; ++i) {
      now += rng.Below(200);
      const A x = Inside<A>(1 + rng.Below(8));
      const A y = Remote<A>(1 + rng.Below(4));
      const uint16_t xp = static_cast<uint16_t>(20000 + rng.Below(120));
      const uint16_t yp = static_cast<uint16_t>(50 + rng.Below(3));
      if (rng.Below(3) == 0) {
        h.In(static_cast<uint16_t>(20000 + rng.Below(100)), y, yp, now);
      } else {
        auto r = h.Out(x, xp, y, yp, now);
        if (r.drop == DropReason::kNone) {
          EXPECT_EQ(h.table->mapping_of(r.session).inside, x);
          EXPECT_EQ(h.table->mapping_of(r.session).inside_port, xp);
        } else {
          EXPECT_TRUE(r.drop == DropReason::kNoPort || r.drop == DropReason::kTableFull) << DropReasonName(r.drop);
        }
      }
      if (i % 100 == 0) h.Expire(now);
      if (::testing::Test::HasFailure()) return;
    }
    h.table->Flush();
    h.CheckInvariants();
    EXPECT_EQ(h.counters.mappings_inserted.value(), h.counters.mappings_removed.value());
    EXPECT_EQ(h.counters.sessions_inserted.value(), h.counters.sessions_removed.value());
  }
}

// ---------------------------------------------------------------------------
// Explicit mappings (PCP MAP / NAT-PMP)

TableConfig ExplicitCfg(uint8_t proto, const char* preset, uint32_t capacity = 8, uint32_t per_host = 0) {
  TableConfig c = Cfg(proto, Preset(preset));
  c.explicit_capacity = capacity;
  c.explicit_per_host = per_host;
  return c;
}

TYPED_TEST(MappingTableTest, ExplicitMappingLetsAnyoneInForItsLifetime) {
  using A = TypeParam;
  using Code = typename MappingTable<A>::ExplicitCode;
  Harness<A> h(ExplicitCfg(kProtoTcp, "port-restricted-cone"));
  auto r = h.table->MapExplicit(Inside<A>(1), 8080, 0, false, 100 * kSec, 0);
  ASSERT_EQ(r.code, Code::kOk);
  EXPECT_EQ(r.external_port, 8080) << "the inside port, free";
  EXPECT_EQ(h.table->mapping_count(), 1u);
  h.CheckInvariants();
  // Anyone may open a connection to it (no filtering), only with a SYN.
  EXPECT_EQ(h.In(8080, Remote<A>(5), 1234, kSec, kAck).drop, DropReason::kTcpNoSession);
  auto in = h.In(8080, Remote<A>(5), 1234, kSec, kSyn);
  ASSERT_EQ(in.drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_of(in.session).inside, Inside<A>(1));
  ASSERT_EQ(h.In(8080, Remote<A>(6), 999, 2 * kSec, kSyn).drop, DropReason::kNone);
  // Refreshed: the same port, a new lifetime.
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(1), 8080, 0, false, 200 * kSec, 50 * kSec).external_port, 8080);
  EXPECT_EQ(h.Expire(150 * kSec), 0u);
  EXPECT_EQ(h.table->explicit_count(), 1u);
  // Its lifetime over: no newcomer gets in; the sessions it has keep it.
  h.Expire(200 * kSec);
  EXPECT_EQ(h.table->explicit_count(), 0u);
  EXPECT_TRUE(Denied(h.In(8080, Remote<A>(7), 1, 201 * kSec, kSyn).drop));
  EXPECT_EQ(h.table->mapping_count(), 1u);
  h.Expire(201 * kSec + kTransitory);
  EXPECT_EQ(h.table->mapping_count(), 0u);
  EXPECT_EQ(h.sink.inserted.size(), h.sink.removed.size());
}

TYPED_TEST(MappingTableTest, ExplicitMappingServesEveryDestinationEvenUnderSymmetric) {
  using A = TypeParam;
  Harness<A> h(ExplicitCfg(kProtoUdp, "symmetric"));
  const uint16_t port = h.table->MapExplicit(Inside<A>(1), 5000, 0, false, kUdp * 10, 0).external_port;
  ASSERT_NE(port, 0);
  for (int r = 1; r <= 3; ++r) {
    auto out = h.Out(Inside<A>(1), 5000, Remote<A>(r), 80, kSec);
    ASSERT_EQ(out.drop, DropReason::kNone);
    EXPECT_EQ(h.Port(out), port) << "remote " << r;
  }
  // Another endpoint of the host is symmetric as ever.
  auto a = h.Out(Inside<A>(1), 5001, Remote<A>(1), 80, kSec);
  auto b = h.Out(Inside<A>(1), 5001, Remote<A>(2), 80, kSec);
  EXPECT_NE(h.Port(a), h.Port(b));
}

TYPED_TEST(MappingTableTest, ExplicitMappingPinsTheEndpointsDynamicOne) {
  using A = TypeParam;
  Harness<A> h(ExplicitCfg(kProtoUdp, "port-restricted-cone"));
  auto out = h.Out(Inside<A>(1), 6000, Remote<A>(1), 53, 0);
  ASSERT_EQ(out.drop, DropReason::kNone);
  const uint16_t dynamic = h.Port(out);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(1), 6000, 7777, false, 10 * kUdp, kSec).external_port, dynamic)
      << "the port the host already uses";
  EXPECT_EQ(h.table->mapping_count(), 1u);
  h.Expire(2 * kUdp);  // its session ends; the mapping stays, pinned
  EXPECT_EQ(h.table->session_count(), 0u);
  EXPECT_EQ(h.table->mapping_count(), 1u);
  EXPECT_EQ(h.In(dynamic, Remote<A>(9), 1, 2 * kUdp, 0).drop, DropReason::kNone) << "open to anyone now";
  // Deleted: the mapping lives on only for its sessions.
  EXPECT_EQ(h.table->UnmapExplicit(Inside<A>(1), 6000), 1u);
  h.Expire(4 * kUdp);
  EXPECT_EQ(h.table->mapping_count(), 0u);
}

TYPED_TEST(MappingTableTest, ExplicitAndDynamicPortsNeverClash) {
  using A = TypeParam;
  using Code = typename MappingTable<A>::ExplicitCode;
  for (const char* preset : {"full-cone", "quasi-symmetric", "quasi-restricted-cone"}) {
    SCOPED_TRACE(preset);
    Harness<A> h(ExplicitCfg(kProtoUdp, preset), "5000-5009");
    // A dynamic mapping holds a port; an explicit one may not take it...
    auto dyn = h.Out(Inside<A>(1), 5000, Remote<A>(1), 53, 0);
    const uint16_t held = h.Port(dyn);
    auto e = h.table->MapExplicit(Inside<A>(2), held, held, false, kUdp, 0);
    ASSERT_EQ(e.code, Code::kOk);
    EXPECT_NE(e.external_port, held);
    EXPECT_EQ(h.table->MapExplicit(Inside<A>(3), 5003, held, true, kUdp, 0).code, Code::kNoPort)
        << "PREFER_FAILURE: the suggested port or nothing";
    // ...and no dynamic mapping takes the explicit one's, towards any remote.
    for (int host = 4; host < 64; ++host) {
      auto d = h.Out(Inside<A>(host), e.external_port, Remote<A>(host), 53, 0);
      if (d.drop == DropReason::kNone) {
        EXPECT_NE(h.Port(d), e.external_port) << "host " << host;
      }
    }
  }
}

TYPED_TEST(MappingTableTest, ExplicitMappingsAreBounded) {
  using A = TypeParam;
  using Code = typename MappingTable<A>::ExplicitCode;
  Harness<A> h(ExplicitCfg(kProtoTcp, "full-cone", 3, 2));
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(1), 1, 0, false, kMin, 0).code, Code::kOk);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(1), 2, 0, false, kMin, 0).code, Code::kOk);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(1), 3, 0, false, kMin, 0).code, Code::kQuota);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(2), 3, 0, false, kMin, 0).code, Code::kOk);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(3), 3, 0, false, kMin, 0).code, Code::kTableFull);
  EXPECT_EQ(h.table->UnmapExplicit(Inside<A>(1), 0), 2u) << "every one of the host's";
  EXPECT_EQ(h.table->explicit_count(), 1u);
  h.table->Flush();
  EXPECT_EQ(h.table->explicit_count(), 0u);
  EXPECT_EQ(h.table->mapping_count(), 0u);
  Harness<A> none(Cfg(kProtoTcp, Preset("full-cone")));
  EXPECT_EQ(none.table->MapExplicit(Inside<A>(1), 1, 0, false, kMin, 0).code, Code::kTableFull) << "PCP off";
}

// Exclusive ports: a table has no more mapping slots than ports (each
// mapping holds its port alone). Many more sessions than ports share them;
// a mapping slot freed by expiry is used again; explicit mappings find no
// port (not a full table) once dynamic ones hold every port; Save / Restore
// round-trips such a table.
TYPED_TEST(MappingTableTest, ExclusivePortsBoundTheMappingsNotTheSessions) {
  using A = TypeParam;
  using Code = typename MappingTable<A>::ExplicitCode;
  TableConfig cfg = ExplicitCfg(kProtoUdp, "full-cone");
  cfg.capacity = 1000;
  Harness<A> h(cfg, "5000-5003");
  for (int host = 1; host <= 4; ++host) {
    for (int r = 1; r <= 100; ++r) {
      auto res = h.Out(Inside<A>(host), 6000, Remote<A>(r), static_cast<uint16_t>(r), host);
      ASSERT_EQ(res.drop, DropReason::kNone) << host << " " << r;
    }
  }
  EXPECT_EQ(h.table->session_count(), 400u);
  EXPECT_EQ(h.table->mapping_count(), 4u);
  EXPECT_EQ(h.Out(Inside<A>(5), 6000, Remote<A>(1), 1, 10).drop, DropReason::kNoPort);
  EXPECT_EQ(h.table->MapExplicit(Inside<A>(5), 7000, 0, false, kUdp, 10).code, Code::kNoPort);
  // Inbound on every port finds its sessions.
  for (int host = 1; host <= 4; ++host) {
    auto out = h.Out(Inside<A>(host), 6000, Remote<A>(7), 7, 20);
    auto in = h.In(h.Port(out), Remote<A>(7), 7, 20);
    ASSERT_EQ(in.drop, DropReason::kNone);
    EXPECT_EQ(in.session, out.session);
  }
  const auto saved = h.table->Save(30);
  Harness<A> again(cfg, "5000-5003");
  auto restored = again.table->Restore(saved, 0);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 400u);
  EXPECT_EQ(again.table->mapping_count(), 4u);
  for (int host = 1; host <= 4; ++host) {
    EXPECT_NE(again.table->FindInside(Inside<A>(host), 6000, Remote<A>(100), 100), kNil) << host;
  }
  // Host 1's sessions expire (the others are refreshed): its slot serves a new endpoint.
  for (int host = 2; host <= 4; ++host) {
    for (int r = 1; r <= 100; ++r) h.Out(Inside<A>(host), 6000, Remote<A>(r), static_cast<uint16_t>(r), kUdp / 2);
  }
  EXPECT_EQ(h.Expire(kUdp + 100), 100u);
  EXPECT_EQ(h.table->mapping_count(), 3u);
  EXPECT_EQ(h.Out(Inside<A>(5), 6000, Remote<A>(1), 1, kUdp + 200).drop, DropReason::kNone);
  EXPECT_EQ(h.table->mapping_count(), 4u);
}

}  // namespace
}  // namespace natd
