// Test-only: the invariants the fuzz targets (fuzz/) check, as plain
// functions of one input, so that the same checks run in two places:
//
//   fuzz/*_fuzz          libFuzzer + ASan/UBSan under clang (fuzz/README.md)
//   nat/fuzz_corpus_test every file of fuzz/corpus/ replayed under gcc, in the
//                        normal suite and under --config=asan: each crash the
//                        fuzzers ever found stays a regression test.
//
// Each Check* returns "" when every invariant holds, or a description of the
// first one broken. None reads outside [data, data + size).
//
// translate_fuzz input format (see TranslateInput below):
//
//   byte 0   preset = AllPresets()[b % 9]; shards = 1 + (b / 9) % 3;
//            port probes = {32, 1, 4, 32}[(b / 27) % 4]
//   byte 1   bits 0-1 port set: 1024-1031 | 40000-40063 | v6plus:0xc4 (240
//                     ports, 40000-40015 among them) | 1024-65535
//            bits 2-3 max sessions per table: 4 | 16 | 64 | 1024
//            bit 4    UDP inbound refresh
//            bit 5    short timeouts (TCP 2 s / 10 s, ICMP 1 s, UDP 2 min)
//            bits 6-7 families: both | IPv4 only | IPv6 only | both
//   byte 2   bits 0-1 sessions per inside host: any | 1 | 4 | any
//            bits 2-3 "administratively prohibited" answers per second and
//                     shard: 100 | 0 | 1 | 100
//            bits 4-5 buffer capacity (room for an answer built in place):
//                     none | the packet's length | + 600 | + 1300 bytes
//   then records until the input ends:
//            op, dt, len_hi, len_lo, len bytes (cut short at the input's end)
//     dt     time advance before the packet, (dt & 63) << 6 * (dt >> 6) ms
//            (up to 63 ms, 4 s, 4.3 min, 4.6 h), then every shard expires
//            what is due; 0xff flushes every shard instead.
//     op     bits 0-1 addresses: 0 as given; 1 outbound (inside -> remote);
//                     2 inbound (remote -> global); 3 ICMP error: inbound
//                     (router -> global, quoting global -> remote) or, with
//                     bit 2, outbound (inside -> remote, quoting remote ->
//                     inside, RFC 5508 §4.2)
//            bit 2    the other inside host (inbound: the remote port + 1;
//                     error: outbound)
//            bit 3    the other remote host
//            bit 4    ports from a flow natd translated earlier, so that
//                     replies and errors hit live sessions whatever port the
//                     preset picked (bit 7: the flow before the last one)
//            bit 5    recompute every checksum after patching
//            bit 6    offloaded checksum (TCP/UDP: the field holds the
//                     pseudo-header sum; bit 5 writes that sum)
//     Each packet goes to the shard Engine::ShardOf picks, in a heap buffer
//     of exactly its length.
#ifndef NATD_NAT_TESTING_FUZZ_CHECKS_H_
#define NATD_NAT_TESTING_FUZZ_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace natd {
class Engine;
}  // namespace natd

namespace natd::testing {

// ParsePacket on arbitrary bytes; when it parses, the view's offsets, ports
// and quote lie inside the packet and match its bytes.
std::string CheckPacketView(const uint8_t* data, size_t size);

// A whole engine fed a sequence of packets (format above); after each one:
// verdicts, counters and events agree; dropped packets are untouched;
// an answer built in place (a refused outbound packet) is a well-formed
// ICMP "administratively prohibited" to its sender, within the rate limit;
// forwarded ones still parse, with their checksums still valid, and are
// rewritten as a session of the table says; an inbound packet passed the
// preset's filtering (RFC 4787) given the sessions there were before; the
// tables' keys stay unique and their external ports in the shard's slice;
// sessions_inserted - sessions_removed == live sessions.
std::string CheckTranslate(const uint8_t* data, size_t size);

// The tables' own invariants, in any engine (CheckTranslate checks them
// after every packet; the state file's tests after a restore): per table,
// every mapping has a session, the table is within its capacity, every
// session is due after `now` and within its longest timeout, keys are unique,
// external ports are in the shard's slice and shared no more than the
// behaviour allows; per shard, inserted - removed sessions and mappings
// (counters) are the live ones.
std::string CheckEngineTables(Engine& engine, int64_t now);

// PortSet::Parse on arbitrary text; a parsed set is ascending and unique, and
// PortPlan::Make cuts it into 1..8 consistent slices.
std::string CheckPortSet(const uint8_t* data, size_t size);

// Builds translate_fuzz inputs (for the seed corpus).
struct TranslateInput {
  enum Op : uint8_t {
    kAsGiven = 0,
    kOutbound = 1,
    kInbound = 2,
    kError = 3,
    kOtherInside = 1 << 2,
    kOtherRemote = 1 << 3,
    kFromFlow = 1 << 4,
    kFixChecksums = 1 << 5,
    kOffload = 1 << 6,
    kOlderFlow = 1 << 7,
  };
  static constexpr uint8_t kFlush = 0xff;  // as dt

  // preset: index into AllPresets(); shards 1..3; options, limits: bytes 1
  // and 2 above.
  TranslateInput(uint8_t preset, uint8_t shards, uint8_t options, uint8_t limits = 0);
  TranslateInput& Add(const std::vector<uint8_t>& packet, uint8_t op = kAsGiven, uint8_t dt = 0);
  std::vector<uint8_t> bytes;
};

// The options byte the golden fixtures need: ports 1024-65535, 1024
// sessions, default timeouts, both families.
inline constexpr uint8_t kFixtureOptions = 0x03 | 0x0c;

}  // namespace natd::testing

#endif  // NATD_NAT_TESTING_FUZZ_CHECKS_H_
