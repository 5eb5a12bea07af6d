// The state file: an engine's tables saved and restored into a fresh engine
// translate every packet as before (every preset, both families, TCP, UDP
// and echo), with TCP state, lifetimes and traffic counters kept and the
// downtime taken off; anything wrong with a file (a changed byte anywhere, a
// cut at any length, another version, another configuration, entries that
// break a table's rules) is refused with a reason and restores nothing.
#include "nat/state_file.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nat/addr.h"
#include "nat/config.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/rng.h"
#include "nat/testing/fuzz_checks.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Build;
using testing::Bytes;
using ::testing::HasSubstr;
using testing::Hex;
using testing::PacketSpec;

const char kGlobal4[] = "198.51.100.1";
const char kGlobal6[] = "2001:db8:ffff::1";
constexpr int64_t kUnix = 1'800'000'000'000;  // the wall clock when saving
constexpr int64_t kSavedAt = 50'000;          // the old process's clock when saving
constexpr int64_t kRestoredAt = 7'000;        // the new process's clock when restoring

class CountingSink final : public EventSink {
 public:
  void MappingInserted(const MappingEvent&) override { ++inserted; }
  void MappingRemoved(const MappingEvent&, RemoveReason) override { ++removed; }
  void MappingRefused(const MappingEvent&, DropReason) override {}
  void PacketDropped(DropReason, const uint8_t*, size_t) override {}
  int inserted = 0, removed = 0;
};

EngineConfig BaseConfig() {
  EngineConfig c;
  Ip4 g4;
  Ip6 g6;
  EXPECT_TRUE(ParseIp4(kGlobal4, &g4));
  EXPECT_TRUE(ParseIp6(kGlobal6, &g6));
  c.global4 = g4;
  c.global6 = g6;
  c.ports = *PortSet::Parse("20000-29999");
  c.max_sessions = 4096;
  c.seed = 1234;
  return c;
}

