// The state file: natd's mapping tables as bytes, so that a restart of natd
// (an upgrade, a changed log setting) does not break the connections that
// cross it. natd writes the file when it stops (SIGTERM, after the
// dataplane has drained and joined, so the tables hold still) and reads it
// at start, before the first packet (tools/state_store.h does the file
// itself; this part knows only bytes and tables).
//
// What must survive is what a remote end has seen: the external port of
// every mapping, and the sessions that filtering lets in through it. So a
// session is kept whole: its mapping (inside endpoint, external port,
// mapping key) and its own remote endpoint, TCP state and remaining
// lifetime. The checksum deltas are derived again from the addresses.
//
// Layout (integers little-endian, addresses in network order):
//
//   "NATDSTAT"  magic                    8 bytes
//   version     kStateFormatVersion      u32
//   length      of the whole file        u64
//   saved_at    wall clock, ms since 1970  i64
//   fingerprint shards u32; has global4 u8, global4 4 bytes; has global6 u8,
//               global6 16 bytes; more IPv4 addresses of the pool u8 and
//               each (4 bytes), more IPv6 ones u8 and each (16 bytes);
//               port count u32, FNV-1a of the ports u64;
//               TCP, UDP and ICMP behaviour, 4 bytes each (mapping,
//               filtering, port strategy, port sharing)
//   tables      count u32; each: shard u32, family u8 (4|6), protocol u8,
//               global address (index in the pool) u8, mappings u32; each mapping: inside, inside port u16,
//               external port u16, remote key (address), remote port key
//               u16, age ms i64, idle ms i64, packets/bytes out/in 4 x u64,
//               sessions u32; each session: remote, remote port u16,
//               TCP state u8, timeout class u8, remaining lifetime ms i64
//   crc         CRC32C of everything before it  u32
//
// Times: the engine's clock is monotonic and starts again with the process,
// so the file holds durations (remaining lifetime, age, idle time) relative
// to the moment of saving, plus that moment on the wall clock; at restore
// the wall-clock time that has passed is taken off every lifetime, and a
// session whose time ran out meanwhile is left out. A lifetime longer than
// the timeout configured now is cut to it.
//
// The fingerprint holds what decides which shard owns an external port and
// which mappings a port may carry: a file from another configuration (other
// ports, global addresses, worker count or behaviour) is refused rather than
// guessed at, since its ports would land in the wrong shard or break the
// port-sharing rules. Timeouts, capacity and quotas may change between runs.
//
// Restoring is all or nothing: the whole file is decoded and every table's
// part checked (MappingTable::CheckRestore) before anything is applied. A
// refusal says why (not a state file, another version, truncated, checksum,
// another configuration, an inconsistent entry) and leaves the tables empty.
#ifndef NATD_NAT_STATE_FILE_H_
#define NATD_NAT_STATE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nat/engine.h"

namespace natd {

inline constexpr char kStateMagic[8] = {'N', 'A', 'T', 'D', 'S', 'T', 'A', 'T'};
// 2: address pools (the pool in the fingerprint, a pool index per table).
inline constexpr uint32_t kStateFormatVersion = 2;

// Every live session of every table. `now_ms` is the engine's clock (as the
// dataplane passes it to Shard::Process), `unix_ms` the wall clock. The
// engine must be quiescent (no worker running); it is only read (non-const
// because Shard hands out its tables non-const only). `sessions`, when given,
// is set to the number of sessions written.
std::string EncodeState(Engine& engine, int64_t now_ms, int64_t unix_ms, size_t* sessions = nullptr);

struct RestoreCounts {
  size_t sessions = 0;  // restored
  size_t mappings = 0;  // restored
  size_t expired = 0;   // sessions whose lifetime ran out while natd was down
};

// Decodes `bytes` and, when all of it is valid and was written for this
// engine's configuration, restores every session into the shard and table it
// was saved from. The engine's tables must be empty. On any error nothing is
// restored and the status says what is wrong.
absl::StatusOr<RestoreCounts> RestoreState(Engine& engine, std::string_view bytes, int64_t now_ms, int64_t unix_ms);

// CRC32C (Castagnoli), as the file's checksum.
uint32_t Crc32c(std::string_view bytes);

}  // namespace natd

#endif  // NATD_NAT_STATE_FILE_H_
