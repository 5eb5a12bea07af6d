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

#include "bench/engine_workload.h"

namespace natd {
namespace {

void BM_Established(benchmark::State& state) {
  const int family = int(state.range(0));
  const uint8_t proto = uint8_t(state.range(1));
  const uint32_t n = uint32_t(state.range(2));
  bench::Workload w(family, proto, n);
  if (!w.ok()) {
    state.SkipWithError("session setup failed");
    return;
  }
  size_t k = 0;
  for (auto _ : state) benchmark::DoNotOptimize(w.TranslateOne(k++));
  state.SetItemsProcessed(int64_t(state.iterations()));
  Shard& shard = w.shard();
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
  constexpr uint32_t kRound = bench::kPorts;
  NullEventSink sink;
  auto engine = Engine::Create(bench::BenchConfig(kRound), &sink);
  Shard& shard = (*engine)->shard(0);
  const testing::Bytes tmpl = bench::Template(4, 17);
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
    bench::PatchPacket(buf.data(), 4, i++);
    benchmark::DoNotOptimize(shard.ProcessOne(buf.data(), uint32_t(buf.size()), now));
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_SessionSetup);

}  // namespace
}  // namespace natd

BENCHMARK_MAIN();
