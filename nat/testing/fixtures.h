// Test-only: golden packet fixtures for the translation engine, as data.
//
// Each fixture is one packet through a fresh engine configured by
// FixtureConfig(): the `setup` packets first (each must be forwarded; they
// create the state the input needs), then `input`, which must come out as
// exactly `expected` with `verdict`, moving the drop counters by exactly
// `drop_deltas` (every other drop counter unchanged).
//
// Expected bytes are built from scratch by the packet builder with the
// translated addresses and ports, never by the engine. That is only possible
// because FixtureConfig() makes translation deterministic: one shard and the
// full-cone preset (EIM/EIF, port preservation) for every protocol, so an
// inside port or echo identifier in 1024-65535 is kept as the external one.
// Ports that are *not* preserved are covered by the randomized tests in
// nat/translate_test.cc, which learn the external port from the output.
//
// A dropped or status packet must come out unmodified: its `expected` is its
// `input`.
#ifndef NATD_NAT_TESTING_FIXTURES_H_
#define NATD_NAT_TESTING_FIXTURES_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "nat/config.h"
#include "nat/drop_reason.h"
#include "nat/shard.h"
#include "nat/testing/packet_builder.h"

namespace natd::testing {

// The addresses fixtures use.
inline constexpr char kGlobal4[] = "198.19.0.100";
inline constexpr char kInside4[] = "198.18.0.2";
inline constexpr char kRemote4[] = "203.0.113.7";
inline constexpr char kRouter4[] = "203.0.113.1";  // sends ICMP errors
inline constexpr char kGlobal6[] = "2001:db8:19::100";
inline constexpr char kInside6[] = "fd00:18::2";
inline constexpr char kRemote6[] = "2001:db8:beef::7";
inline constexpr char kRouter6[] = "2001:db8:beef::1";

struct Fixture {
  std::string name;          // a valid GoogleTest parameter name: [A-Za-z0-9_]
  std::vector<Bytes> setup;  // processed first, in order; each is forwarded
  Bytes input;
  Bytes expected;
  natd::Verdict verdict;
  std::vector<std::pair<natd::DropReason, uint64_t>> drop_deltas;
};

// GoogleTest prints a fixture parameter by its name.
inline void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

// The engine configuration every fixture assumes: global 198.19.0.100 and
// 2001:db8:19::100, ports 1024-65535, one shard, a fixed seed, full-cone for
// TCP, UDP and ICMP. Tables are kept small so a fresh engine is cheap.
natd::EngineConfig FixtureConfig();

std::vector<Fixture> AllFixtures();

}  // namespace natd::testing

#endif  // NATD_NAT_TESTING_FIXTURES_H_
