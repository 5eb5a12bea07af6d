// Engine: config validation, and the steering function: both directions of a
// session (and ICMP errors about it) meet in the one shard that holds it.
#include "nat/engine.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nat/addr.h"
#include "nat/config.h"
#include "nat/events.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/rng.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using ::testing::HasSubstr;
using testing::Build;
using testing::BuildIcmpError;
using testing::Bytes;
using testing::Hex;
using testing::OracleChecksumsValid;
using testing::PacketSpec;

const char kGlobal4[] = "198.51.100.1";
const char kGlobal6[] = "2001:db8:ffff::1";

Ip4 V4(const std::string& s) {
  Ip4 a;
  EXPECT_TRUE(ParseIp4(s, &a)) << s;
  return a;
}
Ip6 V6(const std::string& s) {
  Ip6 a;
  EXPECT_TRUE(ParseIp6(s, &a)) << s;
  return a;
}

EngineConfig BaseConfig() {
  EngineConfig c;
  c.global4 = V4(kGlobal4);
  c.global6 = V6(kGlobal6);
  c.max_sessions = 4096;
  c.seed = 1234;
  return c;
}

std::string CreateError(const EngineConfig& c) {
  NullEventSink sink;
  auto e = Engine::Create(c, &sink);
  if (e.ok()) return "<ok>";
  return std::string(e.status().message());
}

TEST(EngineCreate, AcceptsDefaults) {
  NullEventSink sink;
  auto e = Engine::Create(BaseConfig(), &sink);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->shards(), 1u);
  EngineConfig only4 = BaseConfig();
  only4.global6.reset();
  EXPECT_EQ(CreateError(only4), "<ok>");
  EngineConfig only6 = BaseConfig();
  only6.global4.reset();
  EXPECT_EQ(CreateError(only6), "<ok>");
}

TEST(EngineCreate, RejectsBadConfigsNamingTheSetting) {
  {
    EngineConfig c = BaseConfig();
    c.global4.reset();
    c.global6.reset();
    EXPECT_THAT(CreateError(c), HasSubstr("no global address"));
  }
  {
    EngineConfig c = BaseConfig();
    c.timeouts.udp_ms = kMinUdpTimeoutMs - 1;
    EXPECT_THAT(CreateError(c), HasSubstr("UDP timeout"));
    EXPECT_THAT(CreateError(c), HasSubstr("under 2 min"));
    c.timeouts.udp_ms = kMinUdpTimeoutMs;
    EXPECT_EQ(CreateError(c), "<ok>");
  }
  {
    EngineConfig c = BaseConfig();
    c.ports = *PortSet::Parse("5000-5003");
    c.shards = 5;
    EXPECT_THAT(CreateError(c), HasSubstr("has 4 ports, fewer than the 5 shards"));
    c.shards = 4;
    EXPECT_EQ(CreateError(c), "<ok>");
  }
  {
    EngineConfig c = BaseConfig();
    c.shards = 0;
    EXPECT_THAT(CreateError(c), HasSubstr("shards must be 1..254, got 0"));
    c.shards = 255;
    EXPECT_THAT(CreateError(c), HasSubstr("shards must be 1..254, got 255"));
  }
  {
    EngineConfig c = BaseConfig();
    c.shards = 8;
    c.max_sessions = 7;
    EXPECT_THAT(CreateError(c), HasSubstr("max sessions 7"));
    c.max_sessions = (1u << 28) + 1;
    EXPECT_THAT(CreateError(c), HasSubstr("max sessions"));
  }
  {
    EngineConfig c = BaseConfig();
    c.port_probes = 0;
    EXPECT_THAT(CreateError(c), HasSubstr("port probes"));
  }
  {
    EngineConfig c = BaseConfig();
    c.timeouts.icmp_ms = 0;
    EXPECT_THAT(CreateError(c), HasSubstr("timeouts must be positive"));
    c = BaseConfig();
    c.timeouts.tcp_established_ms = -1;
    EXPECT_THAT(CreateError(c), HasSubstr("timeouts must be positive"));
  }
  {
    EngineConfig c = BaseConfig();
    c.timeouts.tcp_transitory_ms = c.timeouts.tcp_established_ms + 1;
    EXPECT_THAT(CreateError(c), HasSubstr("TCP transitory timeout"));
  }
}

// ---------------------------------------------------------------------------
// Steering.

struct Flow {
  int family;
  uint8_t proto;  // 6, 17, 1 (v4 echo) or 58 (v6 echo)
  std::string inside, remote;
  uint16_t inside_port, remote_port;
};

bool IsEcho(const Flow& f) { return f.proto == kProtoIcmp || f.proto == kProtoIcmp6; }
size_t L4Off(int family) { return family == 4 ? 20 : 40; }
std::string Global(int family) { return family == 4 ? kGlobal4 : kGlobal6; }

PacketSpec Spec(int family, uint8_t proto, const std::string& src, const std::string& dst, uint16_t sport,
                uint16_t dport, bool reply) {
  PacketSpec sp;
  sp.family = family;
  sp.proto = proto;
  sp.src = src;
  sp.dst = dst;
  sp.sport = sport;
  sp.dport = dport;
  sp.tcp_flags = reply ? (kTcpSyn | kTcpAck) : kTcpSyn;
  if (proto == kProtoIcmp) sp.icmp_type = reply ? 0 : 8;
  if (proto == kProtoIcmp6) sp.icmp_type = reply ? 129 : 128;
  sp.payload = {'n', 'a', 't', 'd', 0x5a, 0xa5, 7};  // odd length on purpose
  return sp;
}

Bytes Outbound(const Flow& f) {
  return Build(Spec(f.family, f.proto, f.inside, f.remote, f.inside_port, IsEcho(f) ? f.inside_port : f.remote_port,
                    false));
}
Bytes TranslatedOutbound(const Flow& f, uint16_t ext) {
  return Build(Spec(f.family, f.proto, Global(f.family), f.remote, ext, IsEcho(f) ? ext : f.remote_port, false));
}
Bytes Reply(const Flow& f, uint16_t ext) {
  return Build(Spec(f.family, f.proto, f.remote, Global(f.family), IsEcho(f) ? ext : f.remote_port, ext, true));
}
Bytes TranslatedReply(const Flow& f) {
  return Build(Spec(f.family, f.proto, f.remote, f.inside, IsEcho(f) ? f.inside_port : f.remote_port, f.inside_port,
                    true));
}
uint16_t SrcPortOf(const Bytes& p, uint8_t proto) {
  const size_t l4 = L4Off(p[0] >> 4);
  return testing::Be16(p, l4 + ((proto == kProtoIcmp || proto == kProtoIcmp6) ? 4 : 0));
}

std::string RandomV4(Rng& rng, const char* prefix) {
  return std::string(prefix) + std::to_string(rng.Below(256)) + "." + std::to_string(1 + rng.Below(254));
}
std::string RandomV6(Rng& rng, const char* prefix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%x:%x", prefix, rng.Below(0x10000), 1 + rng.Below(0xfffe));
  return buf;
}

// A random inside port: from the port set or from outside it.
uint16_t RandomInsidePort(Rng& rng, const PortSet& set, bool in_set) {
  if (in_set) return set.ports()[rng.Below(static_cast<uint32_t>(set.ports().size()))];
  std::vector<bool> member(65536, false);
  for (uint16_t p : set.ports()) member[p] = true;
  for (;;) {
    uint16_t p = static_cast<uint16_t>(1 + rng.Below(65535));
    if (!member[p]) return p;
  }
}