std::unique_ptr<Engine> MakeEngine(const EngineConfig& c, EventSink* sink) {
  auto e = Engine::Create(c, sink);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

// ---------------------------------------------------------------------------
// Traffic.

struct Flow {
  int family;
  uint8_t proto;
  std::string inside, remote;
  uint16_t inside_port, remote_port;
  bool answered;  // the far end replied (TCP: established)
};

bool IsEcho(const Flow& f) { return f.proto == kProtoIcmp || f.proto == kProtoIcmp6; }
std::string Global(int family) { return family == 4 ? kGlobal4 : kGlobal6; }

PacketSpec Spec(const Flow& f, bool inbound, uint16_t ext, uint8_t tcp_flags) {
  PacketSpec sp;
  sp.family = f.family;
  sp.proto = f.proto;
  if (inbound) {
    sp.src = f.remote;
    sp.dst = Global(f.family);
    sp.sport = IsEcho(f) ? ext : f.remote_port;
    sp.dport = ext;
  } else {
    sp.src = f.inside;
    sp.dst = f.remote;
    sp.sport = f.inside_port;
    sp.dport = IsEcho(f) ? f.inside_port : f.remote_port;
  }
  sp.tcp_flags = tcp_flags;
  if (f.proto == kProtoIcmp) sp.icmp_type = inbound ? 0 : 8;
  if (f.proto == kProtoIcmp6) sp.icmp_type = inbound ? 129 : 128;
  sp.payload = {'s', 't', 'a', 't', 'e'};
  return sp;
}

Verdict Send(Engine& e, Bytes& p, int64_t now) {
  const uint32_t s = e.ShardOf(p.data(), p.size());
  return e.shard(s).ProcessOne(p.data(), uint32_t(p.size()), now);
}

uint16_t SourcePort(const Bytes& p, const Flow& f) {
  return testing::Be16(p, (f.family == 4 ? 20 : 40) + (IsEcho(f) ? 4 : 0));
}

// Eight flows per family and protocol: two inside hosts, an inside port in
// the port set and one outside it, two remote hosts; the last two never
// answered (TCP: half-open).
std::vector<Flow> Flows() {
  std::vector<Flow> flows;
  for (int family : {4, 6}) {
    const uint8_t echo = family == 4 ? kProtoIcmp : kProtoIcmp6;
    for (uint8_t proto : {kProtoTcp, kProtoUdp, echo}) {
      int n = 0;
      for (int host : {2, 3}) {
        for (uint16_t port : {uint16_t{25000}, uint16_t{40000}}) {
          for (int remote : {7, 8}) {
            Flow f;
            f.family = family;
            f.proto = proto;
            f.inside = family == 4 ? "10.1.0." + std::to_string(host) : "fd00:1::" + std::to_string(host);
            f.remote = family == 4 ? "203.0.113." + std::to_string(remote) : "2001:db8:1::" + std::to_string(remote);
            f.inside_port = uint16_t(port + host);
            f.remote_port = uint16_t(400 + remote);
            f.answered = n++ < 6;
            flows.push_back(f);
          }
        }
      }
    }
  }
  return flows;
}

// Runs the flows through the engine from `now` on: each sends, the answered
// ones get a reply (TCP: SYN, SYN-ACK, so established). Returns the
// external port of each.
std::vector<uint16_t> RunFlows(Engine& e, const std::vector<Flow>& flows, int64_t now) {
  std::vector<uint16_t> ext;
  for (const Flow& f : flows) {
    Bytes out = Build(Spec(f, false, 0, kTcpSyn));
    const Verdict v = Send(e, out, now++);
    EXPECT_EQ(v.action, Action::kForward) << DropReasonName(v.reason);
    ext.push_back(SourcePort(out, f));
    if (f.answered) {
      PacketSpec reply = Spec(f, true, ext.back(), kTcpSyn | kTcpAck);
      // To the address it left from (one of a pool's).
      char text[64];
      inet_ntop(f.family == 4 ? AF_INET : AF_INET6, out.data() + (f.family == 4 ? 12 : 8), text, sizeof text);
      reply.dst = text;
      Bytes in = Build(reply);
      const Verdict r = Send(e, in, now++);
      EXPECT_EQ(r.action, Action::kForward) << DropReasonName(r.reason);
    }
  }
  return ext;
}

// One session as the tables hold it, times relative to the engine's now.
using Row = std::tuple<int, uint32_t, uint8_t, std::string, uint16_t, uint16_t, std::string, uint16_t, uint8_t, uint8_t,
                       int64_t, int64_t, int64_t, uint64_t, uint64_t, uint64_t, uint64_t>;

template <typename Addr>
void AddRows(int family, uint32_t shard, const MappingTable<Addr>& t, int64_t now, std::vector<Row>* rows) {
  t.ForEachSession([&](const auto& m, const auto& s) {
    rows->emplace_back(family, shard, t.config().proto, ToString(m.inside), m.inside_port, m.external_port,
                       ToString(s.remote), s.remote_port, s.tcp_state, s.timeout_class, s.expires_ms - now,
                       now - m.created_ms, now - m.last_ms, m.packets_out, m.bytes_out, m.packets_in, m.bytes_in);
  });
}

std::vector<Row> Rows(Engine& e, int64_t now) {
  std::vector<Row> rows;
  for (uint32_t i = 0; i < e.shards(); ++i) {
    for (auto& a : e.shard(i).v4()->pool) {
      for (auto* t : {&a->tcp, &a->udp, &a->icmp}) AddRows(4, i, *t, now, &rows);
    }
    for (auto& a : e.shard(i).v6()->pool) {
      for (auto* t : {&a->tcp, &a->udp, &a->icmp}) AddRows(6, i, *t, now, &rows);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

size_t Sessions(Engine& e) {
  size_t n = 0;
  for (uint32_t i = 0; i < e.shards(); ++i) {
    if (auto* f = e.shard(i).v4()) {
      for (auto& t : f->pool) n += t->tcp.session_count() + t->udp.session_count() + t->icmp.session_count();
    }
    if (auto* f = e.shard(i).v6()) {
      for (auto& t : f->pool) n += t->tcp.session_count() + t->udp.session_count() + t->icmp.session_count();
    }
  }
  return n;
}

uint64_t Inserted(Engine& e) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < e.shards(); ++i) {
    n += e.shard(i).counters().sessions_inserted.value() + e.shard(i).counters().mappings_inserted.value();
  }
  return n;
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(StateFile, Crc32cKnownAnswer) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(StateFile, EmptyEngineRoundTrips) {
  NullEventSink sink;
  auto a = MakeEngine(BaseConfig(), &sink);
  const std::string bytes = EncodeState(*a, kSavedAt, kUnix);
  EXPECT_EQ(bytes.substr(0, 8), "NATDSTAT");
  auto b = MakeEngine(BaseConfig(), &sink);
  auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->sessions, 0u);
  EXPECT_EQ(Sessions(*b), 0u);
}

// Every preset, one and three shards: the restored tables are the saved ones
// (same external ports, TCP state, lifetimes less the downtime, ages plus
// it, traffic counters), satisfy the fuzz targets' invariants, and translate
// every later packet exactly as the original engine does; replies first, so
// an inbound packet that only a restored mapping lets in proves it is there.
TEST(StateFile, EveryPresetRoundTripsAndTranslatesTheSame) {
  const std::vector<Flow> flows = Flows();
  constexpr int64_t kDown = 1'500;  // natd down 1.5 s
  for (uint32_t shards : {1u, 3u}) {
    for (const Behavior& b : AllPresets()) {
      SCOPED_TRACE(std::to_string(shards) + " shard(s), " + std::string(b.name));
      EngineConfig c = BaseConfig();
      c.shards = shards;
      c.tcp = c.udp = c.icmp = b;
      CountingSink sink_a, sink_b;
      auto a = MakeEngine(c, &sink_a);
      const std::vector<uint16_t> ext = RunFlows(*a, flows, kSavedAt - 10'000);
      const size_t live = Sessions(*a);
      ASSERT_EQ(live, flows.size());

      size_t written = 0;
      const std::string bytes = EncodeState(*a, kSavedAt, kUnix, &written);
      EXPECT_EQ(written, live);
      c.seed = 999;  // other random ports: whatever b gives must come from the file
      auto bengine = MakeEngine(c, &sink_b);
      Engine& be = *bengine;
      auto counts = RestoreState(be, bytes, kRestoredAt, kUnix + kDown);
      ASSERT_TRUE(counts.ok()) << counts.status();
      EXPECT_EQ(counts->sessions, live);
      EXPECT_EQ(counts->expired, 0u);
      EXPECT_EQ(int(counts->mappings), sink_b.inserted) << "one mapping event per restored mapping";
      EXPECT_EQ(testing::CheckEngineTables(be, kRestoredAt), "");

      // The same sessions; lifetimes shorter and ages longer by the downtime.
      std::vector<Row> want = Rows(*a, kSavedAt);
      for (Row& r : want) {
        std::get<10>(r) -= kDown;
        std::get<11>(r) += kDown;
        std::get<12>(r) += kDown;
      }
      std::sort(want.begin(), want.end());
      EXPECT_EQ(Rows(be, kRestoredAt), want);

      // Later packets: a reply, then the inside host again, then a remote
      // end never seen, in both engines.
      for (size_t i = 0; i < flows.size(); ++i) {
        const Flow& f = flows[i];
        SCOPED_TRACE("flow " + std::to_string(i) + " v" + std::to_string(f.family) + " proto " +
                     std::to_string(f.proto) + " " + f.inside + ":" + std::to_string(f.inside_port));
        const int64_t t = int64_t(i) * 3;
        Bytes in_a = Build(Spec(f, true, ext[i], kTcpAck));
        Bytes in_b = in_a;
        const Verdict va = Send(*a, in_a, kSavedAt + t);
        const Verdict vb = Send(be, in_b, kRestoredAt + t);
        EXPECT_EQ(vb.action, Action::kForward) << DropReasonName(vb.reason);
        EXPECT_EQ(va, vb);
        EXPECT_EQ(Hex(in_a), Hex(in_b));
        EXPECT_TRUE(testing::OracleChecksumsValid(in_b));

        Bytes out_a = Build(Spec(f, false, 0, kTcpAck));
        Bytes out_b = out_a;
        EXPECT_EQ(Send(*a, out_a, kSavedAt + t + 1), Send(be, out_b, kRestoredAt + t + 1));
        EXPECT_EQ(Hex(out_a), Hex(out_b));
        EXPECT_EQ(SourcePort(out_b, f), ext[i]) << "the same external port";

        Flow stranger = f;
        stranger.remote_port = uint16_t(f.remote_port + 1000);
        Bytes s_a = Build(Spec(stranger, true, ext[i], kTcpSyn));
        Bytes s_b = s_a;
        EXPECT_EQ(Send(*a, s_a, kSavedAt + t + 2), Send(be, s_b, kRestoredAt + t + 2)) << "the same filtering";
        EXPECT_EQ(Hex(s_a), Hex(s_b));
      }
      EXPECT_EQ(testing::CheckEngineTables(be, kRestoredAt + 3 * int64_t(flows.size())), "");
      EXPECT_EQ(Sessions(*a), Sessions(be));
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// New flows after a restore meet the restored entries in every index: an
// endpoint-independent mapping is found again, a reuse-last endpoint gets its
// port again, an exclusive port is not given to anyone else, the per-host
// quota counts restored sessions.
// Address pools: every address's tables are saved and come back to the same
// address (the pool index is in the file, the pool in the fingerprint).
TEST(StateFile, AddressPoolsRoundTrip) {
  EngineConfig c = BaseConfig();
  c.shards = 2;
  for (const char* a : {"198.51.100.7", "198.51.100.8"}) ParseIp4(a, &c.more_global4.emplace_back());
  ParseIp6("2001:db8:ffff::7", &c.more_global6.emplace_back());
  NullEventSink sink;
  auto a = MakeEngine(c, &sink);
  RunFlows(*a, Flows(), 0);
  size_t used4 = 0;
  for (uint32_t i = 0; i < a->shards(); ++i) {
    for (auto& t : a->shard(i).v4()->pool) used4 += t->udp.session_count() > 0;
  }
  EXPECT_GE(used4, 2u) << "the flows' hosts spread over the pool";
  const std::string bytes = EncodeState(*a, 1'000, kUnix);
  auto b = MakeEngine(c, &sink);
  auto counts = RestoreState(*b, bytes, 1'000, kUnix);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->sessions, Sessions(*a));
  EXPECT_EQ(Rows(*b, 1'000), Rows(*a, 1'000));
}

TEST(StateFile, NewFlowsAfterARestoreSeeTheRestoredEntries) {
  for (const Behavior& b : AllPresets()) {
    SCOPED_TRACE(std::string(b.name));
    EngineConfig c = BaseConfig();
    c.shards = 2;
    c.tcp = c.udp = c.icmp = b;
    c.max_sessions_per_host = 2 * 8 * c.shards;  // per table: 8 per shard, ceil(limit / shards)
    NullEventSink sink;
    auto a = MakeEngine(c, &sink);
    const std::vector<Flow> flows = Flows();
    const std::vector<uint16_t> ext = RunFlows(*a, flows, 0);
    c.seed = 4321;
    auto bengine = MakeEngine(c, &sink);
    Engine& be = *bengine;
    ASSERT_TRUE(RestoreState(be, EncodeState(*a, 1'000, kUnix), kRestoredAt, kUnix).ok());

    // The same inside endpoints to a remote end never seen, and other inside
    // hosts on the same inside ports (wanting the same preserved ports).
    std::vector<Flow> more;
    for (const Flow& f : flows) {
      Flow g = f;
      g.remote = f.family == 4 ? "203.0.113.99" : "2001:db8:1::99";
      more.push_back(g);
      Flow h = f;
      h.inside = f.family == 4 ? "10.1.0.9" : "fd00:1::9";
      more.push_back(h);
    }
    const std::vector<uint16_t> ext_more = RunFlows(be, more, kRestoredAt);
    ASSERT_EQ(ext_more.size(), more.size());
    EXPECT_EQ(testing::CheckEngineTables(be, kRestoredAt + 2 * int64_t(more.size())), "");
    for (size_t i = 0; i < flows.size(); ++i) {
      if (b.mapping == Dependence::kEndpointIndependent || b.strategy == PortStrategy::kReuseLast) {
        EXPECT_EQ(ext_more[2 * i], ext[i]) << "flow " << i << ": the endpoint's port again";
      }
    }
  }
  // The quota: a host's restored sessions count.
  EngineConfig c = BaseConfig();
  c.max_sessions_per_host = 2;
  NullEventSink sink;
  auto a = MakeEngine(c, &sink);
  Flow f{4, kProtoUdp, "10.1.0.2", "203.0.113.7", 25002, 53, true};
  Flow g = f;
  g.remote_port = 54;
  RunFlows(*a, {f, g}, 0);
  auto b = MakeEngine(c, &sink);
  ASSERT_TRUE(RestoreState(*b, EncodeState(*a, 1'000, kUnix), kRestoredAt, kUnix).ok());
  Flow h = f;
  h.remote_port = 55;
  Bytes p = Build(Spec(h, false, 0, 0));
  const Verdict v = Send(*b, p, kRestoredAt);
  EXPECT_EQ(v.reason, DropReason::kHostQuota);
}

TEST(StateFile, TcpStateAndLifetimesAreKept) {
  EngineConfig c = BaseConfig();
  c.timeouts.tcp_established_ms = 3'600'000;
  c.timeouts.tcp_transitory_ms = 240'000;
  NullEventSink sink;
  auto a = MakeEngine(c, &sink);
  Flow est{4, kProtoTcp, "10.1.0.2", "203.0.113.7", 25002, 443, true};
  Flow half{6, kProtoTcp, "fd00:1::2", "2001:db8:1::7", 25002, 443, false};
  RunFlows(*a, {est, half}, 0);
  auto b = MakeEngine(c, &sink);
  // Saved 10 s after the packets, restored after 20 s down.
  ASSERT_TRUE(RestoreState(*b, EncodeState(*a, 10'000, kUnix), kRestoredAt, kUnix + 20'000).ok());
  int seen = 0;
  b->shard(0).v4()->tcp.ForEachSession([&](const auto&, const auto& s) {
    ++seen;
    EXPECT_TRUE(s.tcp_state & kTcpStEstablished);
    EXPECT_EQ(s.timeout_class, 1);
    EXPECT_EQ(s.expires_ms - kRestoredAt, 1 + 3'600'000 - 30'000);  // its last packet came at 1
  });
  b->shard(0).v6()->tcp.ForEachSession([&](const auto&, const auto& s) {
    ++seen;
    EXPECT_EQ(s.tcp_state, kTcpStSynOut);
    EXPECT_EQ(s.timeout_class, 0);
    EXPECT_EQ(s.expires_ms - kRestoredAt, 2 + 240'000 - 30'000);
  });
  EXPECT_EQ(seen, 2);
  // Expiry works on the new clock: the half-open one goes first.
  EXPECT_EQ(b->shard(0).Expire(kRestoredAt + 240'000), 1u);
  EXPECT_EQ(b->shard(0).v6()->tcp.session_count(), 0u);
  EXPECT_EQ(b->shard(0).v4()->tcp.session_count(), 1u);
  EXPECT_EQ(b->shard(0).Expire(kRestoredAt + 3'600'000), 1u);
  EXPECT_EQ(Sessions(*b), 0u);
}

TEST(StateFile, ExpiredSessionsAreNotRestored) {
  EngineConfig c = BaseConfig();  // UDP 5 min, ICMP 60 s, TCP established 2 h 4 min
  NullEventSink sink;
  auto a = MakeEngine(c, &sink);
  std::vector<Flow> flows;
  for (const Flow& f : Flows()) {
    if (f.answered) flows.push_back(f);
  }
  RunFlows(*a, flows, 0);
  size_t tcp = 0, udp = 0, icmp = 0;
  for (const Flow& f : flows) (f.proto == kProtoTcp ? tcp : f.proto == kProtoUdp ? udp : icmp)++;
  ASSERT_EQ(icmp, 12u);

  // Saved 90 s on: the echo sessions were due (not yet expired by a worker)
  // and are not written.
  const std::string bytes = EncodeState(*a, 90'000, kUnix);
  {
    auto b = MakeEngine(c, &sink);
    auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix);
    ASSERT_TRUE(counts.ok()) << counts.status();
    EXPECT_EQ(counts->sessions, tcp + udp);
    EXPECT_EQ(counts->expired, 0u);
  }
  // Down 5 min more: UDP has run out as well.
  {
    auto b = MakeEngine(c, &sink);
    auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix + 300'000);
    ASSERT_TRUE(counts.ok()) << counts.status();
    EXPECT_EQ(counts->sessions, tcp);
    EXPECT_EQ(counts->expired, udp);
    EXPECT_EQ(testing::CheckEngineTables(*b, kRestoredAt), "");
    for (uint32_t i = 0; i < b->shards(); ++i) {
      EXPECT_EQ(b->shard(i).v4()->udp.mapping_count() + b->shard(i).v6()->udp.mapping_count(), 0u);
    }
  }
  // A wall clock set back counts as no time down.
  {
    auto b = MakeEngine(c, &sink);
    auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix - 3'600'000);
    ASSERT_TRUE(counts.ok()) << counts.status();
    EXPECT_EQ(counts->sessions, tcp + udp);
  }
}

TEST(StateFile, ShorterTimeoutNowCutsLifetimes) {
  EngineConfig c = BaseConfig();
  NullEventSink sink;
  auto a = MakeEngine(c, &sink);
  Flow f{4, kProtoUdp, "10.1.0.2", "203.0.113.7", 25002, 53, true};
  RunFlows(*a, {f}, 0);
  c.timeouts.udp_ms = kMinUdpTimeoutMs;  // 2 min instead of 5
  auto b = MakeEngine(c, &sink);
  ASSERT_TRUE(RestoreState(*b, EncodeState(*a, 1'000, kUnix), kRestoredAt, kUnix).ok());
  b->shard(0).v4()->udp.ForEachSession(
      [&](const auto&, const auto& s) { EXPECT_EQ(s.expires_ms, kRestoredAt + kMinUdpTimeoutMs); });
  EXPECT_EQ(testing::CheckEngineTables(*b, kRestoredAt), "");
}

TEST(StateFile, RefusedIntoTablesThatAreNotEmpty) {
  NullEventSink sink;
  auto a = MakeEngine(BaseConfig(), &sink);
  Flow f{4, kProtoUdp, "10.1.0.2", "203.0.113.7", 25002, 53, true};
  RunFlows(*a, {f}, 0);
  const std::string bytes = EncodeState(*a, 1'000, kUnix);
  auto counts = RestoreState(*a, bytes, 2'000, kUnix);
  ASSERT_FALSE(counts.ok());
  EXPECT_THAT(counts.status().message(), HasSubstr("not empty"));
  EXPECT_EQ(Sessions(*a), 1u);
}

// ---------------------------------------------------------------------------
// Refusals. Each leaves the engine as it was: empty, nothing counted.

class Refusals : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig c = BaseConfig();
    c.shards = 2;
    saver_ = MakeEngine(c, &sink_);
    std::vector<Flow> flows = Flows();
    flows.resize(flows.size() / 4);  // a small file: v4 TCP and UDP
    RunFlows(*saver_, flows, 0);
    bytes_ = EncodeState(*saver_, 1'000, kUnix);
    saver_inserted_ = sink_.inserted;
    target_ = MakeEngine(c, &sink_);
  }

  // Restores into the target, which must stay untouched when refused.
  std::string Refusal(const std::string& bytes) {
    auto counts = RestoreState(*target_, bytes, kRestoredAt, kUnix);
    EXPECT_EQ(Sessions(*target_), 0u);
    EXPECT_EQ(Inserted(*target_), 0u);
    EXPECT_EQ(sink_.inserted, saver_inserted_);
    if (counts.ok()) return "<restored " + std::to_string(counts->sessions) + " sessions>";
    EXPECT_FALSE(counts.status().message().empty());
    return std::string(counts.status().message());
  }

  static std::string WithCrc(std::string b) {
    b.resize(b.size() - 4);
    const uint32_t crc = Crc32c(b);
    for (int i = 0; i < 4; ++i) b.push_back(char(crc >> (8 * i)));
    return b;
  }

  CountingSink sink_;
  std::unique_ptr<Engine> saver_, target_;
  std::string bytes_;
  int saver_inserted_ = 0;
};

TEST_F(Refusals, TheIntactFileRestores) {
  auto counts = RestoreState(*target_, bytes_, kRestoredAt, kUnix);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->sessions, Sessions(*saver_));
}

TEST_F(Refusals, AnyChangedByte) {
  ASSERT_GT(bytes_.size(), 100u);
  for (size_t i = 0; i < bytes_.size(); ++i) {
    std::string b = bytes_;
    b[i] = char(b[i] ^ (1 << (i % 8)));
    const std::string why = Refusal(b);
    EXPECT_THAT(why, ::testing::Not(HasSubstr("<restored"))) << "byte " << i;
  }
  EXPECT_THAT(Refusal(std::string(bytes_).replace(0, 1, "X")), HasSubstr("not a natd state file"));
  std::string body = bytes_;
  body[bytes_.size() - 10] ^= 0x40;
  EXPECT_THAT(Refusal(body), HasSubstr("checksum mismatch"));
}

TEST_F(Refusals, CutAtEveryLength) {
  for (size_t n = 0; n < bytes_.size(); ++n) {
    const std::string why = Refusal(bytes_.substr(0, n));
    EXPECT_THAT(why, HasSubstr("truncated")) << n << " bytes";
  }
  EXPECT_THAT(Refusal(bytes_ + '\0'), HasSubstr("bytes after"));
  EXPECT_THAT(Refusal(""), HasSubstr("truncated"));
  EXPECT_THAT(Refusal("GIF89a..."), HasSubstr("not a natd state file"));
}

TEST_F(Refusals, AnotherVersion) {
  std::string b = bytes_;
  b[8] = 1;
  EXPECT_THAT(Refusal(b), HasSubstr("format version 1; this natd reads version 2"));
  EXPECT_THAT(Refusal(WithCrc(b)), HasSubstr("format version 1; this natd reads version 2"));
}

// Random damage behind a valid checksum (as a fuzzer that fixes the CRC
// would make it): every file is either refused, restoring nothing, or
// restored into tables that keep every invariant.
TEST_F(Refusals, DamageBehindAValidChecksumNeverBreaksATable) {
  Rng rng(42);
  int restored = 0, refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string b = bytes_;
    const uint32_t first = 28;  // after magic, version, length and time
    const uint32_t span = uint32_t(b.size() - 4 - first);
    const uint32_t changes = 1 + rng.Below(4);
    for (uint32_t k = 0; k < changes; ++k) {
      const uint32_t at = first + rng.Below(span);
      switch (rng.Below(3)) {
        case 0:
          b[at] = char(rng.Below(256));
          break;
        case 1:
          b[at] ^= char(1 << rng.Below(8));
          break;
        default:
          b[at] = char(rng.Below(2) ? 0 : 0xff);
          break;
      }
    }
    if (rng.Below(8) == 0) b.erase(first + rng.Below(span), 1 + rng.Below(16));
    if (b.size() < first + 4) continue;
    const uint64_t length = b.size();
    for (int i = 0; i < 8; ++i) b[12 + i] = char(length >> (8 * i));
    b = WithCrc(b);
    auto counts = RestoreState(*target_, b, kRestoredAt, kUnix);
    if (counts.ok()) {
      ++restored;
      ASSERT_EQ(testing::CheckEngineTables(*target_, kRestoredAt), "") << "round " << round;
      ASSERT_EQ(Sessions(*target_), counts->sessions);
      for (uint32_t i = 0; i < target_->shards(); ++i) target_->shard(i).Flush();
    } else {
      ++refused;
      ASSERT_EQ(Sessions(*target_), 0u) << "round " << round << ": " << counts.status();
    }
  }
  EXPECT_GT(restored, 0);
  EXPECT_GT(refused, 0);
}

TEST(StateFileFingerprint, AnotherConfigurationIsRefused) {
  NullEventSink sink;
  EngineConfig base = BaseConfig();
  base.shards = 2;
  auto a = MakeEngine(base, &sink);
  RunFlows(*a, Flows(), 0);
  const std::string bytes = EncodeState(*a, 1'000, kUnix);
  struct Case {
    const char* want;
    void (*change)(EngineConfig&);
  };
  const Case cases[] = {
      {"the worker count was 2, is now 3", [](EngineConfig& c) { c.shards = 3; }},
      {"the port set was 10000 ports", [](EngineConfig& c) { c.ports = *PortSet::Parse("20000-29998"); }},
      {"the port set", [](EngineConfig& c) { c.ports = *PortSet::Parse("20001-30000"); }},
      {"the global IPv4 address was 198.51.100.1, is now 198.51.100.2",
       [](EngineConfig& c) { ParseIp4("198.51.100.2", &*c.global4); }},
      {"the global IPv4 address was 198.51.100.1, is now none", [](EngineConfig& c) { c.global4.reset(); }},
      {"the global IPv6 address", [](EngineConfig& c) { ParseIp6("2001:db8:ffff::2", &*c.global6); }},
      {"the TCP behaviour was port-restricted-cone, is now symmetric",
       [](EngineConfig& c) { c.tcp = *PresetByName("symmetric"); }},
      {"the UDP behaviour", [](EngineConfig& c) { c.udp = *PresetByName("full-cone"); }},
      {"the ICMP behaviour", [](EngineConfig& c) { c.icmp = *PresetByName("quasi-symmetric"); }},
      {"the IPv4 pool's other addresses was none, is now 198.51.100.9",
       [](EngineConfig& c) { ParseIp4("198.51.100.9", &c.more_global4.emplace_back()); }},
      {"the IPv6 pool's other addresses", [](EngineConfig& c) { ParseIp6("2001:db8:ffff::9", &c.more_global6.emplace_back()); }},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.want);
    EngineConfig c = base;
    k.change(c);
    CountingSink counting;
    auto b = MakeEngine(c, &counting);
    auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix);
    ASSERT_FALSE(counts.ok());
    EXPECT_THAT(counts.status().message(), HasSubstr("written for another configuration"));
    EXPECT_THAT(counts.status().message(), HasSubstr(k.want));
    EXPECT_EQ(Sessions(*b), 0u);
    EXPECT_EQ(counting.inserted, 0);
  }
  // What may change: timeouts, capacity, quotas, the seed.
  EngineConfig c = base;
  c.timeouts.udp_ms = 600'000;
  c.max_sessions = 8192;
  c.max_sessions_per_host = 4;
  c.seed = 77;
  auto b = MakeEngine(c, &sink);
  auto counts = RestoreState(*b, bytes, kRestoredAt, kUnix);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->sessions, Sessions(*a));
}

TEST(StateFileFingerprint, MoreSessionsThanTheCapacityNowIsRefused) {
  NullEventSink sink;
  EngineConfig c = BaseConfig();
  auto a = MakeEngine(c, &sink);
  RunFlows(*a, Flows(), 0);  // 8 per table
  c.max_sessions = 4;
  auto b = MakeEngine(c, &sink);
  auto counts = RestoreState(*b, EncodeState(*a, 1'000, kUnix), kRestoredAt, kUnix);
  ASSERT_FALSE(counts.ok());
  EXPECT_THAT(counts.status().message(), HasSubstr("more than the table's capacity of 4"));
  EXPECT_EQ(Sessions(*b), 0u);
}

// ---------------------------------------------------------------------------
// Files with a valid checksum whose entries break a table's rules, written
// here field by field after the layout in state_file.h (which this also
// pins down).

class Forged : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = BaseConfig();
    config_.shards = 2;  // shard 0: 20000-24999, shard 1: 25000-29999
    config_.max_sessions = 64;
    MakeHeader();
  }

  // The header and fingerprint of config_: an empty engine's file less its
  // table count and CRC.
  void MakeHeader() {
    NullEventSink sink;
    auto empty = MakeEngine(config_, &sink);
    header_ = EncodeState(*empty, 0, kUnix);
    header_.resize(header_.size() - 4 - 4);
  }

  struct Session {
    std::string remote = "203.0.113.7";
    uint16_t remote_port = 443;
    uint8_t tcp_state = 0;
    uint8_t timeout_class = 0;
    int64_t remaining_ms = 60'000;
  };
  struct Mapping {
    std::string inside = "10.1.0.2";
    uint16_t inside_port = 21000;
    uint16_t external_port = 21000;
    std::string remote_key = "0.0.0.0";
    uint16_t remote_port_key = 0;
    int64_t age_ms = 5'000, idle_ms = 1'000;
    std::vector<Session> sessions = {Session{}};
  };
  struct Table {
    uint32_t shard = 0;
    uint8_t family = 4;
    uint8_t proto = kProtoUdp;
    uint8_t pool = 0;  // which global address of the family
    std::vector<Mapping> mappings = {Mapping{}};
  };

  static void Le(std::string* b, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b->push_back(char(v >> (8 * i)));
  }
  static void Address(std::string* b, int family, const std::string& text) {
    uint8_t raw[16] = {};
    if (family == 4) {
      Ip4 a;
      EXPECT_TRUE(ParseIp4(text, &a)) << text;
      a.Store(raw);
    } else {
      Ip6 a;
      EXPECT_TRUE(ParseIp6(text, &a)) << text;
      a.Store(raw);
    }
    b->append(reinterpret_cast<const char*>(raw), family == 4 ? 4 : 16);
  }

  std::string File(const std::vector<Table>& tables) const {
    std::string b = header_;
    Le(&b, tables.size(), 4);
    for (const Table& t : tables) {
      Le(&b, t.shard, 4);
      Le(&b, t.family, 1);
      Le(&b, t.proto, 1);
      Le(&b, t.pool, 1);
      Le(&b, t.mappings.size(), 4);
      for (const Mapping& m : t.mappings) {
        Address(&b, t.family, m.inside);
        Le(&b, m.inside_port, 2);
        Le(&b, m.external_port, 2);
        Address(&b, t.family, m.remote_key);
        Le(&b, m.remote_port_key, 2);
        Le(&b, uint64_t(m.age_ms), 8);
        Le(&b, uint64_t(m.idle_ms), 8);
        for (int i = 0; i < 4; ++i) Le(&b, 7, 8);
        Le(&b, m.sessions.size(), 4);
        for (const Session& s : m.sessions) {
          Address(&b, t.family, s.remote);
          Le(&b, s.remote_port, 2);
          Le(&b, s.tcp_state, 1);
          Le(&b, s.timeout_class, 1);
          Le(&b, uint64_t(s.remaining_ms), 8);
        }
      }
    }
    const uint64_t length = b.size() + 4;
    for (int i = 0; i < 8; ++i) b[12 + i] = char(length >> (8 * i));
    Le(&b, Crc32c(b), 4);
    return b;
  }

  // "" when restored (then checked against the fuzz invariants), else why not.
  std::string Restore(const std::vector<Table>& tables) {
    CountingSink sink;
    auto e = MakeEngine(config_, &sink);
    auto counts = RestoreState(*e, File(tables), kRestoredAt, kUnix);
    if (counts.ok()) {
      EXPECT_EQ(testing::CheckEngineTables(*e, kRestoredAt), "");
      return "";
    }
    EXPECT_EQ(Sessions(*e), 0u);
    EXPECT_EQ(sink.inserted, 0);
    return std::string(counts.status().message());
  }

  EngineConfig config_;
  std::string header_;
};

TEST_F(Forged, AWellFormedFileRestores) {
  Table udp;
  Table tcp;
  tcp.proto = kProtoTcp;
  tcp.mappings[0].sessions[0].tcp_state = kTcpStSynOut | kTcpStSynIn | kTcpStEstablished;
  tcp.mappings[0].sessions[0].timeout_class = 1;
  Table v6;
  v6.family = 6;
  v6.shard = 1;
  v6.proto = kProtoIcmp6;
  v6.mappings[0].inside = "fd00::2";
  v6.mappings[0].remote_key = "::";
  v6.mappings[0].external_port = 26000;
  v6.mappings[0].sessions[0].remote = "2001:db8::7";
  v6.mappings[0].sessions[0].remote_port = 0;
  EXPECT_EQ(Restore({udp, tcp, v6}), "");
  EXPECT_EQ(Restore({}), "");
}

TEST_F(Forged, InconsistentEntriesAreRefused) {
  auto refused = [&](const std::vector<Table>& t, const std::string& want) {
    SCOPED_TRACE(want);
    EXPECT_THAT(Restore(t), HasSubstr(want));
  };
  Table t;
  t.mappings[0].external_port = 26000;  // shard 1's
  refused({t}, "shard 0 udp4: mapping 0 (inside port 21000, external port 26000): the external port is not in shard 0");
  t = Table{};
  t.mappings[0].external_port = 1000;  // in no shard
  refused({t}, "not in shard 0");
  t = Table{};
  t.mappings.push_back(Mapping{});
  refused({t}, "its key is there twice");
  t = Table{};
  t.mappings.push_back(Mapping{});
  t.mappings[1].inside_port = 21001;  // another endpoint, the same port (exclusive)
  refused({t}, "the external port belongs to another mapping");
  t = Table{};
  t.mappings[0].sessions.push_back(Session{});
  refused({t}, "there twice");
  t = Table{};
  t.mappings[0].remote_key = "203.0.113.7";  // EIM keys have no remote part
  refused({t}, "its key is not one of behaviour port-restricted-cone");
  t = Table{};
  t.proto = kProtoTcp;
  t.mappings[0].sessions[0].tcp_state = kTcpStEstablished;  // timeout class should be 1
  refused({t}, "TCP state 32 with timeout class 0");
  t = Table{};
  t.mappings[0].sessions[0].timeout_class = 1;
  refused({t}, "TCP state in a table of protocol 17");
  t = Table{};
  t.proto = kProtoIcmp;
  refused({t}, "an echo session has no remote port");
  t = Table{};
  t.mappings[0].sessions.clear();
  refused({t}, "no session");
  t = Table{};
  t.mappings[0].sessions[0].remaining_ms = 0;
  refused({t}, "lifetime 0 ms");
  t = Table{};
  t.mappings[0].idle_ms = t.mappings[0].age_ms + 1;
  refused({t}, "age 5000 ms, idle 5001 ms");
  t = Table{};
  refused({t, t}, "shard 0 udp4: the table is there twice");
  t = Table{};
  t.shard = 2;
  refused({t}, "no such table");
  t = Table{};
  t.proto = kProtoIcmp6;  // not an IPv4 protocol
  refused({t}, "no such table");
  t = Table{};
  for (uint16_t i = 0; i < 33; ++i) {  // 64 sessions over 2 shards: 32 per table
    Mapping m;
    m.inside_port = m.external_port = uint16_t(21000 + i);
    t.mappings.push_back(m);
  }
  t.mappings.erase(t.mappings.begin());
  refused({t}, "33 sessions, more than the table's capacity of 32");
  // A valid table after a broken one changes nothing: all or nothing.
  Table good;
  Table bad;
  bad.shard = 1;
  bad.mappings[0].external_port = 21000;
  refused({good, bad}, "shard 1 udp4");
}

// Per-remote-address sharing (quasi-restricted-cone): a port may carry one
// mapping per remote address, never two.
TEST_F(Forged, PortSharedPerRemoteAddress) {
  config_.udp = *PresetByName("quasi-restricted-cone");  // ADM: the key holds the remote address
  MakeHeader();
  Table t;
  t.mappings[0].remote_key = "203.0.113.7";
  Mapping other;
  other.inside_port = 21001;
  other.remote_key = "203.0.113.8";
  other.sessions[0].remote = "203.0.113.8";
  t.mappings.push_back(other);
  EXPECT_EQ(Restore({t}), "") << "one port, two remote addresses";
  t.mappings[1].remote_key = "203.0.113.7";
  t.mappings[1].sessions[0].remote = "203.0.113.7";
  t.mappings[1].sessions[0].remote_port = 444;
  EXPECT_THAT(Restore({t}), HasSubstr("the external port belongs to another mapping for this address"));
  // An address-dependent mapping's sessions are all to its remote address.
  t.mappings.pop_back();
  t.mappings[0].sessions[0].remote = "203.0.113.9";
  EXPECT_THAT(Restore({t}), HasSubstr("not of this mapping's key (behaviour quasi-restricted-cone)"));
}

}  // namespace
}  // namespace natd
