// Engine fast-path benchmarks: packets/s per core through one shard.
//
// BM_Established: N live sessions (EIM mappings, each inside endpoint talking
// to N / 64512 remote ends when N exceeds the port space), then 64-byte
// packets, each for a session picked at random, translated in place. The
// template packet is patched with the session's addresses and ports, so every
// iteration does a real table lookup over all N sessions.
// BM_SessionSetup: new sessions per second, expired between rounds.
//
// Run: bazel run -c opt //bench:engine_bench
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "nat/engine.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

constexpr uint32_t kPorts = 64512;  // 1024-65535

struct Endpoints {
  std::vector<uint32_t> inside;  // raw IPv4 / low word of IPv6
  std::vector<uint16_t> inside_port;
  std::vector<uint32_t> remote;
  std::vector<uint16_t> remote_port;
};

EngineConfig BenchConfig(uint32_t sessions) {
  EngineConfig c;
  c.global4 = Ip4{};
  c.global6 = Ip6{};
  ParseIp4("198.19.0.100", &*c.global4);
  ParseIp6("2001:db8:19::100", &*c.global6);
  c.tcp = c.udp = *PresetByName("full-cone");
  c.max_sessions = sessions + 1;
  c.seed = 1;
  return c;
}

// Session i: inside endpoint i % kPorts (address 10.(i/65536).x.y style), remote i / kPorts.
void PatchPacket(uint8_t* p, int family, uint32_t i) {
  const uint32_t ep = i % kPorts, remote = i / kPorts;
  uint32_t in_addr = __builtin_bswap32(0x0a000000u | (ep >> 8));
  uint16_t in_port = __builtin_bswap16(uint16_t(1024 + (ep & 0xff)));
  uint32_t r_addr = __builtin_bswap32(0xc6130000u | remote);  // 198.19.x.y
  const size_t src = family == 4 ? 12 : 20, dst = family == 4 ? 16 : 36, l4 = family == 4 ? 20 : 40;
  std::memcpy(p + src, &in_addr, 4);
  std::memcpy(p + dst, &r_addr, 4);
  std::memcpy(p + l4, &in_port, 2);
}

testing::Bytes Template(int family, uint8_t proto) {
  testing::PacketSpec sp;
  sp.family = family;
  sp.src = family == 4 ? "10.0.0.1" : "fd00:18::0:0";
  sp.dst = family == 4 ? "198.19.0.2" : "2001:db8:19::0:0";
  sp.proto = proto;
  sp.sport = 1024;
  sp.dport = 443;
  sp.tcp_flags = 0x10;
  const size_t hdr = (family == 4 ? 20 : 40) + (proto == 6 ? 20 : 8);
  sp.payload.assign(hdr < 64 ? 64 - hdr : 0, 0xab);
  return testing::Build(sp);
}

void BM_Established(benchmark::State& state) {
  const int family = int(state.range(0));
  const uint8_t proto = uint8_t(state.range(1));
  const uint32_t n = uint32_t(state.range(2));
  NullEventSink sink;
  auto engine = Engine::Create(BenchConfig(n), &sink);
  Shard& shard = (*engine)->shard(0);
  const testing::Bytes tmpl = Template(family, proto);
  std::vector<uint8_t> buf(tmpl.size());
  for (uint32_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), tmpl.data(), tmpl.size());
    PatchPacket(buf.data(), family, i);
    buf[family == 4 ? 33 : 53] = 0x02;  // TCP: SYN opens the session
    if (shard.ProcessOne(buf.data(), uint32_t(buf.size()), 0).action != Action::kForward) {
      state.SkipWithError("session setup failed");
      return;
    }
  }
  // A random walk over the sessions, precomputed.
  std::vector<uint32_t> order(1 << 20);
  Rng rng(7);
  for (auto& o : order) o = rng.Below(n);
  size_t k = 0;
  for (auto _ : state) {
    std::memcpy(buf.data(), tmpl.data(), tmpl.size());
    PatchPacket(buf.data(), family, order[k++ & (order.size() - 1)]);
    benchmark::DoNotOptimize(shard.ProcessOne(buf.data(), uint32_t(buf.size()), 1));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.counters["sessions"] = double(shard.v4()->tcp.session_count() + shard.v4()->udp.session_count() +
                                      shard.v6()->tcp.session_count() + shard.v6()->udp.session_count());
}

void EstablishedArgs(benchmark::internal::Benchmark* b) {
  for (int family : {4, 6}) {
    for (int proto : {6, 17}) {
      for (int n : {64512, 1032192}) b->Args({family, proto, n});
    }
  }
  b->ArgNames({"family", "proto", "sessions"})->Unit(benchmark::kNanosecond);
}
BENCHMARK(BM_Established)->Apply(EstablishedArgs);

void BM_SessionSetup(benchmark::State& state) {
  constexpr uint32_t kRound = 64512;
  NullEventSink sink;
  auto engine = Engine::Create(BenchConfig(kRound), &sink);
  Shard& shard = (*engine)->shard(0);
  const testing::Bytes tmpl = Template(4, 17);
  std::vector<uint8_t> buf(tmpl.size());
  uint32_t i = 0;
  int64_t now = 0;
  for (auto _ : state) {
    if (i == kRound) {
      state.PauseTiming();
      now += 10 * 60 * 1000;
      shard.Expire(now);
      i = 0;
      state.ResumeTiming();
    }
    std::memcpy(buf.data(), tmpl.data(), tmpl.size());
    PatchPacket(buf.data(), 4, i++);
    benchmark::DoNotOptimize(shard.ProcessOne(buf.data(), uint32_t(buf.size()), now));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_SessionSetup);

}  // namespace
}  // namespace natd

BENCHMARK_MAIN();