Flow RandomFlow(Rng& rng, const PortSet& set) {
  Flow f;
  f.family = rng.Below(2) ? 4 : 6;
  const uint32_t kind = rng.Below(3);
  f.proto = kind == 0 ? kProtoTcp : kind == 1 ? kProtoUdp : (f.family == 4 ? kProtoIcmp : kProtoIcmp6);
  f.inside = f.family == 4 ? RandomV4(rng, "10.1.") : RandomV6(rng, "fd00::");
  f.remote = f.family == 4 ? RandomV4(rng, "203.0.") : RandomV6(rng, "2001:db8:1::");
  f.inside_port = RandomInsidePort(rng, set, rng.Below(2) == 0);
  f.remote_port = static_cast<uint16_t>(1 + rng.Below(65535));
  return f;
}

std::string Describe(const Flow& f) {
  return "v" + std::to_string(f.family) + " proto " + std::to_string(f.proto) + " " + f.inside + ":" +
         std::to_string(f.inside_port) + " -> " + f.remote + ":" + std::to_string(f.remote_port);
}

// One flow through the engine: out, reply back, ICMP error about it back.
// Returns the shard that holds it and the external port.
void RunFlow(Engine& engine, const Flow& f, int64_t now, uint32_t* shard_out, uint16_t* ext_out) {
  SCOPED_TRACE(Describe(f));
  Bytes out = Outbound(f);
  const uint32_t shard = engine.ShardOf(out.data(), out.size());
  ASSERT_LT(shard, engine.shards());
  const Verdict v = engine.shard(shard).ProcessOne(out.data(), static_cast<uint32_t>(out.size()), now);
  ASSERT_EQ(v.action, Action::kForward) << DropReasonName(v.reason);
  const uint16_t ext = SrcPortOf(out, f.proto);
  EXPECT_EQ(engine.plan().OwnerOf(ext), shard) << "external port " << ext << " is not in the steering shard's slice";
  EXPECT_EQ(Hex(out), Hex(TranslatedOutbound(f, ext)));
  EXPECT_TRUE(OracleChecksumsValid(out));
  *shard_out = shard;
  *ext_out = ext;

  // The reply, to the global address and external port.
  Bytes reply = Reply(f, ext);
  EXPECT_EQ(engine.ShardOf(reply.data(), reply.size()), shard);
  const Verdict rv = engine.shard(shard).ProcessOne(reply.data(), static_cast<uint32_t>(reply.size()), now + 1);
  ASSERT_EQ(rv.action, Action::kForward) << DropReasonName(rv.reason);
  EXPECT_EQ(Hex(reply), Hex(TranslatedReply(f)));
  EXPECT_TRUE(OracleChecksumsValid(reply));

  // An ICMP error from a router on the path, quoting the packet as it left
  // (whole, or the IPv4 minimum of header + 8 bytes).
  const std::string router = f.family == 4 ? "192.0.2.77" : "2001:db8:2::77";
  const uint8_t type = f.family == 4 ? 3 : 1;  // destination unreachable
  for (size_t quote_len : {size_t{0}, L4Off(f.family) + 8}) {
    SCOPED_TRACE("quote " + std::to_string(quote_len));
    const Bytes sent = TranslatedOutbound(f, ext);
    Bytes err = BuildIcmpError(f.family, router, Global(f.family), type, 1, sent, quote_len);
    EXPECT_EQ(engine.ShardOf(err.data(), err.size()), shard);
    const Verdict ev = engine.shard(shard).ProcessOne(err.data(), static_cast<uint32_t>(err.size()), now + 2);
    ASSERT_EQ(ev.action, Action::kForward) << DropReasonName(ev.reason);
    const Bytes want = BuildIcmpError(f.family, router, f.inside, type, 1, Outbound(f), quote_len);
    EXPECT_EQ(Hex(err), Hex(want));
    EXPECT_TRUE(OracleChecksumsValid(err));
  }
}

struct SteeringCase {
  uint32_t shards;
  const char* ports;
  int flows;
};

TEST(EngineSteering, BothDirectionsMeetInOneShard) {
  const SteeringCase cases[] = {
      {4, "20000-29999", 150}, {7, "20000-29999", 150}, {4, "v6plus:0x12", 60}, {7, "ocn-vc:5", 100}};
  for (const SteeringCase& c : cases) {
    for (const Behavior& b : AllPresets()) {
      SCOPED_TRACE(std::to_string(c.shards) + " shards, " + c.ports + ", " + std::string(b.name));
      EngineConfig cfg = BaseConfig();
      cfg.shards = c.shards;
      cfg.ports = *PortSet::Parse(c.ports);
      cfg.tcp = cfg.udp = cfg.icmp = b;
      NullEventSink sink;
      auto engine = Engine::Create(cfg, &sink);
      ASSERT_TRUE(engine.ok()) << engine.status();
      Engine& e = **engine;
      Rng rng(c.shards * 1000 + b.name.size());
      std::vector<uint32_t> used_shards(c.shards, 0);
      std::map<uint16_t, uint32_t> port_shard;
      for (int i = 0; i < c.flows; ++i) {
        const Flow f = RandomFlow(rng, cfg.ports);
        uint32_t shard = 0;
        uint16_t ext = 0;
        RunFlow(e, f, 1000 + i, &shard, &ext);
        if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) return;
        ++used_shards[shard];
        auto [it, inserted] = port_shard.emplace(ext, shard);
        EXPECT_EQ(it->second, shard) << "port " << ext << " given by shards " << it->second << " and " << shard;
      }
      for (uint32_t s = 0; s < c.shards; ++s) EXPECT_GT(used_shards[s], 0u) << "shard " << s << " never used";
      // No two shards hold the same external port, in any table.
      std::map<uint16_t, uint32_t> holder;
      for (uint32_t s = 0; s < e.shards(); ++s) {
        auto visit = [&](const auto& m, const auto&) {
          auto [it, inserted] = holder.emplace(m.external_port, s);
          EXPECT_EQ(it->second, s) << "port " << m.external_port;
          EXPECT_EQ(e.plan().OwnerOf(m.external_port), s);
        };
        for (auto* t : {&e.shard(s).v4()->tcp, &e.shard(s).v4()->udp, &e.shard(s).v4()->icmp}) t->ForEachSession(visit);
        for (auto* t : {&e.shard(s).v6()->tcp, &e.shard(s).v6()->udp, &e.shard(s).v6()->icmp}) t->ForEachSession(visit);
      }
      EXPECT_GT(holder.size(), 0u);
      uint64_t out = 0, in = 0, errors = 0;
      for (uint32_t s = 0; s < e.shards(); ++s) {
        out += e.shard(s).counters().packets_out.value();
        in += e.shard(s).counters().packets_in.value();
        errors += e.shard(s).counters().icmp_errors_in.value();
      }
      EXPECT_EQ(out, static_cast<uint64_t>(c.flows));
      EXPECT_EQ(in, 3u * c.flows);
      EXPECT_EQ(errors, 2u * c.flows);
    }
  }
}

