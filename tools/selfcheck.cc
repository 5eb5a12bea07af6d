// natd's engine self-check: what `bash tools/run.sh` runs until the TUN
// dataplane exists. It pushes real packets through the translation engine,
// checks every rewritten packet's checksums from scratch, shows each preset's
// RFC 4787 behaviour as a table, prints a status dump, and exits non-zero if
// anything disagrees with what the preset promises.
#include <cstdio>
#include <string>
#include <vector>

#include "nat/engine.h"
#include "nat/testing/fixtures.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Build;
using testing::Bytes;
using testing::MakeSpec;
using testing::PacketSpec;

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("  FAIL: %s\n", what.c_str());
  }
}

// Runs the golden fixtures: exact bytes out, verdicts and drop counters.
void RunFixtures() {
  const auto fixtures = testing::AllFixtures();
  int ok = 0;
  for (const auto& f : fixtures) {
    NullEventSink sink;
    auto engine = Engine::Create(testing::FixtureConfig(), &sink);
    if (!engine.ok()) {
      Check(false, "fixture config: " + std::string(engine.status().message()));
      return;
    }
    Shard& shard = (*engine)->shard(0);
    for (Bytes setup : f.setup) shard.ProcessOne(setup.data(), uint32_t(setup.size()), 1000);
    Bytes pkt = f.input;
    Verdict v = shard.ProcessOne(pkt.data(), uint32_t(pkt.size()), 1000);
    bool good = v == f.verdict && (v.action != Action::kForward || pkt == f.expected);
    if (v.action == Action::kForward) good = good && testing::OracleChecksumsValid(pkt);
    Check(good, "fixture " + f.name);
    ok += good;
  }
  std::printf("golden packets: %d of %zu translated exactly as expected\n\n", ok, fixtures.size());
}

// One inside endpoint, three remote ends: which external ports it gets and
// which unsolicited inbound packets each preset lets in.
void RunMatrix() {
  std::printf("%-28s %-10s %6s %6s %6s   %-8s %-8s %-8s\n", "preset (UDP)", "behaviour", "->Y1:a", "->Y1:b",
              "->Y2:a", "Y1:c in", "Y3:a in", "Y1:a in");
  for (const Behavior& b : AllPresets()) {
    EngineConfig c;
    c.global4 = Ip4{};
    ParseIp4("198.19.0.100", &*c.global4);
    c.udp = b;
    c.max_sessions = 1024;
    c.seed = 42;
    NullEventSink sink;
    auto engine = Engine::Create(c, &sink);
    Shard& shard = (*engine)->shard(0);
    auto out = [&](const char* dst, uint16_t dport) -> int {
      PacketSpec sp = MakeSpec(4, "198.18.0.2", dst, 17, 40000, dport);
      sp.payload = {1, 2, 3};
      Bytes p = Build(sp);
      if (shard.ProcessOne(p.data(), uint32_t(p.size()), 0).action != Action::kForward) return -1;
      Check(testing::OracleChecksumsValid(p), std::string(b.name) + ": outbound checksum");
      return testing::Be16(p, 20);
    };
    auto in = [&](const char* src, uint16_t sport, int ext) -> bool {
      PacketSpec sp = MakeSpec(4, src, "198.19.0.100", 17, sport, uint16_t(ext));
      Bytes p = Build(sp);
      bool fwd = shard.ProcessOne(p.data(), uint32_t(p.size()), 0).action == Action::kForward;
      if (fwd) {
        Check(testing::OracleChecksumsValid(p), std::string(b.name) + ": inbound checksum");
        Check(testing::Be16(p, 22) == 40000, std::string(b.name) + ": inbound reaches the inside port");
      }
      return fwd;
    };
    int p1 = out("198.19.0.2", 5000), p2 = out("198.19.0.2", 5001), p3 = out("198.19.0.3", 5000);
    bool other_port = in("198.19.0.2", 5999, p1);
    bool other_addr = in("198.51.100.2", 5000, p1);
    bool same = in("198.19.0.2", 5000, p1);
    std::string beh = std::string(MappingName(b.mapping)) + "/" + std::string(FilteringName(b.filtering));
    std::printf("%-28s %-10s %6d %6d %6d   %-8s %-8s %-8s\n", std::string(b.name).c_str(), beh.c_str(), p1, p2, p3,
                other_port ? "pass" : "drop", other_addr ? "pass" : "drop", same ? "pass" : "drop");
    const bool eim = b.mapping == Dependence::kEndpointIndependent;
    if (eim) Check(p1 == p2 && p2 == p3, std::string(b.name) + ": EIM keeps one external port");
    if (b.mapping == Dependence::kAddressDependent && b.strategy == PortStrategy::kIncrement) {
      Check(p1 == p2 && p3 != p1, std::string(b.name) + ": ADM gives a new port per address");
    }
    Check(same, std::string(b.name) + ": the reply is let in");
    Check(other_addr == (b.filtering == Dependence::kEndpointIndependent),
          std::string(b.name) + ": another address is filtered as the preset says");
    Check(other_port == (b.filtering != Dependence::kAddressPortDependent),
          std::string(b.name) + ": another port is filtered as the preset says");
  }
  std::printf("\n");
}

void RunStatus() {
  EngineConfig c;
  c.global4 = Ip4{};
  c.global6 = Ip6{};
  ParseIp4("198.19.0.100", &*c.global4);
  ParseIp6("2001:db8:19::100", &*c.global6);
  c.max_sessions = 1024;
  c.shards = 2;
  NullEventSink sink;
  auto engine = Engine::Create(c, &sink);
  std::vector<Bytes> pkts = {
      Build(MakeSpec(4, "198.18.0.2", "198.19.0.2", 6, 41000, 80)),
      Build(MakeSpec(4, "198.18.0.2", "198.19.0.2", 1, 7, 0)),
      Build(MakeSpec(6, "fd00:18::2", "2001:db8:19::2", 17, 5353, 53)),
      Build(MakeSpec(4, "198.18.0.2", "192.0.2.2", 17, 1, 1)),
  };
  for (Bytes& p : pkts) {
    uint32_t s = (*engine)->ShardOf(p.data(), p.size());
    Verdict v = (*engine)->shard(s).ProcessOne(p.data(), uint32_t(p.size()), 0);
    if (v.action == Action::kStatus) {
      std::string dump;
      for (uint32_t i = 0; i < (*engine)->shards(); ++i) (*engine)->shard(i).AppendStatus(&dump, 5000);
      std::printf("status (a packet to 192.0.2.2 asked for it):\n%s%s\n", dump.c_str(),
                  (*engine)->CountersText().c_str());
    }
  }
}

}  // namespace
}  // namespace natd

int main() {
  std::printf("natd engine self-check\n\n");
  natd::RunFixtures();
  natd::RunMatrix();
  natd::RunStatus();
  if (natd::failures) {
    std::printf("self-check FAILED: %d problem(s)\n", natd::failures);
    return 1;
  }
  std::printf("self-check passed\n");
  return 0;
}
