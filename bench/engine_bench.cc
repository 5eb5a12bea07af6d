// Engine fast-path benchmarks: packets/s per core through one shard.
//
// BM_Established: N live sessions (EIM mappings, each inside endpoint talking
// to N / 64512 remote ends when N exceeds the port space), then 64-byte
// packets, each for a session picked at random, translated in place. The
// template packet is patched with the session's addresses and ports, so every
// iteration does a real table lookup over all N sessions.
// BM_EstablishedBatch: the same, in batches of 64 (natd's --batch) through
// Shard::Process, as the dataplane's workers run it; IPv4 and IPv6 (the
// look-ahead's costs differ by family: an IPv6 key, session and mapping are
// larger).
// BM_SessionSetup: new sessions per second, expired between rounds.
// BM_Expire: the cost of expiring one session (a full table timing out).
// BM_Memory: bytes the allocator holds per session, table full (capacity is
// allocated at start, so this is also the cost of the capacity).
// BM_Scaling: BM_Established on 1, 2, 4, 8 threads, each with its own shard,
// as the dataplane runs them; items_per_second is the sum over threads.
// BM_Floor: BM_EstablishedBatch's packets through LookupFloor (lookup_floor.h),
// the least a fast path can do for them (layout 0: key -> index -> entry,
// natd's layout; 1: the entry in the hash slot): this machine's floor, which
// the engine's figures are read against, as a ratio from the same run.
//
// Run: bazel run -c opt //bench:engine_bench
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstring>
#include <vector>

#include "bench/engine_workload.h"
#include "bench/lookup_floor.h"

namespace natd {
namespace {

// The last workload built, kept for the next benchmark run of the same
// arguments: Google Benchmark calls a benchmark several times while it
// settles the iteration count, and setting up 16515072 sessions takes most
// of a minute each time. (Only one is kept: at that size one engine holds
// about 6 GB.) Its packets all carry the same time, so no session expires
// between runs.
struct SharedWorkload {
  static bench::Workload& Get(int family, uint8_t proto, uint32_t n) {
    auto& s = Instance();
    if (!s.w || s.family != family || s.proto != proto || s.n != n) {
      s.w.reset();  // before the next one is built: never two at a time
      s.w = std::make_unique<bench::Workload>(family, proto, n);
      s.family = family, s.proto = proto, s.n = n;
    }
    return *s.w;
  }
  static void Release() { Instance().w.reset(); }

 private:
  static SharedWorkload& Instance() {
    static SharedWorkload s;
    return s;
  }
  std::unique_ptr<bench::Workload> w;
  int family = 0;
  uint8_t proto = 0;
  uint32_t n = 0;
};

void BM_Established(benchmark::State& state) {
  const int family = int(state.range(0));
  const uint8_t proto = uint8_t(state.range(1));
  const uint32_t n = uint32_t(state.range(2));
  bench::Workload& w = SharedWorkload::Get(family, proto, n);
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
      for (int n : {64512, 1032192, 16515072}) b->Args({family, proto, n});
    }
  }
  b->ArgNames({"family", "proto", "sessions"})->Unit(benchmark::kNanosecond);
}
BENCHMARK(BM_Established)->Apply(EstablishedArgs);

void BM_EstablishedBatch(benchmark::State& state) {
  constexpr uint32_t kBatch = 64;
  bench::Workload& w = SharedWorkload::Get(int(state.range(0)), uint8_t(state.range(1)), uint32_t(state.range(2)));
  if (!w.ok()) {
    state.SkipWithError("session setup failed");
    return;
  }
  size_t k = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(w.TranslateBatch(k, kBatch));
    k += kBatch;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}
BENCHMARK(BM_EstablishedBatch)
    ->ArgsProduct({{4, 6}, {6, 17}, {64512, 1032192, 16515072}})
    ->ArgNames({"family", "proto", "sessions"})
    ->Unit(benchmark::kMicrosecond);

void BM_SessionSetup(benchmark::State& state) {
  SharedWorkload::Release();
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

void BM_Expire(benchmark::State& state) {
  constexpr uint32_t kRound = bench::kPorts;
  for (auto _ : state) {
    state.PauseTiming();
    bench::Workload w(4, 17, kRound);
    state.ResumeTiming();
    const size_t n = w.shard().Expire(int64_t(24) * 3600 * 1000);
    state.PauseTiming();
    if (n != kRound) state.SkipWithError("not every session expired");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kRound);
}
BENCHMARK(BM_Expire)->Unit(benchmark::kMillisecond);

// Heap in use: small chunks (uordblks) and mmap'd large ones (hblkhd).
double HeapBytes() {
  const struct mallinfo2 m = mallinfo2();
  return double(m.uordblks) + double(m.hblkhd);
}

void BM_Memory(benchmark::State& state) {
  const uint32_t n = uint32_t(state.range(0));
  for (auto _ : state) {
    const double before = HeapBytes();
    {
      bench::Workload w(4, 17, n);
      if (!w.ok()) state.SkipWithError("session setup failed");
      // The workload's own buffers (random walk, template) are not the engine's.
      const double engine = HeapBytes() - before - double(sizeof(uint32_t)) * (1 << 20);
      // Every one of the 6 tables (TCP, UDP, ICMP x IPv4, IPv6) has room for
      // n sessions, allocated at start; n of them are in use here.
      state.counters["MiB"] = engine / (1 << 20);
      state.counters["bytes_per_session_slot"] = engine / (6.0 * n);
    }
  }
}
BENCHMARK(BM_Memory)->Arg(64512)->Arg(1032192)->Arg(16515072)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_Scaling(benchmark::State& state) {
  // Each thread: its own engine (one shard) of 64512 sessions, as each
  // worker owns one, translating 64-packet batches as the dataplane does.
  // Throughput over all threads (real time): on a machine with fewer cores
  // than threads the extra threads only share them.
  constexpr uint32_t kBatch = 64;
  bench::Workload w(4, 17, bench::kPorts);
  size_t k = size_t(state.thread_index()) * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(w.TranslateBatch(k, kBatch));
    k += kBatch;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}
BENCHMARK(BM_Scaling)->ThreadRange(1, 8)->UseRealTime();

template <int kFamily>
void RunFloor(benchmark::State& state, uint8_t proto, uint32_t n, bench::FloorLayout layout) {
  constexpr uint32_t kBatch = 64;
  bench::Workload& w = SharedWorkload::Get(kFamily, proto, n);
  bench::LookupFloor<kFamily> floor(w, proto, layout);
  if (!w.ok() || !floor.ok()) {
    state.SkipWithError("session setup failed");
    return;
  }
  size_t k = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(floor.Translate(w.FillBatch(k, kBatch), 1));
    k += kBatch;
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kBatch);
}

void BM_Floor(benchmark::State& state) {
  const uint8_t proto = uint8_t(state.range(1));
  const uint32_t n = uint32_t(state.range(2));
  const auto layout = state.range(3) == 0 ? bench::FloorLayout::kIndexed : bench::FloorLayout::kInline;
  if (state.range(0) == 4) {
    RunFloor<4>(state, proto, n, layout);
  } else {
    RunFloor<6>(state, proto, n, layout);
  }
}
BENCHMARK(BM_Floor)
    ->ArgsProduct({{4, 6}, {17}, {64512, 1032192}, {0, 1}})
    ->ArgNames({"family", "proto", "sessions", "inline"})
    ->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace natd

BENCHMARK_MAIN();