// The same inside endpoint always lands in one shard, whoever it talks to,
// so an endpoint-independent mapping is found again.
TEST(EngineSteering, InsideEndpointIsStable) {
  for (uint32_t shards : {4u, 7u}) {
    EngineConfig cfg = BaseConfig();
    cfg.shards = shards;
    cfg.ports = *PortSet::Parse("20000-29999");
    cfg.udp = *PresetByName("full-cone");
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok());
    Engine& e = **engine;
    for (uint16_t inside_port : {uint16_t{25000}, uint16_t{40000}}) {
      uint32_t shard0 = 0;
      uint16_t ext0 = 0;
      for (int i = 0; i < 10; ++i) {
        Flow f{4, kProtoUdp, "10.9.9.9", "203.0.113." + std::to_string(i + 1), inside_port, uint16_t(1000 + i)};
        uint32_t shard = 0;
        uint16_t ext = 0;
        RunFlow(e, f, i, &shard, &ext);
        if (i == 0) {
          shard0 = shard;
          ext0 = ext;
          if (inside_port == 25000) {
            EXPECT_EQ(ext, 25000) << "preserved";
            EXPECT_EQ(shard, e.plan().OwnerOf(25000));
          }
        }
        EXPECT_EQ(shard, shard0);
        EXPECT_EQ(ext, ext0) << "EIM: one external port for all remote ends";
      }
    }
  }
}

// An inside host's ICMP error about a packet natd delivered to it steers to
// the shard of the endpoint it quotes, and leaves translated from there.
TEST(EngineSteering, OutboundIcmpErrorMeetsItsSession) {
  for (uint32_t shards : {4u, 7u}) {
    EngineConfig cfg = BaseConfig();
    cfg.shards = shards;
    cfg.ports = *PortSet::Parse("20000-29999");
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok());
    Engine& e = **engine;
    for (int family : {4, 6}) {
      for (uint16_t inside_port : {uint16_t{21000}, uint16_t{40000}, uint16_t{5353}}) {
        const std::string inside = family == 4 ? "10.9.9.9" : "fd00:9::9";
        const std::string remote = family == 4 ? "203.0.113.9" : "2001:db8:99::9";
        Bytes out = testing::Build(testing::MakeSpec(family, inside, remote, kProtoUdp, inside_port, 53));
        const uint32_t shard = e.ShardOf(out.data(), out.size());
        ASSERT_EQ(e.shard(shard).ProcessOne(out.data(), uint32_t(out.size()), 0).action, Action::kForward);
        const uint16_t ext = testing::Be16(out, family == 4 ? 20 : 40);
        Bytes received = testing::Build(testing::MakeSpec(family, remote, inside, kProtoUdp, 53, inside_port));
        Bytes err = testing::BuildIcmpError(family, inside, remote, family == 4 ? 3 : 1, family == 4 ? 3 : 4, received);
        EXPECT_EQ(e.ShardOf(err.data(), err.size()), shard) << "port " << inside_port;
        ASSERT_EQ(e.shard(shard).ProcessOne(err.data(), uint32_t(err.size()), 0).action, Action::kForward);
        const std::string global = family == 4 ? kGlobal4 : kGlobal6;
        Bytes as_sent = testing::Build(testing::MakeSpec(family, remote, global, kProtoUdp, 53, ext));
        EXPECT_EQ(testing::Hex(err), testing::Hex(testing::BuildIcmpError(family, global, remote, family == 4 ? 3 : 1,
                                                                          family == 4 ? 3 : 4, as_sent)));
      }
    }
  }
}

TEST(EngineSteering, SlicesAreDisjoint) {
  for (uint32_t shards : {4u, 7u}) {
    EngineConfig cfg = BaseConfig();
    cfg.shards = shards;
    cfg.ports = *PortSet::Parse("v6plus:0x12");
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok());
    const PortPlan& plan = (*engine)->plan();
    std::vector<int> owner(65536, -1);
    size_t total = 0;
    for (uint32_t s = 0; s < shards; ++s) {
      for (uint16_t p : plan.Slice(s)) {
        EXPECT_EQ(owner[p], -1) << p;
        owner[p] = static_cast<int>(s);
        ++total;
      }
    }
    EXPECT_EQ(total, cfg.ports.ports().size());
  }
}

TEST(EngineSteering, UnknownInboundGoesSomewhereAndIsDropped) {
  EngineConfig cfg = BaseConfig();
  cfg.shards = 4;
  cfg.ports = *PortSet::Parse("20000-29999");
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  for (uint16_t port : {uint16_t{80}, uint16_t{21000}, uint16_t{29999}}) {
    Bytes in = Build(Spec(4, kProtoUdp, "203.0.113.5", kGlobal4, 53, port, true));
    const uint32_t s = e.ShardOf(in.data(), in.size());
    ASSERT_LT(s, 4u);
    if (port != 80) {
      EXPECT_EQ(s, e.plan().OwnerOf(port));
    }
    const Verdict v = e.shard(s).ProcessOne(in.data(), static_cast<uint32_t>(in.size()), 0);
    EXPECT_EQ(v.action, Action::kDrop);
    EXPECT_EQ(v.reason, DropReason::kNoMapping);
  }
  // Garbage steers to a valid shard and is dropped as malformed.
  Bytes junk = {0x45, 0, 0};
  EXPECT_EQ(e.ShardOf(junk.data(), junk.size()), 0u);
  EXPECT_EQ(e.ShardOf(junk.data(), 0), 0u);
}

