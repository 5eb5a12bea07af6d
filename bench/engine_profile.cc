// A deterministic profile of the engine's fast path, for callgrind:
//
//   valgrind --tool=callgrind --instr-atstart=no bazel-bin/bench/engine_profile 4 17 64512 200000
//   callgrind_annotate callgrind.out.*
//
// Sets up N sessions (as engine_bench does), then translates M established
// packets with instrumentation on, so the instruction counts divided by M are
// the per-packet cost, repeatable whatever else the machine is doing.
// Arguments: family (4|6), protocol (6|17), sessions, packets, and
// optionally rounds and batch:
//   ROUNDS  0 (the default): one instrumented pass, for callgrind; R > 0
//           (outside valgrind): times R rounds of the packets natively and
//           prints the fastest round's ns per packet and packets/s, the
//           fastest of many short rounds being what a shared, noisy machine
//           lets one compare between builds (see bench/README.md);
//   BATCH   1 (the default): Shard::ProcessOne per packet; B > 1: batches
//           of B through Shard::Process, as the dataplane runs it.
#include <time.h>
#include <valgrind/callgrind.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/engine_workload.h"

int main(int argc, char** argv) {
  if (argc < 5 || argc > 7) {
    std::fprintf(stderr, "usage: %s FAMILY PROTO SESSIONS PACKETS [ROUNDS [BATCH]]\n", argv[0]);
    return 2;
  }
  const int family = std::atoi(argv[1]);
  const uint8_t proto = uint8_t(std::atoi(argv[2]));
  const uint32_t n = uint32_t(std::atol(argv[3]));
  const long rounds = argc > 5 ? std::atol(argv[5]) : 0;
  const uint32_t batch = argc > 6 ? uint32_t(std::atol(argv[6])) : 1;
  if (batch < 1 || batch > natd::bench::kMaxBatch) {
    std::fprintf(stderr, "batch: 1 to %u\n", natd::bench::kMaxBatch);
    return 2;
  }
  const uint32_t m = uint32_t(std::atol(argv[4])) / batch * batch;
  natd::bench::Workload w(family, proto, n);
  if (!w.ok()) {
    std::fprintf(stderr, "session setup failed\n");
    return 1;
  }
  // Packets k .. k + batch - 1; how many were forwarded.
  auto run = [&](size_t k) { return batch == 1 ? w.TranslateOne(k) : w.TranslateBatch(k, batch); };
  if (rounds > 0) {
    auto cpu_ns = [] {
      timespec t;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
    };
    double best = 1e300;
    uint64_t forwarded = 0;
    size_t k = 0;
    for (long r = rounds; r > 0; --r) {
      const double start = cpu_ns();
      for (uint32_t i = 0; i < m; i += batch, k += batch) forwarded += run(k);
      best = std::min(best, (cpu_ns() - start) / m);
    }
    std::printf("%.1f ns/packet, %.3f Mpps (fastest round)\n", best, 1e3 / best);
    return forwarded == k ? 0 : 1;
  }
  CALLGRIND_START_INSTRUMENTATION;
  uint64_t forwarded = 0;
  for (uint32_t i = 0; i < m; i += batch) forwarded += run(i);
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("%u packets, %llu forwarded\n", m, static_cast<unsigned long long>(forwarded));
  return forwarded == m ? 0 : 1;
}
