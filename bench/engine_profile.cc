// A deterministic profile of the engine's fast path, for callgrind:
//
//   valgrind --tool=callgrind --instr-atstart=no bazel-bin/bench/engine_profile 4 17 64512 200000
//   callgrind_annotate callgrind.out.*
//
// Sets up N sessions (as engine_bench does), then translates M established
// packets with instrumentation on, so the instruction counts divided by M are
// the per-packet cost, repeatable whatever else the machine is doing.
// Arguments: family (4|6), protocol (6|17), sessions, packets.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/engine_workload.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s FAMILY PROTO SESSIONS PACKETS\n", argv[0]);
    return 2;
  }
  const int family = std::atoi(argv[1]);
  const uint8_t proto = uint8_t(std::atoi(argv[2]));
  const uint32_t n = uint32_t(std::atol(argv[3]));
  const uint32_t m = uint32_t(std::atol(argv[4]));
  natd::bench::Workload w(family, proto, n);
  if (!w.ok()) {
    std::fprintf(stderr, "session setup failed\n");
    return 1;
  }
  CALLGRIND_START_INSTRUMENTATION;
  uint64_t forwarded = 0;
  for (uint32_t i = 0; i < m; ++i) forwarded += w.TranslateOne(i);
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("%u packets, %llu forwarded\n", m, static_cast<unsigned long long>(forwarded));
  return forwarded == m ? 0 : 1;
}