// Shard::Process with enough sessions to look ahead (prefetching) decides
// every packet as ProcessOne does, one by one: two engines alike, the same
// packets, batch against one by one.
TEST(EngineBatch, ProcessDecidesAsProcessOne) {
  EngineConfig cfg = BaseConfig();
  cfg.max_sessions = 20000;
  NullEventSink sink;
  auto a = Engine::Create(cfg, &sink), b = Engine::Create(cfg, &sink);
  ASSERT_TRUE(a.ok() && b.ok());
  Shard& batched = (*a)->shard(0);
  Shard& single = (*b)->shard(0);
  Rng rng(99);
  // A packet: outbound from one of 3000 inside endpoints (v4 or v6, TCP or
  // UDP) to one of 4 servers, an answer to one, a hairpin, or something else.
  std::vector<uint16_t> ext4(3000, 0), ext6(3000, 0);
  auto packet = [&](int i) {
    const int kind = int(rng.Below(10));
    const uint32_t ep = rng.Below(3000);
    const bool v6 = rng.Below(4) == 0;
    PacketSpec sp;
    sp.family = v6 ? 6 : 4;
    sp.proto = ep % 3 == 0 ? kProtoTcp : kProtoUdp;
    sp.tcp_flags = rng.Below(8) == 0 ? kTcpSyn : kTcpAck;
    const std::string inside = v6 ? "fd00:18::" + std::to_string(1 + ep / 250) : "10.1.0." + std::to_string(1 + ep / 250);
    const std::string server = v6 ? "2001:db8:7::" + std::to_string(1 + ep % 4) : "203.0.113." + std::to_string(1 + ep % 4);
    const uint16_t ext = (v6 ? ext6 : ext4)[ep];
    if (kind < 6 || ext == 0) {
      sp.src = inside, sp.dst = server, sp.sport = uint16_t(10000 + ep % 250), sp.dport = 53;
    } else if (kind < 9) {
      sp.src = server, sp.dst = v6 ? kGlobal6 : kGlobal4, sp.sport = 53, sp.dport = kind == 8 ? uint16_t(ext + 1) : ext;
      // A fifth of them from an inside host: a hairpin, which the look-ahead
      // takes for inbound and the lookup is outbound (its second half is
      // then filtered, the default filtering being address-port-dependent).
      if (ep % 5 == 0) sp.src = inside;
    } else {
      sp.src = inside, sp.dst = server, sp.proto = v6 ? kProtoIcmp6 : kProtoIcmp, sp.sport = uint16_t(ep);
      if (v6) sp.icmp_type = 128;
    }
    Bytes p = Build(sp);
    if (i % 97 == 0) p.resize(rng.Below(uint32_t(p.size())));  // cut short, even below 20 bytes
    return std::make_pair(p, std::make_pair(v6, ep));
  };
  int64_t now = 0;
  // 3000 x 2 sessions first, one by one in both (the batch looks ahead from 4096).
  for (int i = 0; i < 20000; ++i) {
    auto [p, who] = packet(i);
    Bytes q = p;
    const Verdict va = batched.ProcessOne(p.data(), uint32_t(p.size()), now);
    ASSERT_EQ(va, single.ProcessOne(q.data(), uint32_t(q.size()), now));
    ASSERT_EQ(p, q);
    if (va.action == Action::kForward && p.size() >= 40 && (p[0] >> 4) == 4 && p[9] != kProtoIcmp &&
        V4(kGlobal4) == Ip4::Load(p.data() + 12)) {
      ext4[who.second] = uint16_t(p[20] << 8 | p[21]);
    }
    if (va.action == Action::kForward && p.size() >= 60 && (p[0] >> 4) == 6 && p[6] != kProtoIcmp6 &&
        V6(kGlobal6) == Ip6::Load(p.data() + 8)) {
      ext6[who.second] = uint16_t(p[40] << 8 | p[41]);
    }
    now += i % 64 == 0;
  }
  ASSERT_GE(batched.counters().sessions_inserted.value() - batched.counters().sessions_removed.value(), 4096u);
  // Then batches of every size up to 64.
  size_t forwarded = 0;
  for (int round = 0; round < 200; ++round) {
    const uint32_t n = 1 + rng.Below(64);
    std::vector<Bytes> pa, pb;
    for (uint32_t i = 0; i < n; ++i) {
      Bytes p = packet(int(i)).first;
      p.resize(p.size() + 64);  // room for a reply
      pa.push_back(p);
      pb.push_back(p);
    }
    std::vector<PacketRef> refs(n);
    std::vector<Verdict> verdicts(n);
    for (uint32_t i = 0; i < n; ++i) {
      refs[i] = PacketRef{pa[i].data(), uint32_t(pa[i].size() - 64), uint32_t(pa[i].size()), false, false};
    }
    batched.Process(std::span(refs), std::span(verdicts), now);
    for (uint32_t i = 0; i < n; ++i) {
      PacketRef one{pb[i].data(), uint32_t(pb[i].size() - 64), uint32_t(pb[i].size()), false, false};
      ASSERT_EQ(verdicts[i], single.ProcessOne(one, now)) << "round " << round << ", packet " << i;
      ASSERT_EQ(refs[i].len, one.len);
      ASSERT_EQ(pa[i], pb[i]) << "round " << round << ", packet " << i;
      forwarded += verdicts[i].action == Action::kForward;
    }
    now += 10;
  }
  EXPECT_GT(forwarded, 3000u);
}

// Every drop, with its packet's bytes, and every refusal: what the two
// shards of a batch-vs-one-by-one test must both have told.
class RecordingSink final : public EventSink {
 public:
  void MappingInserted(const MappingEvent&) override {}
  void MappingRemoved(const MappingEvent&, RemoveReason) override {}
  void MappingRefused(const MappingEvent&, DropReason why) override { refused.push_back(why); }
  void PacketDropped(DropReason why, const uint8_t* data, size_t len) override {
    dropped.emplace_back(why, Bytes(data, data + len));
  }
  std::vector<std::pair<DropReason, Bytes>> dropped;
  std::vector<DropReason> refused;
};

// Process's look-ahead decides for the common packet what ProcessOne would,
// and ProcessOne then takes its word (Shard::Ahead): batches mixing plain
// packets with every kind the look-ahead must leave to ProcessOne (status
// requests, link-local, multicast and unspecified addresses, malformed
// headers, IP options, extension headers, fragments, ICMP, hairpins,
// sources that are global addresses, handed-off packets) decide, rewrite,
// answer and count as one by one does; with two global addresses per
// family, offloaded checksums, fresh IPv4 Identifications and per-host
// quotas whose refusals are answered in the packet's buffer.
TEST(EngineBatch, LookAheadDecidesAsProcessOne) {
  EngineConfig cfg = BaseConfig();
  cfg.max_sessions = 20000;
  cfg.more_global4 = {V4("198.51.100.2")};
  cfg.more_global6 = {V6("2001:db8:ffff::2")};
  cfg.udp = *PresetByName("full-cone");  // a UDP hairpin's second half gets in
  cfg.max_sessions_per_host = 70;         // a host's 66 or 67 UDP sessions, and a few more
  RecordingSink sink_a, sink_b;
  auto a = Engine::Create(cfg, &sink_a), b = Engine::Create(cfg, &sink_b);
  ASSERT_TRUE(a.ok() && b.ok());
  Shard& batched = (*a)->shard(0);
  Shard& single = (*b)->shard(0);
  Rng rng(4242);
  // 24 inside hosts per family, 100 endpoints each (TCP or UDP), 4 servers.
  constexpr uint32_t kEndpoints = 2400;
  std::vector<uint16_t> ext4(kEndpoints, 0), ext6(kEndpoints, 0);
  std::vector<std::string> global4(kEndpoints), global6(kEndpoints);
  auto inside_of = [](bool v6, uint32_t ep) {
    return v6 ? "fd00:18::" + std::to_string(1 + ep / 100) : "10.1.0." + std::to_string(1 + ep / 100);
  };
  auto server_of = [](bool v6, uint32_t ep) {
    return v6 ? "2001:db8:7::" + std::to_string(1 + ep % 4) : "203.0.113." + std::to_string(1 + ep % 4);
  };
  auto plain = [&](bool v6, uint32_t ep) {
    PacketSpec sp;
    sp.family = v6 ? 6 : 4;
    sp.proto = ep % 3 == 0 ? kProtoTcp : kProtoUdp;
    sp.tcp_flags = kTcpAck;
    sp.src = inside_of(v6, ep);
    sp.dst = server_of(v6, ep);
    sp.sport = uint16_t(10000 + ep % 100);
    sp.dport = 53;
    sp.payload.assign(rng.Below(3) * 7, 0x5a);
    return sp;
  };
  // What the look-ahead must get right or leave alone; `handed_off`,
  // `partial`: the PacketRef's flags.
  struct Made {
    Bytes p;
    bool handed_off = false;
    bool partial = false;
  };
  auto make = [&]() {
    Made m;
    const bool v6 = rng.Below(3) == 0;
    const uint32_t ep = rng.Below(kEndpoints);
    const uint16_t ext = (v6 ? ext6 : ext4)[ep];
    PacketSpec sp = plain(v6, ep);
    const int kind = int(rng.Below(24));
    switch (kind) {
      case 0:  // an answer from the server to the external endpoint
        if (ext == 0) break;
        std::swap(sp.src, sp.dst);
        sp.dst = (v6 ? global6 : global4)[ep];
        sp.sport = 53, sp.dport = ext;
        break;
      case 1:  // to an external port nobody has
        sp.src = sp.dst, sp.dst = v6 ? "2001:db8:ffff::2" : "198.51.100.2", sp.sport = 53, sp.dport = 7;
        break;
      case 2:  // status request (IPv4 only; IPv6 to the same bytes is not one)
        sp.dst = v6 ? "::ffff:192.0.2.2" : "192.0.2.2";
        if (rng.Below(2)) sp.proto = kProtoTcp;
        break;
      case 3:  // link-local source
        sp.src = v6 ? "fe80::1" : "169.254.0.7";
        break;
      case 4:  // multicast or broadcast destination
        sp.dst = v6 ? "ff02::fb" : rng.Below(2) ? "224.0.0.251" : "255.255.255.255";
        break;
      case 5:  // unspecified source
        sp.src = v6 ? "::" : "0.0.0.0";
        break;
      case 6:  // the source is a global address
        sp.src = v6 ? kGlobal6 : "198.51.100.2";
        break;
      case 7:  // a hairpin, to the external port of another inside endpoint
        if (ext == 0) break;
        sp.dst = (v6 ? global6 : global4)[ep];
        sp.dport = ext;
        sp.src = inside_of(v6, (ep + 150) % kEndpoints);
        break;
      case 8:  // IPv4 options, IPv6 extension headers: the general parse
        if (v6) {
          sp.ext_headers = {0, 60};
        } else {
          sp.ip_options = {1, 1, 1, 0};
        }
        break;
      case 9:  // ICMP echo
        sp.proto = v6 ? kProtoIcmp6 : kProtoIcmp, sp.sport = uint16_t(ep);
        if (v6) sp.icmp_type = 128;
        break;
      case 10: {  // an ICMP error about a packet the endpoint sent out
        if (ext == 0) break;
        PacketSpec q = plain(v6, ep);
        q.src = (v6 ? global6 : global4)[ep];
        q.sport = ext;
        m.p = BuildIcmpError(sp.family, q.dst, v6 ? "2001:db8:ffff::1" : kGlobal4, v6 ? 1 : 3, v6 ? 4 : 3,
                             Build(q));
        // (The error goes to the endpoint's own global address.)
        const Ip4 g4 = V4(global4[ep].empty() ? kGlobal4 : global4[ep]);
        if (!v6) std::memcpy(m.p.data() + 16, &g4.raw, 4);
        return m;
      }
      case 11:  // a new flow (a session, or a refusal past the host's quota)
        sp.dport = uint16_t(1000 + rng.Below(60000));
        if (sp.proto == kProtoTcp) sp.tcp_flags = rng.Below(4) == 0 ? kTcpRst : kTcpSyn;
        break;
      case 12:  // handed off (by a shard that is not there)
        m.handed_off = true;
        break;
      case 13:  // offloaded checksum
        m.partial = true;
        break;
      case 14:  // IPv4 without DF: a fresh Identification
        sp.df = false;
        break;
      default:
        break;
    }
    m.p = Build(sp);
    Bytes& p = m.p;
    const size_t l3 = v6 ? 40 : 20;
    const size_t l4 = l3 + (v6 ? 8 * sp.ext_headers.size() : sp.ip_options.size());
    const bool tcp = sp.proto == kProtoTcp, udp = sp.proto == kProtoUdp;
    switch (kind) {
      case 15:  // the UDP length past the packet, or below its header
        if (udp) p[l4 + 4] = rng.Below(2) ? 0xff : 0, p[l4 + 5] = uint8_t(rng.Below(8));
        break;
      case 16:  // a TCP data offset below 5 words, or past the packet
        if (tcp) p[l4 + 12] = uint8_t(rng.Below(2) ? 0x40 : 0xf0);
        break;
      case 17:  // the IP length past the buffer, or below the header
        if (v6) {
          p[4] = 0xff;
        } else {
          p[2] = 0, p[3] = uint8_t(rng.Below(2) ? 19 : 0xff);
        }
        break;
      case 18:  // IPv4 fragments: a first one, a later one
        if (!v6) p[6] = uint8_t((p[6] & 0x40) | (rng.Below(2) ? 0x20 : 0x00)), p[7] = uint8_t(rng.Below(2) * 3);
        break;
      case 19:  // cut short (even below 20 bytes)
        p.resize(rng.Below(uint32_t(p.size())));
        break;
      case 20:  // bytes past the IP packet in the buffer
        p.resize(p.size() + 1 + rng.Below(16), 0xee);
        break;
      case 21:  // another version in the first nibble, or another IPv4 header length
        p[0] = rng.Below(2) ? uint8_t(v6 ? 0x45 : 0x65) : uint8_t(v6 ? 0x60 : 0x46);
        break;
      default:
        break;
    }
    return m;
  };
  // Sessions first, one by one in both (the look-ahead starts at 4096).
  int64_t now = 0;
  for (uint32_t i = 0; i < 2 * kEndpoints; ++i) {
    const bool v6 = i >= kEndpoints;
    const uint32_t ep = i % kEndpoints;
    Bytes p = Build(plain(v6, ep));
    Bytes q = p;
    const Verdict va = batched.ProcessOne(p.data(), uint32_t(p.size()), now);
    ASSERT_EQ(va, single.ProcessOne(q.data(), uint32_t(q.size()), now));
    ASSERT_EQ(p, q);
    ASSERT_EQ(va.action, Action::kForward);
    if (v6) {
      ext6[ep] = uint16_t(p[40] << 8 | p[41]);
      char text[INET6_ADDRSTRLEN];
      global6[ep] = inet_ntop(AF_INET6, p.data() + 8, text, sizeof text);
    } else {
      ext4[ep] = uint16_t(p[20] << 8 | p[21]);
      char text[INET_ADDRSTRLEN];
      global4[ep] = inet_ntop(AF_INET, p.data() + 12, text, sizeof text);
    }
  }
  ASSERT_GE(batched.counters().sessions_inserted.value() - batched.counters().sessions_removed.value(), 4096u);
  // Both global addresses of each family serve some of them.
  EXPECT_NE(std::count(global4.begin(), global4.end(), kGlobal4), 0);
  EXPECT_NE(std::count(global4.begin(), global4.end(), "198.51.100.2"), 0);
  // Then batches: the buffers live to the end (a fragment may be held).
  std::deque<Bytes> bufs_a, bufs_b;
  std::map<Action, int> actions;
  for (int round = 0; round < 300; ++round) {
    const uint32_t n = 1 + rng.Below(64);
    std::vector<PacketRef> refs(n), ones(n);
    std::vector<Verdict> verdicts(n);
    for (uint32_t i = 0; i < n; ++i) {
      Made m = make();
      const uint32_t len = uint32_t(m.p.size());
      m.p.resize(len + 64);  // room for a reply
      bufs_a.push_back(m.p);
      bufs_b.push_back(m.p);
      refs[i] = PacketRef{bufs_a.back().data(), len, len + 64, m.partial, m.handed_off, i};
      ones[i] = PacketRef{bufs_b.back().data(), len, len + 64, m.partial, m.handed_off, i};
    }
    batched.Process(std::span(refs), std::span(verdicts), now);
    for (uint32_t i = 0; i < n; ++i) {
      const Bytes& pa = bufs_a[bufs_a.size() - n + i];
      const Bytes& pb = bufs_b[bufs_b.size() - n + i];
      ASSERT_EQ(verdicts[i], single.ProcessOne(ones[i], now)) << "round " << round << ", packet " << i << ": "
                                                              << Hex(pa);
      ASSERT_EQ(refs[i].len, ones[i].len);
      ASSERT_EQ(refs[i].handed_off, ones[i].handed_off);
      ASSERT_EQ(pa, pb) << "round " << round << ", packet " << i;
      ++actions[verdicts[i].action];
    }
    Shard::Released ra[64], rb[64];
    size_t na, nb;
    do {
      na = batched.TakeReleased(std::span(ra));
      nb = single.TakeReleased(std::span(rb));
      ASSERT_EQ(na, nb);
      for (size_t i = 0; i < na; ++i) {
        ASSERT_EQ(ra[i].verdict, rb[i].verdict);
        ASSERT_EQ(ra[i].packet.len, rb[i].packet.len);
        ASSERT_EQ(Bytes(ra[i].packet.data, ra[i].packet.data + ra[i].packet.len),
                  Bytes(rb[i].packet.data, rb[i].packet.data + rb[i].packet.len));
      }
    } while (na > 0);
    now += 10;
  }
  EXPECT_EQ((*a)->CountersText(), (*b)->CountersText());
  EXPECT_EQ(sink_a.dropped, sink_b.dropped);
  EXPECT_EQ(sink_a.refused, sink_b.refused);
  // Each kind of verdict came up.
  for (Action act : {Action::kForward, Action::kDrop, Action::kStatus, Action::kReply, Action::kHold}) {
    EXPECT_GT(actions[act], 0) << int(act);
  }
  EXPECT_GT(batched.counters().hairpinned.value(), 0u);
  EXPECT_GT(batched.counters().icmp_errors_in.value(), 0u);
  EXPECT_GT(batched.counters().packets_in.value(), 0u);
}

TEST(EngineStatus, StatusAddressGetsStatusAction) {
  for (uint32_t shards : {1u, 4u, 7u}) {
    EngineConfig cfg = BaseConfig();
    cfg.shards = shards;
    cfg.ports = *PortSet::Parse("20000-29999");
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok());
    Engine& e = **engine;
    for (uint8_t proto : {kProtoUdp, kProtoTcp, kProtoIcmp}) {
      Bytes p = Build(Spec(4, proto, "10.0.0.2", "192.0.2.2", 40000, 9, false));
      const Bytes before = p;
      const uint32_t s = e.ShardOf(p.data(), p.size());
      ASSERT_LT(s, shards);
      const Verdict v = e.shard(s).ProcessOne(p.data(), static_cast<uint32_t>(p.size()), 0);
      EXPECT_EQ(v.action, Action::kStatus);
      EXPECT_EQ(p, before) << "a status request is not translated";
      EXPECT_EQ(e.shard(s).counters().status_requests.value() > 0, true);
    }
    // Nothing was mapped for them.
    for (uint32_t s = 0; s < shards; ++s) {
      EXPECT_EQ(e.shard(s).v4()->udp.mapping_count() + e.shard(s).v4()->tcp.mapping_count() +
                    e.shard(s).v4()->icmp.mapping_count(),
                0u);
    }
    // A neighbour of the status address is translated normally.
    Bytes n = Build(Spec(4, kProtoUdp, "10.0.0.2", "192.0.2.3", 40000, 9, false));
    const uint32_t s = e.ShardOf(n.data(), n.size());
    EXPECT_EQ(e.shard(s).ProcessOne(n.data(), static_cast<uint32_t>(n.size()), 0).action, Action::kForward);
  }
}

TEST(EngineCounters, TextListsCountersAndDrops) {
  EngineConfig cfg = BaseConfig();
  cfg.shards = 2;
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  Bytes in = Build(Spec(4, kProtoUdp, "203.0.113.5", kGlobal4, 53, 5000, true));
  const uint32_t s = e.ShardOf(in.data(), in.size());
  e.shard(s).ProcessOne(in.data(), static_cast<uint32_t>(in.size()), 0);
  const std::string text = e.CountersText();
  EXPECT_THAT(text, HasSubstr("packets_out 0\n"));
  EXPECT_THAT(text, HasSubstr("drop.inbound-no-mapping 1\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("drop.tiny-fragment")));
}

// ---------------------------------------------------------------------------
// Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): inside -> global address ->
// inside, the two halves in the shards that own each side's port.

struct Delivery {
  Verdict verdict;
  std::vector<uint32_t> shards;  // every shard the packet went through
};

// What the dataplane does: steer, process, follow hand-offs.
Delivery Deliver(Engine& e, Bytes& pkt, int64_t now) {
  Delivery d;
  PacketRef ref{pkt.data(), static_cast<uint32_t>(pkt.size()), 0, false, false};
  uint32_t s = e.ShardOf(pkt.data(), pkt.size());
  for (int hop = 0; hop < 3; ++hop) {
    d.shards.push_back(s);
    d.verdict = e.shard(s).ProcessOne(ref, now);
    if (d.verdict.action != Action::kHandOff) break;
    EXPECT_TRUE(ref.handed_off);
    EXPECT_LT(d.verdict.next_shard, e.shards());
    EXPECT_NE(d.verdict.next_shard, s) << "a hand-off to the same shard is done in place";
    s = d.verdict.next_shard;
  }
  pkt.resize(ref.len);
  return d;
}

uint16_t ExternalPortOf(Shard& s, int family, uint8_t proto, uint16_t inside_port) {
  uint16_t ext = 0;
  auto visit = [&](const auto& table) {
    table.ForEachSession([&](const auto& m, const auto&) {
      if (m.inside_port == inside_port) ext = m.external_port;
    });
  };
  if (family == 4) {
    visit(proto == kProtoTcp ? s.v4()->tcp : s.v4()->udp);
  } else {
    visit(proto == kProtoTcp ? s.v6()->tcp : s.v6()->udp);
  }
  return ext;
}

uint16_t PortAt(const Bytes& p, size_t off_in_l4) { return testing::Be16(p, L4Off(p[0] >> 4) + off_in_l4); }

struct HairpinCase {
  int family;
  uint8_t proto;
  uint32_t shards;
  const char* preset;
};

class Hairpin : public ::testing::TestWithParam<HairpinCase> {};

TEST_P(Hairpin, InsideHostsReachEachOtherByExternalEndpoints) {
  const HairpinCase& c = GetParam();
  EngineConfig cfg = BaseConfig();
  cfg.shards = c.shards;
  cfg.ports = *PortSet::Parse("20000-29999");
  cfg.tcp = cfg.udp = *PresetByName(c.preset);
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  const int f = c.family;
  const std::string g = Global(f);
  const std::string a = f == 4 ? "10.1.0.2" : "fd00::2";
  const std::string b = f == 4 ? "10.1.0.3" : "fd00::3";
  const std::string r = f == 4 ? "203.0.113.5" : "2001:db8:1::5";
  const bool filters = std::string(c.preset) != "full-cone";

  // B has a mapping, made by talking to a remote server.
  Bytes b_out = Build(Spec(f, c.proto, b, r, 5000, 80, false));
  ASSERT_EQ(Deliver(e, b_out, 0).verdict.action, Action::kForward);
  const uint16_t b_ext = PortAt(b_out, 0);

  // A sends to B's external endpoint.
  Bytes a_to_b = Build(Spec(f, c.proto, a, g, 6000, b_ext, false));
  Delivery d1 = Deliver(e, a_to_b, 10);
  if (filters) {
    // B's mapping has not talked to A's external endpoint: filtered, as any
    // remote end would be; A's half (its mapping) stays.
    EXPECT_EQ(d1.verdict.action, Action::kDrop);
    EXPECT_EQ(d1.verdict.reason, DropReason::kFiltered);
  } else {
    ASSERT_EQ(d1.verdict.action, Action::kForward) << DropReasonName(d1.verdict.reason);
  }
  // A's external port, in the shard A was steered to.
  const uint16_t a_ext = ExternalPortOf(e.shard(d1.shards[0]), f, c.proto, 6000);
  ASSERT_NE(a_ext, 0);
  EXPECT_EQ(e.plan().OwnerOf(a_ext), d1.shards[0]);
  EXPECT_EQ(d1.shards.size(), e.plan().OwnerOf(b_ext) == d1.shards[0] ? 1u : 2u);
  if (!filters) {
    // B sees A's external endpoint, never A's inside one (REQ-9b).
    EXPECT_EQ(Hex(a_to_b), Hex(Build(Spec(f, c.proto, g, b, a_ext, 5000, false))));
    EXPECT_TRUE(OracleChecksumsValid(a_to_b));
  }

  // B answers A's external endpoint: it reaches A from B's external one —
  // hole punching, which a filtering NAT needs before A's packets pass.
  Bytes b_to_a = Build(Spec(f, c.proto, b, g, 5000, a_ext, true));
  Delivery d2 = Deliver(e, b_to_a, 20);
  const bool symmetric = std::string(c.preset) == "symmetric";
  if (symmetric) {
    // B gets a new external port for this destination, which A's session
    // (with B's first port) does not know: the classic symmetric failure.
    EXPECT_EQ(d2.verdict.action, Action::kDrop);
    EXPECT_EQ(d2.verdict.reason, DropReason::kFiltered);
    return;
  }
  ASSERT_EQ(d2.verdict.action, Action::kForward) << DropReasonName(d2.verdict.reason);
  EXPECT_EQ(Hex(b_to_a), Hex(Build(Spec(f, c.proto, g, a, b_ext, 6000, true))));
  EXPECT_TRUE(OracleChecksumsValid(b_to_a));

  // Now A's packets pass whatever the filtering.
  Bytes again = Build(Spec(f, c.proto, a, g, 6000, b_ext, false));
  ASSERT_EQ(Deliver(e, again, 30).verdict.action, Action::kForward);
  EXPECT_EQ(Hex(again), Hex(Build(Spec(f, c.proto, g, b, a_ext, 5000, false))));

  // B's ICMP error about A's packet goes back to A, quoting what A sent
  // (RFC 5508 §6: errors are hairpinned too).
  const uint8_t type = f == 4 ? 3 : 1, code = f == 4 ? 3 : 4;  // port unreachable
  Bytes err = BuildIcmpError(f, b, g, type, code, again);
  ASSERT_EQ(Deliver(e, err, 40).verdict.action, Action::kForward);
  EXPECT_EQ(Hex(err), Hex(BuildIcmpError(f, g, a, type, code, Build(Spec(f, c.proto, a, g, 6000, b_ext, false)))));
  EXPECT_TRUE(OracleChecksumsValid(err));

  uint64_t hairpinned = 0;
  for (uint32_t s = 0; s < e.shards(); ++s) hairpinned += e.shard(s).counters().hairpinned.value();
  EXPECT_EQ(hairpinned, filters ? 3u : 4u);
}

std::vector<HairpinCase> HairpinCases() {
  std::vector<HairpinCase> out;
  for (int family : {4, 6}) {
    for (uint8_t proto : {kProtoTcp, kProtoUdp}) {
      for (uint32_t shards : {1u, 4u}) {
        for (const char* preset : {"full-cone", "port-restricted-cone", "symmetric"}) {
          out.push_back({family, proto, shards, preset});
        }
      }
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Engine, Hairpin, ::testing::ValuesIn(HairpinCases()),
                         [](const ::testing::TestParamInfo<HairpinCase>& info) {
                           std::string preset = info.param.preset;
                           for (char& ch : preset) ch = ch == '-' ? '_' : ch;
                           return "v" + std::to_string(info.param.family) +
                                  (info.param.proto == kProtoTcp ? "_tcp_" : "_udp_") +
                                  std::to_string(info.param.shards) + "shards_" + preset;
                         });

TEST(EngineHairpin, EchoToTheGlobalAddressIsNotHairpinned) {
  EngineConfig cfg = BaseConfig();
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Bytes ping = Build(Spec(4, kProtoIcmp, "10.1.0.2", kGlobal4, 77, 77, false));
  Delivery d = Deliver(**engine, ping, 0);
  EXPECT_EQ(d.verdict.action, Action::kDrop);
  EXPECT_EQ(d.verdict.reason, DropReason::kHairpinEcho);
  Bytes ping6 = Build(Spec(6, kProtoIcmp6, "fd00::2", kGlobal6, 77, 77, false));
  EXPECT_EQ(Deliver(**engine, ping6, 0).verdict.reason, DropReason::kHairpinEcho);
}

TEST(EngineHairpin, OnlyInsideSourcesAreHairpinned) {
  EngineConfig cfg = BaseConfig();
  cfg.tcp = cfg.udp = *PresetByName("full-cone");
  cfg.inside = *PrefixSet::Parse("10.1.0.0/24");
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  Bytes b_out = Build(Spec(4, kProtoUdp, "10.1.0.3", "203.0.113.5", 5000, 80, false));
  ASSERT_EQ(Deliver(e, b_out, 0).verdict.action, Action::kForward);
  const uint16_t b_ext = PortAt(b_out, 0);
  // 10.2.0.9 is not inside: its packet is inbound, its source kept as it is.
  Bytes other = Build(Spec(4, kProtoUdp, "10.2.0.9", kGlobal4, 6000, b_ext, false));
  ASSERT_EQ(Deliver(e, other, 0).verdict.action, Action::kForward);
  EXPECT_EQ(Hex(other), Hex(Build(Spec(4, kProtoUdp, "10.2.0.9", "10.1.0.3", 6000, 5000, false))));
  EXPECT_EQ(e.shard(0).counters().hairpinned.value(), 0u);
  // The global address may not be inside.
  cfg.inside = *PrefixSet::Parse("198.51.100.0/24");
  EXPECT_THAT(CreateError(cfg), HasSubstr("contain the global address 198.51.100.1"));
}

// The router's own ICMP errors about translated packets (a Time Exceeded on
// the way from natd to the outside) come from its inside address but quote
// a packet to a remote host: inbound, not hairpinned.
TEST(EngineHairpin, TheRoutersErrorsFromAnInsideAddressAreInbound) {
  for (int family : {4, 6}) {
    EngineConfig cfg = BaseConfig();
    cfg.shards = 3;
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok());
    Flow f{family, kProtoUdp, family == 4 ? "10.1.0.2" : "fd00::2", family == 4 ? "203.0.113.5" : "2001:db8:1::5",
           40000, 53};
    Bytes out = Outbound(f);
    ASSERT_EQ(Deliver(**engine, out, 0).verdict.action, Action::kForward);
    const uint16_t ext = SrcPortOf(out, f.proto);
    const std::string router = family == 4 ? "10.1.0.1" : "fd00::1";
    Bytes err = BuildIcmpError(family, router, Global(family), family == 4 ? 11 : 3, 0, out);
    const Delivery d = Deliver(**engine, err, 1);
    ASSERT_EQ(d.verdict.action, Action::kForward) << DropReasonName(d.verdict.reason);
    EXPECT_EQ(d.shards.size(), 1u);
    EXPECT_EQ(Hex(err), Hex(BuildIcmpError(family, router, f.inside, family == 4 ? 11 : 3, 0, Outbound(f))));
    (void)ext;
  }
}

TEST(EngineHairpin, AHandedOffPacketMustComeFromTheGlobalAddress) {
  EngineConfig cfg = BaseConfig();
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  Bytes p = Build(Spec(4, kProtoUdp, "203.0.113.5", kGlobal4, 53, 20000, true));
  PacketRef ref{p.data(), static_cast<uint32_t>(p.size()), 0, false, true};
  const Verdict v = (*engine)->shard(0).ProcessOne(ref, 0);
  EXPECT_EQ(v.action, Action::kDrop);
  EXPECT_EQ(v.reason, DropReason::kSourceIsGlobal);
}

// RFC 7857 §10 / RFC 6864 §5.3.1: two inside hosts may pick the same IPv4
// Identification for datagrams to one host; behind one global address those
// would collide there, so natd gives every outbound datagram without DF its
// own (unique per shard's residue class); DF ones and inbound ones keep theirs.
TEST(EngineIpId, NonAtomicOutboundDatagramsGetNatdsIdentification) {
  EngineConfig cfg = BaseConfig();
  cfg.shards = 3;
  NullEventSink sink;
  auto engine = Engine::Create(cfg, &sink);
  ASSERT_TRUE(engine.ok());
  std::set<uint16_t> ids;
  for (int host = 2; host < 40; ++host) {
    PacketSpec s = Spec(4, kProtoUdp, "10.1.0." + std::to_string(host), "203.0.113.5", uint16_t(5000 + host), 53,
                        false);
    s.df = false;
    s.ip_id = 0x1234;  // every host picks the same
    Bytes p = Build(s);
    ASSERT_EQ(Deliver(**engine, p, 0).verdict.action, Action::kForward);
    EXPECT_TRUE(OracleChecksumsValid(p));
    EXPECT_EQ(p[6] & 0x40, 0);
    ids.insert(uint16_t(p[4] << 8 | p[5]));
  }
  EXPECT_EQ(ids.size(), 38u) << "no two alike";
  PacketSpec df = Spec(4, kProtoUdp, "10.1.0.2", "203.0.113.5", 5002, 53, false);
  Bytes p = Build(df);
  ASSERT_EQ(Deliver(**engine, p, 1).verdict.action, Action::kForward);
  EXPECT_EQ(p[4] << 8 | p[5], 0x1234) << "an atomic datagram (DF) keeps its Identification";
  PacketSpec in = Spec(4, kProtoUdp, "203.0.113.5", kGlobal4, 53, 5002, true);
  in.df = false;
  Bytes q = Build(in);
  ASSERT_EQ(Deliver(**engine, q, 2).verdict.action, Action::kForward);
  EXPECT_EQ(q[4] << 8 | q[5], 0x1234) << "inbound keeps it";
}

// ---------------------------------------------------------------------------
// Address pools (RFC 4787 REQ-2 "paired"; RFC 7857 §4).

TEST(EnginePool, EveryMappingOfAHostUsesItsOneAddress) {
  for (int family : {4, 6}) {
    SCOPED_TRACE("v" + std::to_string(family));
    EngineConfig cfg = BaseConfig();
    cfg.shards = 2;
    cfg.tcp = cfg.udp = *PresetByName("full-cone");
    const std::vector<std::string> pool4 = {kGlobal4, "198.51.100.2", "198.51.100.3"};
    const std::vector<std::string> pool6 = {kGlobal6, "2001:db8:ffff::2", "2001:db8:ffff::3"};
    for (size_t i = 1; i < 3; ++i) {
      ParseIp4(pool4[i], &cfg.more_global4.emplace_back());
      ParseIp6(pool6[i], &cfg.more_global6.emplace_back());
    }
    NullEventSink sink;
    auto engine = Engine::Create(cfg, &sink);
    ASSERT_TRUE(engine.ok()) << engine.status();
    Engine& e = **engine;
    const std::vector<std::string>& pool = family == 4 ? pool4 : pool6;
    std::map<std::string, std::string> address_of;  // inside host -> its global address
    std::map<std::string, std::set<uint16_t>> ports_on;  // global address -> external ports
    for (int host = 2; host < 40; ++host) {
      const std::string inside = family == 4 ? "10.1.0." + std::to_string(host) : "fd00::" + std::to_string(host);
      for (int remote = 1; remote <= 3; ++remote) {
        for (uint8_t proto : {kProtoTcp, kProtoUdp}) {
          Flow f{family, proto, inside, family == 4 ? "203.0.113." + std::to_string(remote) : "2001:db8:1::1",
                 uint16_t(30000 + remote), 443};
          Bytes out = Outbound(f);
          ASSERT_EQ(Deliver(e, out, 0).verdict.action, Action::kForward);
          const size_t off = family == 4 ? 12 : 8, len = family == 4 ? 4 : 16;
          char text[64];
          inet_ntop(family == 4 ? AF_INET : AF_INET6, out.data() + off, text, sizeof text);
          (void)len;
          auto [it, fresh] = address_of.try_emplace(inside, text);
          EXPECT_EQ(it->second, text) << inside << " left from two addresses";
          EXPECT_NE(std::find(pool.begin(), pool.end(), std::string(text)), pool.end()) << text;
          const uint16_t ext = SrcPortOf(out, proto);
          ports_on[text].insert(ext);
          // The reply to that address and port reaches the host.
          Flow back = f;
          Bytes reply = Build(Spec(family, proto, f.remote, text, f.remote_port, ext, true));
          ASSERT_EQ(Deliver(e, reply, 1).verdict.action, Action::kForward) << text << ":" << ext;
          EXPECT_EQ(Hex(reply), Hex(TranslatedReply(back)));
          // The same port on another address of the pool is not this host's.
          for (const std::string& other : pool) {
            if (other == text) continue;
            Bytes stray = Build(Spec(family, proto, f.remote, other, f.remote_port, ext, true));
            const Verdict v = Deliver(e, stray, 1).verdict;
            if (v.action == Action::kForward) {
              EXPECT_NE(Hex(stray), Hex(TranslatedReply(back))) << "reached " << inside << " through " << other;
            }
          }
        }
      }
    }
    EXPECT_EQ(ports_on.size(), 3u) << "38 hosts spread over the three addresses";
    // Port preservation on every address: the same port number, several hosts.
    size_t with_30001 = 0;
    for (auto& [addr, ports] : ports_on) with_30001 += ports.count(30001);
    EXPECT_EQ(with_30001, 3u) << "each address gives inside port 30001 to one of its hosts";
  }
}

TEST(EnginePool, RejectsBadPools) {
  EngineConfig c = BaseConfig();
  c.more_global4.push_back(*c.global4);
  EXPECT_THAT(CreateError(c), HasSubstr("given twice"));
  c = BaseConfig();
  ParseIp4("10.9.9.9", &c.more_global4.emplace_back());
  EXPECT_THAT(CreateError(c), HasSubstr("contain the global address 10.9.9.9"));
  c = BaseConfig();
  c.global6.reset();
  ParseIp6("2001:db8::1", &c.more_global6.emplace_back());
  EXPECT_THAT(CreateError(c), HasSubstr("needs its first one"));
}

}  // namespace
}  // namespace natd
