// MappingTable: the NAT state of one protocol, one address family, one shard.
//
// RFC 4787 separates two things this table keeps apart as well:
//
//   Mapping   inside endpoint X:x (+ remote address/port when the mapping is
//             address(-port)-dependent)  ->  external port x' on the global
//             address. Carries the checksum deltas of the rewrite, computed
//             once when the mapping is made, and the traffic counters.
//   Session   one mapping talking to one remote endpoint Y:y. Filtering is
//             decided by sessions; TCP state (RFC 5382) and expiry live here.
//             A mapping lives while any of its sessions lives.
//
//   by_inside_   (X, Y, x, y) -> session      outbound fast path
//   by_outside_  (Y, x', y)   -> session      inbound fast path
//   by_key_      mapping key  -> mapping      new outbound sessions
//   by_addr_     (Y, x')      -> {mapping, n} ADF filtering and ports shared
//                                             per remote address
//   port_owner_  x'           -> mapping      ports held exclusively
//   endpoints_   (X, x)       -> last port    reuse-last and increment
//   hosts_       X            -> sessions     the per-host quota (RFC 6888 REQ-4)
//   explicit_    (X, x)       -> mapping, lifetime   PCP / NAT-PMP mappings
//   explicit_ports_  x'       -> mapping      their ports, open to anyone
//
// Explicit mappings (RFC 6887 MAP, RFC 6886): an inside host asks for one
// for a lifetime. It is endpoint-independent and endpoint-independently
// filtered whatever the preset, lives (pinned) without sessions until its
// lifetime ends, and holds its external port alone: no dynamic mapping may
// share it, and it never takes a port a dynamic mapping uses. An existing
// endpoint-independent dynamic mapping of the same endpoint is pinned in
// place, so the port the host already uses is the one it is told.
//
// Entries live in vectors sized at start (capacity fixed; a full table is a
// clean refusal); the hash maps hold indices, never pointers, because
// flat_hash_map moves its slots on rehash, and they are reserve()d at start.
// by_inside_, by_outside_ and by_key_, one entry per session (or mapping)
// each, are sets of bare u32 indices (see ByIndex): the key is read from the
// session and its mapping, which hold it anyway, so a slot is 4 bytes and a
// control byte, not the key beside the index (16 to 48 bytes). abseil sizes
// a table to a power of two at a load of at most 7/8, so a capacity just
// under a power of two (64512) gets about twice as many slots as entries.
// Mapping slots: one a session slot, except that where ports are exclusive
// (each mapping holds its external port alone) there are never more
// mappings than the shard's ports, so a table of more sessions than that
// has only as many mapping slots (and by_key_ slots) as ports.
// Per session slot, IPv4 / IPv6: the session 32 / 48 bytes, a mapping slot
// 72 / 96, the three sets about 3 x 2 x 5 = 30; in a table of 1032192
// sessions with exclusive ports, 64512 mapping slots: 32 / 48 + about 5 / 6
// + 20 + 1.
//
// Expiry is lazy (see Expire): a packet only moves its session's
// expires_ms forward. Every session sits on one list, ordered by the expiry
// it had when it was put there (its "linked" expiry, never later than
// expires_ms): one list per timeout class for sessions linked by a packet
// (a new session, a TCP timeout class change), and a ladder of lists for
// sessions that expiry found refreshed since.
//
// Save / CheckRestore / Restore carry the live entries across a restart of
// natd (nat/state_file.h): a restore goes through the same CreateMapping /
// CreateSession steps as a packet, so every index above stays consistent.
//
// Deliberately not here: packet bytes. The translator (in2out.h, out2in.h)
// reads the view and rewrites; this table only answers "which mapping".
#ifndef NATD_NAT_MAPPING_TABLE_H_
#define NATD_NAT_MAPPING_TABLE_H_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nat/addr.h"
#include "nat/behavior.h"
#include "nat/drop_reason.h"
#include "nat/events.h"
#include "nat/expiry_list.h"
#include "nat/table_alloc.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/rng.h"

namespace natd {

// Session TCP state bits (RFC 5382 §5: transitory until both SYNs are seen,
// established until both FINs or a RST, transitory again after).
inline constexpr uint8_t kTcpStSynOut = 0x01;
inline constexpr uint8_t kTcpStSynIn = 0x02;
inline constexpr uint8_t kTcpStFinOut = 0x04;
inline constexpr uint8_t kTcpStFinIn = 0x08;
inline constexpr uint8_t kTcpStRst = 0x10;
inline constexpr uint8_t kTcpStEstablished = 0x20;
inline constexpr uint8_t kTcpStMidstream = 0x40;  // first seen without a SYN

enum class Direction : uint8_t { kOut, kIn };

template <typename Addr>
struct InsideKey {
  Addr inside;
  Addr remote;
  uint16_t inside_port;
  uint16_t remote_port;
  friend bool operator==(const InsideKey&, const InsideKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const InsideKey& k) {
    return H::combine(std::move(h), k.inside, k.remote, k.inside_port, k.remote_port);
  }
};

template <typename Addr>
struct OutsideKey {
  Addr remote;
  uint16_t external_port;
  uint16_t remote_port;
  friend bool operator==(const OutsideKey&, const OutsideKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const OutsideKey& k) {
    return H::combine(std::move(h), k.remote, k.external_port, k.remote_port);
  }
};

template <typename Addr>
struct AddrKey {
  Addr remote;
  uint16_t external_port;
  friend bool operator==(const AddrKey&, const AddrKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const AddrKey& k) {
    return H::combine(std::move(h), k.remote, k.external_port);
  }
};

template <typename Addr>
struct EndpointKey {
  Addr inside;
  uint16_t inside_port;
  friend bool operator==(const EndpointKey&, const EndpointKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const EndpointKey& k) {
    return H::combine(std::move(h), k.inside, k.inside_port);
  }
};

// The tables' hash. Keys hold attacker-chosen values (remote addresses and
// ports), so it is keyed with a per-process random seed; it is a
// multiply-xorshift mix of the key's words, several times cheaper than
// absl::Hash's generic combine for these fixed shapes. flat_hash_map takes its
// slot from the high bits and its control byte from the low 7 bits: both are
// mixed. MixWords(a, b) mixes `a` through two multiplications, `b` through
// one only: a bit of b reaches the bits of the product at and above its own
// (and, by the last shift, those 32 below), so b's high bits stay in a few
// bits of the result. Hence an IPv6 address passes each half as an `a`.
uint64_t RandomTableHashSeed();
// Set once, during static initialization (no table exists before main()).
inline const uint64_t kTableHashSeed = RandomTableHashSeed();

inline uint64_t MixWords(uint64_t a, uint64_t b) {
  uint64_t h = (a ^ kTableHashSeed) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  h = (h ^ b) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 32);
}
inline uint64_t Word(const Ip4& a) { return a.raw; }
// It was MixWords(a.hi, a.lo): an address's last two bytes (lo's top 16
// bits), which are what differs most between hosts of one network, changed
// only bits 16-31 and 48-63 of the word, and an inside key XORs the inside
// word with the remote one turned by 32 bits, the same bits again, so the
// two cancelled: the 1032192 sessions of bench/engine_workload.h (64512
// inside endpoints x 16 remote hosts, numbered in their last bytes) had
// 65536 distinct hashes, 16 keys each, and a lookup compared about 8
// sessions read from random places before it found its own.
inline uint64_t Word(const Ip6& a) { return MixWords(a.hi, MixWords(a.lo, 0)); }

struct TableHash {
  // (Always inlined: Shard::Process's look-ahead hashes every packet's
  // key, and GCC's budget for that function runs out before it.)
  template <typename Addr>
  [[gnu::always_inline]] size_t operator()(const InsideKey<Addr>& k) const {
    return MixWords(Word(k.inside) ^ (Word(k.remote) << 32 | Word(k.remote) >> 32),
                    uint64_t(k.inside_port) << 16 | k.remote_port);
  }
  template <typename Addr>
  [[gnu::always_inline]] size_t operator()(const OutsideKey<Addr>& k) const {
    return MixWords(Word(k.remote), uint64_t(k.external_port) << 16 | k.remote_port);
  }
  template <typename Addr>
  size_t operator()(const AddrKey<Addr>& k) const {
    return MixWords(Word(k.remote), k.external_port);
  }
  template <typename Addr>
  size_t operator()(const EndpointKey<Addr>& k) const {
    return MixWords(Word(k.inside), k.inside_port);
  }
  size_t operator()(const Ip4& a) const { return MixWords(a.raw, 0); }
  size_t operator()(const Ip6& a) const { return Word(a); }
};

static_assert(sizeof(InsideKey<Ip4>) == 12, "IPv4 session key must stay compact");
static_assert(sizeof(OutsideKey<Ip4>) == 8, "IPv4 outside key must stay compact");
static_assert(sizeof(InsideKey<Ip6>) == 40, "IPv6 session key: 36 bytes + alignment");

// A key with its TableHash, for Shard::Process: a batch hashes each packet's
// key once, in the first step of its look-ahead, and carries the hash to the
// later steps and to the lookup itself (Outbound / Inbound), instead of
// hashing the key again in each (four times; an IPv6 inside key is 36 bytes,
// three MixWords). The tables' sets hash a Hashed as its `hash`, which must
// be TableHash()(key): a set holds an index under its key's hash, and a find
// under any other would miss it. Builds with NATD_VERIFY_CHECKSUMS or
// without NDEBUG check that it is (ByIndex).
template <typename K>
struct Hashed {
  K key;
  size_t hash;
};
template <typename K>
Hashed<K> WithHash(const K& key) {
  return Hashed<K>{key, TableHash()(key)};
}

struct TableConfig {
  uint8_t proto = 0;  // kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmp6
  Behavior behavior{};
  int64_t timeout_ms = 0;              // UDP, ICMP, TCP transitory
  int64_t established_timeout_ms = 0;  // TCP established
  bool inbound_refresh = false;
  uint32_t capacity = 0;  // sessions (and so at most as many mappings)
  uint32_t port_probes = 32;
  uint32_t host_quota = 0;  // sessions one inside address may hold here; 0: no limit
  uint32_t explicit_capacity = 0;  // explicit (PCP) mappings here; 0: none
  uint32_t explicit_per_host = 0;  // of them, per inside address; 0: no limit
  bool prefault = false;  // make the reserved hash maps resident at start (table_alloc.h)
};

template <typename Addr>
class MappingTable {
 public:
  struct Mapping {
    // What every packet reads or writes comes first (the counters end it),
    // so that a packet touches as few cache lines of the mapping as it can;
    // the order leaves no padding in either family (72 / 96 bytes).
    Addr inside;
    uint16_t inside_port = 0;
    uint16_t external_port = 0;
    uint16_t ip_delta = 0;  // checksum delta of inside addr -> global (IPv4 header, pseudo-header)
    uint16_t l4_delta = 0;  // delta of the L4 checksum for address and port
    Addr remote_key;  // the remote part of the mapping key (zero for EIM)
    // Of a live mapping, its sessions; of a free one, the next free mapping
    // (the free list: no field of its own).
    uint32_t sessions = 0;
    uint16_t remote_port_key = 0;
    bool pinned = false;  // an explicit mapping: lives without sessions
    int64_t last_ms = 0;
    uint64_t packets_out = 0, bytes_out = 0, packets_in = 0, bytes_in = 0;
    int64_t created_ms = 0;
  };
  // IPv4: 32 bytes, aligned so that none straddles two cache lines (the
  // allocator's own alignment, 16, would split every other one).
  struct alignas(sizeof(Addr) == 4 ? 32 : alignof(Addr)) Session {
    uint32_t mapping = kNil;
    uint32_t prev = kNil, next = kNil;  // expiry list, or free list (next)
    Addr remote;
    uint16_t remote_port = 0;
    uint8_t tcp_state = 0;
    uint8_t timeout_class = 0;  // 0: main/transitory, 1: TCP established
    uint32_t lag = 0;  // expires_ms - the expiry its list is ordered by (in padding)
    int64_t expires_ms = 0;
  };
  struct Result {
    DropReason drop = DropReason::kNone;
    uint32_t session = kNil;
  };

  // `slice` is this shard's ports; `global` the family's global address.
  MappingTable(const TableConfig& config, const Addr& global, uint32_t shard, const PortPlan* plan, Rng* rng,
               Counters* counters, EventSink* events)
      : cfg_(config), global_(global), shard_(shard), plan_(plan), slice_(&plan->Slice(shard)), rng_(rng),
        counters_(counters), events_(events) {
    // Sessions, then the expiry lists' heads (circular lists through a
    // sentinel entry each, so that unlinking needs no list).
    sessions_.resize(size_t(cfg_.capacity) + kLists);
    // Mappings: at most one a session, and where ports are exclusive at
    // most one an external port of this shard's (each holds its port alone,
    // explicit ones too), so a table of more sessions than ports (a large
    // one, or many shards) needs no mapping slot for each session.
    const uint32_t mapping_capacity = cfg_.behavior.sharing == PortSharing::kExclusive
                                          ? std::min<uint32_t>(cfg_.capacity, static_cast<uint32_t>(slice_->size()))
                                          : cfg_.capacity;
    mappings_.resize(mapping_capacity);
    for (uint32_t i = 0; i < cfg_.capacity; ++i) sessions_[i].next = i + 1 < cfg_.capacity ? i + 1 : kNil;
    for (uint32_t i = 0; i < mapping_capacity; ++i) mappings_[i].sessions = i + 1 < mapping_capacity ? i + 1 : kNil;
    for (uint32_t l = 0; l < kLists; ++l) sessions_[Sentinel(l)].prev = sessions_[Sentinel(l)].next = Sentinel(l);
    free_session_ = cfg_.capacity ? 0 : kNil;
    free_mapping_ = mapping_capacity ? 0 : kNil;
    const bool pf = cfg_.prefault;
    BuildIndex(by_inside_, cfg_.capacity, pf);
    BuildIndex(by_outside_, cfg_.capacity, pf);
    BuildIndex(by_key_, mapping_capacity, pf);
    const Behavior& b = cfg_.behavior;
    track_addr_ = b.filtering == Dependence::kAddressDependent || b.sharing == PortSharing::kPerRemoteAddress;
    if (track_addr_) Build(by_addr_, cfg_.capacity, pf);
    if (b.sharing == PortSharing::kExclusive) port_owner_.assign(65536, kNil);
    track_endpoints_ = b.strategy == PortStrategy::kReuseLast || b.strategy == PortStrategy::kIncrement;
    if (track_endpoints_) Build(endpoints_, mapping_capacity, pf);  // one per endpoint with mappings
    if (cfg_.host_quota) Build(hosts_, std::min<uint32_t>(cfg_.capacity, 1 << 16), pf);
    if (cfg_.explicit_capacity) {
      Build(explicit_, cfg_.explicit_capacity, pf);
      Build(explicit_ports_, cfg_.explicit_capacity, pf);
      // Shared ports: an explicit mapping needs one no mapping uses at all.
      if (b.sharing != PortSharing::kExclusive) port_users_.assign(65536, 0);
    }
  }

  MappingTable(const MappingTable&) = delete;
  MappingTable& operator=(const MappingTable&) = delete;

  // An inside endpoint sends to a remote one: finds its session or makes one
  // (and a mapping, if the behaviour needs a new one). Only the packet of a
  // session that exists (nearly every packet) is inlined here. `ahead`,
  // `candidate`: what Process's look-ahead found for this packet, if any
  // (see FindSession).
  [[gnu::always_inline]] Result Outbound(const Addr& inside, uint16_t inside_port, const Addr& remote,
                                         uint16_t remote_port, uint8_t tcp_flags, uint32_t bytes, int64_t now,
                                         const Hashed<InsideKey<Addr>>* ahead = nullptr, uint32_t candidate = kNil) {
    const uint32_t s = FindSession<IndexOf::kInside>(by_inside_, InsideKey<Addr>{inside, remote, inside_port, remote_port},
                                                     ahead, candidate);
    if (s == kNil) [[unlikely]] {
      return OutboundNew(inside, inside_port, remote, remote_port, tcp_flags, bytes, now);
    }
    Touch(s, Direction::kOut, tcp_flags, bytes, now);
    return {DropReason::kNone, s};
  }

  // Outbound for a packet without a session.
  [[gnu::noinline]] Result OutboundNew(const Addr& inside, uint16_t inside_port, const Addr& remote,
                                       uint16_t remote_port, uint8_t tcp_flags, uint32_t bytes, int64_t now) {
    if (is_tcp() && (tcp_flags & kTcpRst)) return {DropReason::kTcpNoSession, kNil};
    InsideKey<Addr> mkey = MappingKeyOf(inside, inside_port, remote, remote_port);
    uint32_t m;
    auto mit = by_key_.find(mkey);
    if (mit == by_key_.end() && !explicit_.empty()) {
      // The endpoint's explicit mapping serves every destination.
      auto eit = explicit_.find(EndpointKey<Addr>{inside, inside_port});
      if (eit != explicit_.end()) mit = by_key_.find(eit->second.mapping);
    }
    if (mit != by_key_.end()) {
      m = *mit;
      if (free_session_ == kNil) return Refuse(m, remote, remote_port, DropReason::kTableFull);
      if (OverQuota(inside)) return Refuse(m, remote, remote_port, DropReason::kHostQuota);
    } else {
      if (free_session_ == kNil) return RefuseNew(inside, inside_port, remote, remote_port, DropReason::kTableFull);
      if (OverQuota(inside)) return RefuseNew(inside, inside_port, remote, remote_port, DropReason::kHostQuota);
      uint16_t port = AllocatePort(inside, inside_port, remote, remote_port);
      if (port == 0) return RefuseNew(inside, inside_port, remote, remote_port, DropReason::kNoPort);
      // (Explicit mappings live without sessions: they may hold the rest.)
      if (free_mapping_ == kNil) return RefuseNew(inside, inside_port, remote, remote_port, DropReason::kTableFull);
      m = CreateMapping(mkey, inside, inside_port, port, remote, remote_port, now);
    }
    const uint32_t s = CreateSession(m, remote, remote_port, now);
    if (is_tcp() && !(tcp_flags & kTcpSyn)) sessions_[s].tcp_state = kTcpStMidstream;
    Touch(s, Direction::kOut, tcp_flags, bytes, now);
    return {DropReason::kNone, s};
  }

  // A remote endpoint sends to an external port: finds the session, or makes
  // one when the mapping's filtering lets this remote end in.
  // `ahead`, `candidate`: as for Outbound.
  [[gnu::always_inline]] Result Inbound(uint16_t external_port, const Addr& remote, uint16_t remote_port,
                                        uint8_t tcp_flags, uint32_t bytes, int64_t now,
                                        const Hashed<OutsideKey<Addr>>* ahead = nullptr, uint32_t candidate = kNil) {
    const uint32_t s =
        FindSession<IndexOf::kOutside>(by_outside_, OutsideKey<Addr>{remote, external_port, remote_port}, ahead, candidate);
    if (s == kNil) [[unlikely]] {
      return InboundNew(external_port, remote, remote_port, tcp_flags, bytes, now);
    }
    Touch(s, Direction::kIn, tcp_flags, bytes, now);
    return {DropReason::kNone, s};
  }

  // Inbound for a packet without a session.
  [[gnu::noinline]] Result InboundNew(uint16_t external_port, const Addr& remote, uint16_t remote_port,
                                      uint8_t tcp_flags, uint32_t bytes, int64_t now) {
    uint32_t s = kNil;
    if (!explicit_ports_.empty()) {
      // An explicit mapping lets anyone in (RFC 6887 §11: MAP filters nothing).
      auto eit = explicit_ports_.find(external_port);
      if (eit != explicit_ports_.end()) {
        const uint32_t m = eit->second;
        if (is_tcp() && (!(tcp_flags & kTcpSyn) || (tcp_flags & kTcpRst))) return {DropReason::kTcpNoSession, kNil};
        if (free_session_ == kNil) return Refuse(m, remote, remote_port, DropReason::kTableFull);
        if (OverQuota(mappings_[m].inside)) return Refuse(m, remote, remote_port, DropReason::kHostQuota);
        s = CreateSession(m, remote, remote_port, now);
      }
    }
    if (s == kNil) {
      const Behavior& b = cfg_.behavior;
      uint32_t m = kNil;
      const AddrRef* addr_ref = nullptr;
      if (track_addr_) {
        auto it = by_addr_.find(AddrKey<Addr>{remote, external_port});
        if (it != by_addr_.end()) addr_ref = &it->second;
      }
      if (b.sharing == PortSharing::kExclusive) {
        m = port_owner_[external_port];
      } else if (b.sharing == PortSharing::kPerRemoteAddress && addr_ref) {
        m = addr_ref->mapping;
      }
      if (m == kNil) return {DropReason::kNoMapping, kNil};
      if (b.filtering == Dependence::kAddressPortDependent) return {DropReason::kFiltered, kNil};
      if (b.filtering == Dependence::kAddressDependent && addr_ref == nullptr) return {DropReason::kFiltered, kNil};
      if (is_tcp() && (!(tcp_flags & kTcpSyn) || (tcp_flags & kTcpRst))) return {DropReason::kTcpNoSession, kNil};
      if (free_session_ == kNil) return Refuse(m, remote, remote_port, DropReason::kTableFull);
      if (OverQuota(mappings_[m].inside)) return Refuse(m, remote, remote_port, DropReason::kHostQuota);
      s = CreateSession(m, remote, remote_port, now);
    }
    Touch(s, Direction::kIn, tcp_flags, bytes, now);
    return {DropReason::kNone, s};
  }

  // Look-ahead for a batch (Shard::Process), in three steps a few packets
  // apart: the hash slots that Outbound / Inbound will read for a packet,
  // then, once those are near, its session's entry (a slot holds only the
  // session's index, so this step prefetches the session of every slot whose
  // control byte matches, without comparing keys: see Probe, and keeps one
  // of those indices, the candidate), then its mapping's, through the
  // candidate's session (by then near) when it holds the key's remote end:
  // no second probe of the slots. Nothing else happens. The first steps take
  // the key with the hash the first one computed (Hashed).
  // GCC deems a function whose only effect is a prefetch pure and drops
  // calls to it (absl's prefetch() included, unless inlined): hence flatten
  // and the empty asm volatile statements.
  // (One name per step, the key's type telling the index: outbound packets
  // look up by InsideKey, inbound ones by OutsideKey.)
  // Not always_inline: inlined into Process's look-ahead, the slot prefetch
  // stopped working (batches at 1032192 sessions 85 -> 210-260 ns a packet,
  // no slower at 64512, 18 instructions fewer: measured, 2026-11-28).
  [[gnu::flatten]] void PrefetchSlots(const Hashed<InsideKey<Addr>>& k) const {
    by_inside_.prefetch(k);
    asm volatile("");
  }
  [[gnu::flatten]] void PrefetchSlots(const Hashed<OutsideKey<Addr>>& k) const {
    by_outside_.prefetch(k);
    asm volatile("");
  }
  // *candidate: kNil, or a session index whose slot's control byte matched.
  [[gnu::flatten]] void PrefetchSession(const Hashed<InsideKey<Addr>>& k, uint32_t* candidate) const {
    (void)by_inside_.find(Probe<InsideKey<Addr>>{k, candidate});
    asm volatile("");
  }
  [[gnu::flatten]] void PrefetchSession(const Hashed<OutsideKey<Addr>>& k, uint32_t* candidate) const {
    (void)by_outside_.find(Probe<OutsideKey<Addr>>{k, candidate});
    asm volatile("");
  }
  // The mapping of the session step's candidate, when its session holds the
  // key's remote end (the key of either index has one).
  template <typename K>
  [[gnu::always_inline]] void PrefetchMapping(const K& k, uint32_t candidate) const {
    if (candidate == kNil) return;
    const Session& ss = sessions_[candidate];
    if (ss.remote == k.remote && ss.remote_port == k.remote_port) {
      // From its start to its counters: two cache lines for most.
      const char* entry = reinterpret_cast<const char*>(&mappings_[ss.mapping]);
      __builtin_prefetch(entry);
      __builtin_prefetch(entry + offsetof(Mapping, bytes_in));
      asm volatile("" : : "r"(entry));
    }
  }

  // Lookups without side effects, for ICMP errors (which never create state).
  uint32_t FindOutside(uint16_t external_port, const Addr& remote, uint16_t remote_port) const {
    auto it = by_outside_.find(OutsideKey<Addr>{remote, external_port, remote_port});
    return it == by_outside_.end() ? kNil : *it;
  }
  uint32_t FindInside(const Addr& inside, uint16_t inside_port, const Addr& remote, uint16_t remote_port) const {
    auto it = by_inside_.find(InsideKey<Addr>{inside, remote, inside_port, remote_port});
    return it == by_inside_.end() ? kNil : *it;
  }

  // Removes every session whose time has come (expires_ms <= now); returns
  // how many. Each list is ordered by linked expiry, which is never later
  // than a session's expires_ms, so the sessions due are among each list's
  // first ones whose linked expiry has come: those due are removed, the
  // others (refreshed since they were linked) go to the ladder: ladder list j
  // takes sessions linked at now + 2^j, j the highest bit of their time left,
  // so each ladder list, too, is in order, a session left alone for its
  // timeout is removed after as many moves as its time left had bits set,
  // and one kept busy moves about twice per timeout, not once per packet.
  // Nothing to do (the common case) costs a comparison.
  size_t Expire(int64_t now) {
    if (!explicit_.empty() && now >= explicit_next_due_) ExpireExplicit(now);
    if (now < next_due_) return 0;
    next_due_ = INT64_MAX;
    size_t n = 0;
    for (uint32_t l = 0; l < kLists; ++l) {
      if (l >= kClasses && !(ladder_used_ >> (l - kClasses) & 1)) continue;
      const uint32_t head = Sentinel(l);
      uint32_t s;
      while ((s = sessions_[head].next) != head && Linked(s) <= now) {
        if (sessions_[s].expires_ms <= now) {
          RemoveSession(s, RemoveReason::kExpired);
          ++n;
        } else {
          Unlink(s);
          LinkLadder(s, now);
        }
      }
      if (s != head) {
        next_due_ = std::min(next_due_, Linked(s));
      } else if (l >= kClasses) {
        ladder_used_ &= ~(uint64_t(1) << (l - kClasses));
      }
    }
    return n;
  }

  // Live settings (natd's SIGHUP): the timeouts, inbound refresh and host
  // quota of `live`; the rest of the configuration stays. New sessions and
  // refreshes use the new timeouts; a session keeps its expiry, except that
  // none is left due later than now + a shortened timeout. A host above a
  // lowered quota keeps its sessions and gets no new one until under it.
  void SetLive(const TableConfig& live, int64_t now) {
    const int64_t timeouts[kClasses] = {live.timeout_ms, live.established_timeout_ms};
    const int64_t before[kClasses] = {cfg_.timeout_ms, cfg_.established_timeout_ms};
    int64_t cap[kClasses];
    bool any = false;
    for (uint32_t k = 0; k < kClasses; ++k) {
      const bool shorter = timeouts[k] > 0 && timeouts[k] < before[k];
      cap[k] = shorter ? now + timeouts[k] : INT64_MAX;
      any |= shorter;
    }
    if (any) {
      // A capped session whose linked expiry is now later than its expiry
      // goes to its class's list, linked at the cap: every other session of
      // the class there is linked no later (the list holds that class only).
      std::vector<uint32_t> relink;
      ForEachSessionIndex([&](uint32_t s) {
        Session& ss = sessions_[s];
        const int64_t c = cap[ss.timeout_class];
        if (ss.expires_ms <= c) return;
        const int64_t linked = Linked(s);
        ss.expires_ms = c;
        if (linked <= c) {
          ss.lag = uint32_t(c - linked);
        } else {
          Unlink(s);  // the walk has its next already
          relink.push_back(s);
        }
      });
      for (uint32_t s : relink) Link(Sentinel(sessions_[s].timeout_class), s, sessions_[s].expires_ms);
    }
    if (live.host_quota == 0) {
      hosts_.clear();
    } else if (cfg_.host_quota == 0) {  // not counted so far
      ForEachSessionIndex([&](uint32_t s) { ++hosts_[mappings_[sessions_[s].mapping].inside]; });
    }
    cfg_.timeout_ms = live.timeout_ms;
    cfg_.established_timeout_ms = live.established_timeout_ms;
    cfg_.inbound_refresh = live.inbound_refresh;
    cfg_.host_quota = live.host_quota;
  }

  // Removes everything (shutdown, tests).
  void Flush() {
    while (!explicit_.empty()) UnpinExplicit(explicit_.begin());
    for (uint32_t l = 0; l < kLists; ++l) {
      const uint32_t head = Sentinel(l);
      while (sessions_[head].next != head) RemoveSession(sessions_[head].next, RemoveReason::kFlushed);
    }
    ladder_used_ = 0;
    next_due_ = INT64_MAX;
  }

  // --- Explicit mappings (PCP / NAT-PMP) ---------------------------------
  enum class ExplicitCode : uint8_t { kOk, kNoPort, kTableFull, kQuota };
  struct ExplicitResult {
    ExplicitCode code = ExplicitCode::kOk;
    uint16_t external_port = 0;
  };
  // Makes (or refreshes) the explicit mapping of inside:inside_port until
  // `until_ms`. The port: the one the endpoint already has, else the
  // suggested one, else the inside port, else any free one — unless
  // prefer_failure and the suggested one cannot be had (kNoPort).
  ExplicitResult MapExplicit(const Addr& inside, uint16_t inside_port, uint16_t suggested, bool prefer_failure,
                             int64_t until_ms, int64_t now) {
    const EndpointKey<Addr> ek{inside, inside_port};
    if (auto it = explicit_.find(ek); it != explicit_.end()) {
      it->second.until_ms = until_ms;
      explicit_next_due_ = std::min(explicit_next_due_, until_ms);
      return {ExplicitCode::kOk, mappings_[it->second.mapping].external_port};
    }
    if (explicit_.size() >= cfg_.explicit_capacity) return {ExplicitCode::kTableFull, 0};
    if (cfg_.explicit_per_host) {
      uint32_t mine = 0;
      for (const auto& [k, e] : explicit_) mine += k.inside == inside;
      if (mine >= cfg_.explicit_per_host) return {ExplicitCode::kQuota, 0};
    }
    uint32_t m = kNil;
    // The endpoint's endpoint-independent dynamic mapping, pinned in place
    // when its port is its own (not shared with other mappings).
    if (auto mit = by_key_.find(InsideKey<Addr>{inside, Addr{}, inside_port, 0}); mit != by_key_.end()) {
      const Mapping& mp = mappings_[*mit];
      const bool alone = cfg_.behavior.sharing == PortSharing::kExclusive || port_users_[mp.external_port] == 1;
      if (alone && (!prefer_failure || suggested == 0 || suggested == mp.external_port)) m = *mit;
    }
    if (m == kNil) {
      if (mapping_count() >= cfg_.capacity) return {ExplicitCode::kTableFull, 0};
      uint16_t port = 0;
      if (suggested != 0 && PortUnused(suggested)) {
        port = suggested;
      } else if (prefer_failure && suggested != 0) {
        return {ExplicitCode::kNoPort, 0};
      } else if (PortUnused(inside_port)) {
        port = inside_port;
      } else {
        const uint32_t n = static_cast<uint32_t>(slice_->size());
        const uint32_t start = rng_->Below(n);
        for (uint32_t i = 0; i < n && port == 0; ++i) {
          const uint16_t p = (*slice_)[(start + i) % n];
          if (PortUnused(p)) port = p;
        }
      }
      if (port == 0) return {ExplicitCode::kNoPort, 0};
      // (With exclusive ports, a free port means a free mapping slot.)
      if (free_mapping_ == kNil) return {ExplicitCode::kTableFull, 0};
      const InsideKey<Addr> key{inside, Addr{}, inside_port, 0};
      if (by_key_.contains(key)) return {ExplicitCode::kNoPort, 0};  // its dynamic one shares its port
      m = CreateMapping(key, inside, inside_port, port, Addr{}, 0, now);
    }
    mappings_[m].pinned = true;
    explicit_.emplace(ek, Explicit{m, until_ms});
    explicit_ports_.emplace(mappings_[m].external_port, m);
    explicit_next_due_ = std::min(explicit_next_due_, until_ms);
    return {ExplicitCode::kOk, mappings_[m].external_port};
  }

  // Deletes the explicit mapping of inside:inside_port (every one of the
  // inside address's when inside_port is 0); returns how many. Sessions it
  // has keep it until they end.
  size_t UnmapExplicit(const Addr& inside, uint16_t inside_port) {
    size_t n = 0;
    if (inside_port != 0) {
      auto it = explicit_.find(EndpointKey<Addr>{inside, inside_port});
      if (it == explicit_.end()) return 0;
      UnpinExplicit(it);
      return 1;
    }
    for (auto it = explicit_.begin(); it != explicit_.end();) {
      auto next = std::next(it);
      if (it->first.inside == inside) {
        UnpinExplicit(it);
        ++n;
      }
      it = next;
    }
    return n;
  }

  // fn(mapping, until_ms) for every explicit mapping.
  template <typename Fn>
  void ForEachExplicit(Fn&& fn) const {
    for (const auto& [k, e] : explicit_) fn(mappings_[e.mapping], e.until_ms);
  }
  size_t explicit_count() const { return explicit_.size(); }

  const Session& session(uint32_t s) const { return sessions_[s]; }
  const Mapping& mapping(uint32_t m) const { return mappings_[m]; }
  const Mapping& mapping_of(uint32_t s) const { return mappings_[sessions_[s].mapping]; }
  size_t session_count() const { return by_inside_.size(); }
  size_t mapping_count() const { return by_key_.size(); }
  const TableConfig& config() const { return cfg_; }
  const Addr& global() const { return global_; }

  // Visits every live session with its mapping (in the order of the expiry
  // lists, not of expiry).
  template <typename Fn>
  void ForEachSession(Fn&& fn) const {
    ForEachSessionIndex([&](uint32_t s) { fn(mappings_[sessions_[s].mapping], sessions_[s]); });
  }

  // Saving and restoring the table across a restart of natd (state_file.h).
  // A saved mapping carries every field its keys and checksum deltas derive
  // from, with its live sessions; times are relative to a moment `now`,
  // because the monotonic clock natd runs on starts again with the process.
  struct SavedSession {
    Addr remote;
    uint16_t remote_port = 0;
    uint8_t tcp_state = 0;
    uint8_t timeout_class = 0;
    int64_t remaining_ms = 0;  // expires_ms - now
  };
  struct SavedMapping {
    Addr inside;
    Addr remote_key;
    uint16_t inside_port = 0;
    uint16_t external_port = 0;
    uint16_t remote_port_key = 0;
    int64_t age_ms = 0;   // now - created_ms
    int64_t idle_ms = 0;  // now - last_ms
    uint64_t packets_out = 0, bytes_out = 0, packets_in = 0, bytes_in = 0;
    std::vector<SavedSession> sessions;
  };

  // Every live mapping with its sessions; sessions already due at `now`
  // (not yet expired only because no worker ran Expire since) are left out,
  // and so are mappings left without one.
  std::vector<SavedMapping> Save(int64_t now) const {
    std::vector<SavedMapping> out;
    absl::flat_hash_map<uint32_t, size_t> slot;  // mapping index -> position in out
    slot.reserve(by_key_.size());
    ForEachSessionIndex([&](uint32_t s) {
      const Session& ss = sessions_[s];
      if (ss.expires_ms <= now) return;
      auto [it, inserted] = slot.try_emplace(ss.mapping, out.size());
      if (inserted) {
        const Mapping& mp = mappings_[ss.mapping];
        SavedMapping& sm = out.emplace_back();
        sm.inside = mp.inside;
        sm.remote_key = mp.remote_key;
        sm.inside_port = mp.inside_port;
        sm.external_port = mp.external_port;
        sm.remote_port_key = mp.remote_port_key;
        sm.age_ms = now - mp.created_ms;
        sm.idle_ms = now - mp.last_ms;
        sm.packets_out = mp.packets_out;
        sm.bytes_out = mp.bytes_out;
        sm.packets_in = mp.packets_in;
        sm.bytes_in = mp.bytes_in;
      }
      out[it->second].sessions.push_back(
          SavedSession{ss.remote, ss.remote_port, ss.tcp_state, ss.timeout_class, ss.expires_ms - now});
    });
    return out;
  }

  // Whether `saved` can be restored into this table, which must be empty:
  // the table's own rules hold for it as they do for what packets build.
  // Every external port is in this shard's slice and shared no more than
  // the behaviour allows, every session's mapping key is its mapping's
  // (unless filtering looser than the mapping could have let it in), keys
  // are unique, TCP state and timeout class agree, lifetimes are
  // positive, and it fits the capacity. A file written by natd with the
  // same configuration always passes; anything else is refused whole.
  absl::Status CheckRestore(const std::vector<SavedMapping>& saved) const {
    if (session_count() != 0) return absl::FailedPreconditionError("the table is not empty");
    size_t sessions = 0;
    for (const SavedMapping& sm : saved) sessions += sm.sessions.size();
    if (sessions > cfg_.capacity) {
      return absl::ResourceExhaustedError(
          absl::StrCat(sessions, " sessions, more than the table's capacity of ", cfg_.capacity));
    }
    if (saved.size() > mappings_.size()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(saved.size(), " mappings, more than the table's ", mappings_.size()));
    }
    absl::flat_hash_set<InsideKey<Addr>, TableHash> keys, inside_keys;
    absl::flat_hash_set<OutsideKey<Addr>, TableHash> outside_keys;
    absl::flat_hash_map<AddrKey<Addr>, size_t, TableHash> port_per_addr;  // per remote address: whose port
    absl::flat_hash_set<uint16_t> exclusive_ports;
    // Outbound, a session joins the mapping of its own key; inbound, filtering
    // looser than the mapping's dependence lets other remote ends join it too.
    const bool inbound_may_differ = cfg_.behavior.filtering < cfg_.behavior.mapping;
    keys.reserve(saved.size());
    inside_keys.reserve(sessions);
    outside_keys.reserve(sessions);
    for (size_t i = 0; i < saved.size(); ++i) {
      const SavedMapping& sm = saved[i];
      auto where = [&] {
        return absl::StrCat("mapping ", i, " (inside port ", sm.inside_port, ", external port ", sm.external_port,
                            "): ");
      };
      if (sm.sessions.empty()) return absl::DataLossError(absl::StrCat(where(), "no session"));
      if (!Owned(sm.external_port)) {
        return absl::DataLossError(absl::StrCat(where(), "the external port is not in shard ", shard_, "'s ports"));
      }
      if (sm.age_ms < 0 || sm.idle_ms < 0 || sm.idle_ms > sm.age_ms) {
        return absl::DataLossError(absl::StrCat(where(), "age ", sm.age_ms, " ms, idle ", sm.idle_ms, " ms"));
      }
      const InsideKey<Addr> key{sm.inside, sm.remote_key, sm.inside_port, sm.remote_port_key};
      if (!(MappingKeyOf(sm.inside, sm.inside_port, sm.remote_key, sm.remote_port_key) == key)) {
        return absl::DataLossError(absl::StrCat(where(), "its key is not one of behaviour ",
                                                std::string(cfg_.behavior.name)));
      }
      if (!keys.insert(key).second) return absl::DataLossError(absl::StrCat(where(), "its key is there twice"));
      if (cfg_.behavior.sharing == PortSharing::kExclusive && !exclusive_ports.insert(sm.external_port).second) {
        return absl::DataLossError(absl::StrCat(where(), "the external port belongs to another mapping"));
      }
      for (const SavedSession& ss : sm.sessions) {
        auto where_session = [&] { return absl::StrCat(where(), "session to port ", ss.remote_port, ": "); };
        if (!inbound_may_differ && !(MappingKeyOf(sm.inside, sm.inside_port, ss.remote, ss.remote_port) == key)) {
          return absl::DataLossError(absl::StrCat(where_session(), "not of this mapping's key (behaviour ",
                                                  std::string(cfg_.behavior.name), ")"));
        }
        if (!is_tcp() && (ss.tcp_state != 0 || ss.timeout_class != 0)) {
          return absl::DataLossError(
              absl::StrCat(where_session(), "TCP state in a table of protocol ", int(cfg_.proto)));
        }
        if (is_tcp() && (ss.tcp_state >= 0x80 || ss.timeout_class != (LiveTcp(ss.tcp_state) ? 1 : 0))) {
          return absl::DataLossError(absl::StrCat(where_session(), "TCP state ", int(ss.tcp_state),
                                                  " with timeout class ", int(ss.timeout_class)));
        }
        if ((cfg_.proto == kProtoIcmp || cfg_.proto == kProtoIcmp6) && ss.remote_port != 0) {
          return absl::DataLossError(absl::StrCat(where_session(), "an echo session has no remote port"));
        }
        if (ss.remaining_ms <= 0) {
          return absl::DataLossError(absl::StrCat(where_session(), "lifetime ", ss.remaining_ms, " ms"));
        }
        if (!inside_keys.insert(InsideKey<Addr>{sm.inside, ss.remote, sm.inside_port, ss.remote_port}).second ||
            !outside_keys.insert(OutsideKey<Addr>{ss.remote, sm.external_port, ss.remote_port}).second) {
          return absl::DataLossError(absl::StrCat(where_session(), "there twice"));
        }
        if (cfg_.behavior.sharing == PortSharing::kPerRemoteAddress) {
          auto [it, inserted] = port_per_addr.try_emplace(AddrKey<Addr>{ss.remote, sm.external_port}, i);
          if (it->second != i) {
            return absl::DataLossError(
                absl::StrCat(where_session(), "the external port belongs to another mapping for this address"));
          }
        }
      }
    }
    return absl::OkStatus();
  }

  // Restores what CheckRestore accepts (and refuses the rest, changing
  // nothing) through the same steps that build live entries, so every index,
  // counter and event is as if the packets had come again: mappings oldest
  // first (an endpoint's "last port" stays the newest one's), then sessions
  // in order of expiry, so each expiry list stays sorted. A lifetime longer
  // than this table's timeout now allows (the timeout was shortened) is cut
  // to it. Returns the sessions restored.
  absl::StatusOr<size_t> Restore(const std::vector<SavedMapping>& saved, int64_t now) {
    if (absl::Status s = CheckRestore(saved); !s.ok()) return s;
    std::vector<size_t> order(saved.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return saved[a].age_ms > saved[b].age_ms; });
    struct Pending {
      int64_t remaining_ms;
      uint32_t mapping;
      const SavedSession* session;
    };
    std::vector<Pending> pending;
    for (size_t i : order) {
      const SavedMapping& sm = saved[i];
      const SavedSession& first = sm.sessions.front();
      const uint32_t m =
          CreateMapping(InsideKey<Addr>{sm.inside, sm.remote_key, sm.inside_port, sm.remote_port_key}, sm.inside,
                        sm.inside_port, sm.external_port, first.remote, first.remote_port, now);
      Mapping& mp = mappings_[m];
      mp.created_ms = now - sm.age_ms;
      mp.last_ms = now - sm.idle_ms;
      mp.packets_out = sm.packets_out;
      mp.bytes_out = sm.bytes_out;
      mp.packets_in = sm.packets_in;
      mp.bytes_in = sm.bytes_in;
      for (const SavedSession& ss : sm.sessions) {
        const int64_t longest = ss.timeout_class == 1 ? cfg_.established_timeout_ms : cfg_.timeout_ms;
        pending.push_back(Pending{std::min(ss.remaining_ms, longest), m, &ss});
      }
    }
    std::stable_sort(pending.begin(), pending.end(),
                     [](const Pending& a, const Pending& b) { return a.remaining_ms < b.remaining_ms; });
    for (const Pending& p : pending) {
      const uint32_t s = CreateSession(p.mapping, p.session->remote, p.session->remote_port, now);
      sessions_[s].tcp_state = p.session->tcp_state;
      Relink(s, p.session->timeout_class, now + p.remaining_ms);
    }
    return pending.size();
  }

 private:
  struct Explicit {
    uint32_t mapping;
    int64_t until_ms;
  };
  // Every map is reserve()d at start with TableAllocator (huge pages for the
  // big ones; every page made resident when cfg_.prefault asks).
  template <typename K, typename V, typename H = TableHash>
  using Map = absl::flat_hash_map<K, V, H, std::equal_to<K>, TableAllocator<std::pair<const K, V>>>;
  template <typename M>
  static void Build(M& map, size_t n, bool prefault) {
    map = M(0, typename M::hasher(), typename M::key_equal(), typename M::allocator_type(prefault));
    map.reserve(n);
  }
  using ExplicitMap = Map<EndpointKey<Addr>, Explicit>;

  // The three big maps are sets of indices: a slot holds a session's (or a
  // mapping's) u32 index and nothing else, and the key is read from the
  // entries when it is needed (4 bytes a slot instead of 16 to 48). Their
  // Hash and Eq are one transparent functor that points at the table's
  // arrays: an index hashes as the key its entries hold, and a lookup by key
  // compares the entries of each candidate index with it (heterogeneous
  // find). So an entry's key fields must not change while its index is in a
  // set: a session is inserted once its fields are set and erased before
  // they are cleared, and likewise a mapping. The arrays never move (sized
  // in the constructor, and the table itself is neither copied nor moved).
  //
  // A packet's lookup reads the candidate's session (remote, remote port)
  // and, when those match, its mapping (inside endpoint, or external port):
  // the same two entries Touch and the rewrite read next, so a hit costs no
  // cache line beyond what it did with keys in the slots.
  enum class IndexOf { kInside, kOutside, kMapping };
  // A key to look up for the look-ahead only: every candidate index (a slot
  // whose control byte matches) has its session prefetched and is kept in
  // *candidate (the last one: nearly always the only one), and none
  // matches, so the lookup reads the control bytes and slots and no entry.
  template <typename K>
  struct Probe {
    Hashed<K> k;
    uint32_t* candidate;
  };
  template <IndexOf kWhat>
  struct ByIndex {
    using is_transparent = void;
    using Key = std::conditional_t<kWhat == IndexOf::kOutside, OutsideKey<Addr>, InsideKey<Addr>>;
    const Session* sessions = nullptr;
    const Mapping* mappings = nullptr;

    Key KeyAt(uint32_t i) const {
      if constexpr (kWhat == IndexOf::kMapping) {
        return KeyOf(mappings[i]);
      } else {
        const Session& ss = sessions[i];
        const Mapping& mp = mappings[ss.mapping];
        if constexpr (kWhat == IndexOf::kInside) {
          return Key{mp.inside, ss.remote, mp.inside_port, ss.remote_port};
        } else {
          return Key{ss.remote, mp.external_port, ss.remote_port};
        }
      }
    }
    bool Matches(uint32_t i, const Key& k) const {
      if constexpr (kWhat == IndexOf::kMapping) {
        return KeyAt(i) == k;
      } else {
        // The session first: a different remote end never reads the mapping.
        const Session& ss = sessions[i];
        if (!(ss.remote == k.remote) || ss.remote_port != k.remote_port) return false;
        const Mapping& mp = mappings[ss.mapping];
        if constexpr (kWhat == IndexOf::kInside) {
          return mp.inside == k.inside && mp.inside_port == k.inside_port;
        } else {
          return mp.external_port == k.external_port;
        }
      }
    }

    // Hash: identical for a key and for the index that holds it, and for
    // a key carried with its hash (Hashed, see there), which is checked in
    // debug and sanitizer builds.
    size_t operator()(uint32_t i) const { return TableHash()(KeyAt(i)); }
    size_t operator()(const Key& k) const { return TableHash()(k); }
    size_t operator()(const Hashed<Key>& k) const {
#if defined(NATD_VERIFY_CHECKSUMS) || !defined(NDEBUG)
      if (k.hash != TableHash()(k.key)) {
        std::fprintf(stderr, "natd: BUG: a key carried with a hash that is not its own\n");
        std::abort();
      }
#endif
      return k.hash;
    }
    size_t operator()(const Probe<Key>& p) const { return (*this)(p.k); }
    // Eq. Two indices: the same entry (a set never holds two with one key).
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t i, const Key& k) const { return Matches(i, k); }
    bool operator()(const Key& k, uint32_t i) const { return Matches(i, k); }
    bool operator()(uint32_t i, const Hashed<Key>& k) const { return Matches(i, k.key); }
    bool operator()(const Hashed<Key>& k, uint32_t i) const { return Matches(i, k.key); }
    bool operator()(uint32_t i, const Probe<Key>& p) const {
      *p.candidate = i;
      const char* entry;
      if constexpr (kWhat == IndexOf::kMapping) {
        entry = reinterpret_cast<const char*>(&mappings[i]);
      } else {
        entry = reinterpret_cast<const char*>(&sessions[i]);
        // An IPv6 session (48 bytes) straddles two cache lines every other one.
        if constexpr (64 % sizeof(Session) != 0) __builtin_prefetch(entry + sizeof(Session) - 1);
      }
      __builtin_prefetch(entry);
      // Not pure (see PrefetchSlots): the lookup must not be dropped.
      asm volatile("" : : "r"(entry));
      return false;
    }
    bool operator()(const Probe<Key>& p, uint32_t i) const { return (*this)(i, p); }
  };
  // Whether session s (kNil: none) is live and holds key k of index kWhat.
  template <IndexOf kWhat>
  [[gnu::always_inline]] bool Holds(uint32_t s, const typename ByIndex<kWhat>::Key& k) const {
    // A free session keeps its remote end but names no mapping.
    return s != kNil && sessions_[s].mapping != kNil &&
           ByIndex<kWhat>{sessions_.data(), mappings_.data()}.Matches(s, k);
  }
  // The session under `key` in `set` (kWhat's index), or kNil. In a batch
  // (`ahead`: the key Process's look-ahead hashed for the packet): the
  // look-ahead's `candidate` in this table, when it is live and holds the
  // key, is the session, found without a probe (every live session is in
  // both index sets, under keys no other one has); else a find under the
  // look-ahead's hash when it was computed for this key (compared here, so
  // the look-ahead's own reading of the packet can never lead the lookup
  // astray: a key compare costs less than hashing it again).
  // (Not const: abseil's const find calls the other, a level of calls that
  // kept it from being inlined here, 40 instructions a packet one by one.)
  template <IndexOf kWhat, typename Set>
  [[gnu::always_inline]] uint32_t FindSession(Set& set, const typename ByIndex<kWhat>::Key& key,
                                              const Hashed<typename ByIndex<kWhat>::Key>* ahead,
                                              uint32_t candidate) {
    uint32_t s = candidate;
    if (ahead == nullptr || !Holds<kWhat>(s, key)) {
      // (Two finds, not one of a hash picked by a ternary: one by one, that
      // cost 10 instructions a packet more, measured.)
      auto it = ahead == nullptr ? set.find(key)
                                 : set.find(Hashed<typename ByIndex<kWhat>::Key>{
                                       key, ahead->key == key ? ahead->hash : TableHash()(key)});
      s = it == set.end() ? kNil : *it;
    }
    return s;
  }
  template <IndexOf kWhat>
  using IndexSet = absl::flat_hash_set<uint32_t, ByIndex<kWhat>, ByIndex<kWhat>, TableAllocator<uint32_t>>;
  template <typename S>
  void BuildIndex(S& set, size_t n, bool prefault) {
    const typename S::hasher fn{sessions_.data(), mappings_.data()};
    set = S(0, fn, fn, typename S::allocator_type(prefault));
    set.reserve(n);
  }

  static InsideKey<Addr> KeyOf(const Mapping& mp) {
    return InsideKey<Addr>{mp.inside, mp.remote_key, mp.inside_port, mp.remote_port_key};
  }

  // No mapping at all uses the port (an explicit mapping's must be its own).
  bool PortUnused(uint16_t port) const {
    if (!Owned(port) || explicit_ports_.contains(port)) return false;
    return cfg_.behavior.sharing == PortSharing::kExclusive ? port_owner_[port] == kNil : port_users_[port] == 0;
  }

  void UnpinExplicit(typename ExplicitMap::iterator it) {
    const uint32_t m = it->second.mapping;
    explicit_.erase(it);
    Mapping& mp = mappings_[m];
    explicit_ports_.erase(mp.external_port);
    mp.pinned = false;
    if (mp.sessions == 0) RemoveMapping(m, RemoveReason::kExpired);
  }

  void ExpireExplicit(int64_t now) {
    explicit_next_due_ = INT64_MAX;
    for (auto it = explicit_.begin(); it != explicit_.end();) {
      auto next = std::next(it);
      if (it->second.until_ms <= now) {
        UnpinExplicit(it);
      } else {
        explicit_next_due_ = std::min(explicit_next_due_, it->second.until_ms);
      }
      it = next;
    }
  }

  struct AddrRef {
    uint32_t mapping;
    uint32_t sessions;
  };
  struct EndpointRef {
    uint16_t last_port;
    uint32_t mappings;
  };

  bool is_tcp() const { return cfg_.proto == kProtoTcp; }

  bool OverQuota(const Addr& inside) const {
    if (cfg_.host_quota == 0) return false;
    auto it = hosts_.find(inside);
    return it != hosts_.end() && it->second >= cfg_.host_quota;
  }

  InsideKey<Addr> MappingKeyOf(const Addr& inside, uint16_t inside_port, const Addr& remote,
                               uint16_t remote_port) const {
    InsideKey<Addr> k{inside, Addr{}, inside_port, 0};
    if (cfg_.behavior.mapping != Dependence::kEndpointIndependent) k.remote = remote;
    if (cfg_.behavior.mapping == Dependence::kAddressPortDependent) k.remote_port = remote_port;
    return k;
  }

  // Whether `port` can be given to a new mapping towards remote:remote_port.
  bool PortFree(uint16_t port, const Addr& remote, uint16_t remote_port) const {
    switch (cfg_.behavior.sharing) {
      case PortSharing::kExclusive:
        return port_owner_[port] == kNil;
      case PortSharing::kPerRemoteAddress:
        return !by_addr_.contains(AddrKey<Addr>{remote, port}) && !IsExplicitPort(port);
      case PortSharing::kPerRemoteEndpoint:
        return !by_outside_.contains(OutsideKey<Addr>{remote, port, remote_port}) && !IsExplicitPort(port);
    }
    return false;
  }

  bool IsExplicitPort(uint16_t port) const { return !explicit_ports_.empty() && explicit_ports_.contains(port); }

  bool Owned(uint16_t port) const { return port != 0 && plan_->OwnerOf(port) == shard_; }

  // Picks an external port by the behaviour's strategy; 0 when none is free.
  uint16_t AllocatePort(const Addr& inside, uint16_t inside_port, const Addr& remote, uint16_t remote_port) {
    auto ok = [&](uint16_t p) { return Owned(p) && PortFree(p, remote, remote_port); };
    const uint32_t n = static_cast<uint32_t>(slice_->size());
    const bool exclusive = cfg_.behavior.sharing == PortSharing::kExclusive;
    if (exclusive && exclusive_used_ >= n) return 0;
    const EndpointRef* ep = nullptr;
    if (track_endpoints_) {
      auto it = endpoints_.find(EndpointKey<Addr>{inside, inside_port});
      if (it != endpoints_.end()) ep = &it->second;
    }
    switch (cfg_.behavior.strategy) {
      case PortStrategy::kPreserve:
        if (ok(inside_port)) return inside_port;
        break;
      case PortStrategy::kReuseLast:
        if (ep && ok(ep->last_port)) return ep->last_port;
        if (ok(inside_port)) return inside_port;
        break;
      case PortStrategy::kIncrement: {
        // The next free port after the last one given (or from the inside
        // port, or a random place), upwards through the slice.
        uint32_t start;
        if (ep) {
          start = plan_->IndexInSlice(ep->last_port) + 1;
        } else if (Owned(inside_port)) {
          start = plan_->IndexInSlice(inside_port);
        } else {
          start = rng_->Below(n);
        }
        const uint32_t limit = exclusive ? n : std::min(n, cfg_.port_probes);
        for (uint32_t i = 0; i < limit; ++i) {
          uint16_t p = (*slice_)[(start + i) % n];
          if (PortFree(p, remote, remote_port)) return p;
        }
        return 0;
      }
      case PortStrategy::kRandom:
        break;
    }
    for (uint32_t i = 0; i < cfg_.port_probes; ++i) {
      uint16_t p = (*slice_)[rng_->Below(n)];
      if (PortFree(p, remote, remote_port)) return p;
    }
    if (exclusive) {
      // Some port is free (checked above): find it from a random place.
      uint32_t start = rng_->Below(n);
      for (uint32_t i = 0; i < n; ++i) {
        uint16_t p = (*slice_)[(start + i) % n];
        if (port_owner_[p] == kNil) return p;
      }
    }
    return 0;
  }

  uint32_t CreateMapping(const InsideKey<Addr>& key, const Addr& inside, uint16_t inside_port, uint16_t port,
                         const Addr& remote, uint16_t remote_port, int64_t now) {
    uint32_t m = free_mapping_;
    Mapping& mp = mappings_[m];
    free_mapping_ = mp.sessions;  // free: the next free one
    mp = Mapping{};
    mp.inside = inside;
    mp.remote_key = key.remote;
    mp.inside_port = inside_port;
    mp.external_port = port;
    mp.remote_port_key = key.remote_port;
    mp.created_ms = mp.last_ms = now;
    // Deltas for inside -> outside; the reverse uses their negation.
    const uint16_t addr_delta = AddrDelta(inside, global_);
    const uint16_t port_delta = Delta16(ToRaw16(inside_port), ToRaw16(port));
    mp.ip_delta = addr_delta;
    // ICMPv4 has no pseudo-header: only the identifier is summed.
    mp.l4_delta = cfg_.proto == kProtoIcmp ? port_delta : AddDelta(addr_delta, port_delta);
    by_key_.insert(m);  // its key (KeyOf(mp)) is `key`
    if (cfg_.behavior.sharing == PortSharing::kExclusive) {
      port_owner_[port] = m;
      ++exclusive_used_;
    } else if (!port_users_.empty()) {
      ++port_users_[port];
    }
    if (track_endpoints_) {
      auto [it, inserted] = endpoints_.try_emplace(EndpointKey<Addr>{inside, inside_port}, EndpointRef{port, 0});
      it->second.last_port = port;
      ++it->second.mappings;
    }
    counters_->mappings_inserted.Add();
    events_->MappingInserted(EventOf(mp, remote, remote_port));
    return m;
  }

  void RemoveMapping(uint32_t m, RemoveReason why) {
    Mapping& mp = mappings_[m];
    by_key_.erase(m);  // before mp's key fields change
    if (cfg_.behavior.sharing == PortSharing::kExclusive) {
      port_owner_[mp.external_port] = kNil;
      --exclusive_used_;
    } else if (!port_users_.empty()) {
      --port_users_[mp.external_port];
    }
    if (track_endpoints_) {
      auto it = endpoints_.find(EndpointKey<Addr>{mp.inside, mp.inside_port});
      if (it != endpoints_.end() && --it->second.mappings == 0) endpoints_.erase(it);
    }
    counters_->mappings_removed.Add();
    events_->MappingRemoved(EventOf(mp, mp.remote_key, mp.remote_port_key), why);
    mp.sessions = free_mapping_;  // free: the next free one
    free_mapping_ = m;
  }

  uint32_t CreateSession(uint32_t m, const Addr& remote, uint16_t remote_port, int64_t now) {
    uint32_t s = free_session_;
    Session& ss = sessions_[s];
    free_session_ = ss.next;
    Mapping& mp = mappings_[m];
    ss = Session{};
    ss.mapping = m;
    ss.remote = remote;
    ss.remote_port = remote_port;
    ss.expires_ms = now + cfg_.timeout_ms;
    Link(Sentinel(0), s, ss.expires_ms);
    // The session's key fields are set: its keys are computed from them.
    by_inside_.insert(s);
    by_outside_.insert(s);
    if (track_addr_) {
      auto [it, inserted] = by_addr_.try_emplace(AddrKey<Addr>{remote, mp.external_port}, AddrRef{m, 0});
      ++it->second.sessions;
    }
    ++mp.sessions;
    if (cfg_.host_quota) ++hosts_[mp.inside];
    counters_->sessions_inserted.Add();
    return s;
  }

  void RemoveSession(uint32_t s, RemoveReason why) {
    Session& ss = sessions_[s];
    const uint32_t m = ss.mapping;
    Mapping& mp = mappings_[m];
    Unlink(s);
    by_inside_.erase(s);  // while ss.mapping still names its mapping
    by_outside_.erase(s);
    if (track_addr_) {
      auto it = by_addr_.find(AddrKey<Addr>{ss.remote, mp.external_port});
      if (it != by_addr_.end() && --it->second.sessions == 0) by_addr_.erase(it);
    }
    if (cfg_.host_quota) {
      auto it = hosts_.find(mp.inside);
      if (it != hosts_.end() && --it->second == 0) hosts_.erase(it);
    }
    ss.mapping = kNil;
    ss.next = free_session_;
    free_session_ = s;
    counters_->sessions_removed.Add();
    if (--mp.sessions == 0 && !mp.pinned) RemoveMapping(m, why);
  }

  // Accounts a packet, advances TCP state and refreshes the session's timer.
  [[gnu::always_inline]] void Touch(uint32_t s, Direction dir, uint8_t tcp_flags, uint32_t bytes, int64_t now) {
    Session& ss = sessions_[s];
    Mapping& mp = mappings_[ss.mapping];
    mp.last_ms = now;
    if (dir == Direction::kOut) {
      ++mp.packets_out;
      mp.bytes_out += bytes;
    } else {
      ++mp.packets_in;
      mp.bytes_in += bytes;
    }
    if (is_tcp()) {
      uint8_t st = NextTcpState(ss.tcp_state, dir, tcp_flags);
      ss.tcp_state = st;
      const bool established = LiveTcp(st);
      Refresh(s, established ? 1 : 0, established ? cfg_.established_timeout_ms : cfg_.timeout_ms, now);
    } else if (dir == Direction::kOut || cfg_.inbound_refresh) {
      Refresh(s, 0, cfg_.timeout_ms, now);
    }
  }

  // Established and not closing: the session has the established timeout
  // (timeout class 1); any other TCP state the transitory one.
  static bool LiveTcp(uint8_t st) {
    return (st & kTcpStEstablished) && !(st & kTcpStRst) && !((st & kTcpStFinOut) && (st & kTcpStFinIn));
  }

  static uint8_t NextTcpState(uint8_t st, Direction dir, uint8_t flags) {
    const bool out = dir == Direction::kOut;
    if (flags & kTcpRst) return st | kTcpStRst;
    // Traffic after a RST on an established connection: the RST was stray
    // or spoofed and the endpoints ignored it (RFC 5961), so the session is
    // established again (RFC 6146 §3.5.2.2) rather than left to die after
    // the transitory timeout.
    if ((st & kTcpStRst) && !(flags & kTcpSyn) && (st & kTcpStEstablished)) st &= uint8_t(~kTcpStRst);
    if (flags & kTcpSyn) {
      // A new connection on the same 4-tuple after the old one closed.
      if ((st & kTcpStRst) || ((st & kTcpStFinOut) && (st & kTcpStFinIn))) st = 0;
      st |= out ? kTcpStSynOut : kTcpStSynIn;
    }
    if (flags & kTcpFin) st |= out ? kTcpStFinOut : kTcpStFinIn;
    if ((st & kTcpStSynOut) && (st & kTcpStSynIn)) st |= kTcpStEstablished;
    // Picked up mid-stream (e.g. natd restarted): live once the far end answers.
    if ((st & kTcpStMidstream) && !out) st |= kTcpStEstablished;
    return st;
  }

  // A packet's refresh: only the expiry moves (later, and its linked expiry
  // stays), unless the timeout class changes, the expiry would be earlier
  // than the linked one, or too far from it for `lag`: then it is linked
  // again, at the tail of its class's list.
  [[gnu::always_inline]] void Refresh(uint32_t s, uint8_t klass, int64_t timeout, int64_t now) {
    Session& ss = sessions_[s];
    const int64_t expires = now + timeout;
    const int64_t lag = int64_t(ss.lag) + (expires - ss.expires_ms);
    if (klass == ss.timeout_class && uint64_t(lag) <= UINT32_MAX) [[likely]] {
      ss.expires_ms = expires;
      ss.lag = uint32_t(lag);
      return;
    }
    Relink(s, klass, expires);
  }

  // --- Expiry lists -----------------------------------------------------
  // Lists 0 and 1: the timeout classes; 2..: the ladder (see Expire). A
  // list is circular through its sentinel, sessions_[Sentinel(l)].
  static constexpr uint32_t kClasses = 2;
  static constexpr uint32_t kLadder = 64;
  static constexpr uint32_t kLists = kClasses + kLadder;
  uint32_t Sentinel(uint32_t list) const { return cfg_.capacity + list; }

  int64_t Linked(uint32_t s) const { return sessions_[s].expires_ms - sessions_[s].lag; }

  // Links s (expires_ms set) into the list of sentinel `head` at `linked`
  // (<= expires_ms, and within UINT32_MAX of it): at the tail, unless the
  // tail is linked later (only when time went backwards), then in order.
  void Link(uint32_t head, uint32_t s, int64_t linked) {
    Session& ss = sessions_[s];
    ss.lag = uint32_t(ss.expires_ms - linked);
    uint32_t after = sessions_[head].prev;
    while (after != head && Linked(after) > linked) after = sessions_[after].prev;
    const uint32_t before = sessions_[after].next;
    ss.prev = after;
    ss.next = before;
    sessions_[after].next = s;
    sessions_[before].prev = s;
    if (after == head) next_due_ = std::min(next_due_, linked);
  }

  void Unlink(uint32_t s) {
    Session& ss = sessions_[s];
    sessions_[ss.prev].next = ss.next;
    sessions_[ss.next].prev = ss.prev;
    ss.prev = ss.next = kNil;
  }

  // A session in class `klass` expiring at `expires`, linked there anew.
  void Relink(uint32_t s, uint8_t klass, int64_t expires) {
    Unlink(s);
    Session& ss = sessions_[s];
    ss.timeout_class = klass;
    ss.expires_ms = expires;
    Link(Sentinel(klass), s, expires);
  }

  // Expire found s refreshed (expires_ms > now): onto the ladder.
  void LinkLadder(uint32_t s, int64_t now) {
    Session& ss = sessions_[s];
    const uint64_t left = uint64_t(ss.expires_ms - now);
    const uint32_t j = uint32_t(std::bit_width(left)) - 1;
    const uint64_t step = uint64_t(1) << j;
    if (left - step > UINT32_MAX) [[unlikely]] {
      // Only with timeouts of months: its class's list, in order.
      Link(Sentinel(ss.timeout_class), s, ss.expires_ms - int64_t(UINT32_MAX));
      return;
    }
    ladder_used_ |= uint64_t(1) << j;
    Link(Sentinel(kClasses + j), s, now + int64_t(step));
  }

  // fn(session index) for every live session, list by list.
  template <typename Fn>
  void ForEachSessionIndex(Fn&& fn) const {
    for (uint32_t l = 0; l < kLists; ++l) {
      const uint32_t head = Sentinel(l);
      for (uint32_t s = sessions_[head].next; s != head;) {
        const uint32_t next = sessions_[s].next;
        fn(s);
        s = next;
      }
    }
  }

  Result Refuse(uint32_t m, const Addr& remote, uint16_t remote_port, DropReason why) {
    const Mapping& mp = mappings_[m];
    events_->MappingRefused(EventOf(mp, remote, remote_port), why);
    return {why, kNil};
  }

  Result RefuseNew(const Addr& inside, uint16_t inside_port, const Addr& remote, uint16_t remote_port,
                   DropReason why) {
    Mapping probe;
    probe.inside = inside;
    probe.inside_port = inside_port;
    events_->MappingRefused(EventOf(probe, remote, remote_port), why);
    return {why, kNil};
  }

  MappingEvent EventOf(const Mapping& mp, const Addr& remote, uint16_t remote_port) const {
    MappingEvent e;
    e.proto = cfg_.proto;
    e.inside.family = e.remote.family = Addr::kFamily;
    mp.inside.Store(e.inside.bytes);
    remote.Store(e.remote.bytes);
    e.inside_port = mp.inside_port;
    e.external_port = mp.external_port;
    e.remote_port = remote_port;
    return e;
  }

  TableConfig cfg_;  // only SetLive changes it
  const Addr global_;
  const uint32_t shard_;
  const PortPlan* const plan_;
  const std::vector<uint16_t>* const slice_;
  Rng* const rng_;
  Counters* const counters_;
  EventSink* const events_;
  bool track_addr_ = false;
  bool track_endpoints_ = false;

  // The arrays every packet reads at random: huge pages when large
  // (table_alloc.h). resize() writes them, so they are resident at start.
  std::vector<Session, TableAllocator<Session>> sessions_;
  std::vector<Mapping, TableAllocator<Mapping>> mappings_;
  uint32_t free_session_ = kNil;
  uint32_t free_mapping_ = kNil;
  uint64_t ladder_used_ = 0;  // bit j: ladder list j may hold sessions
  int64_t next_due_ = INT64_MAX;  // no list's first session is linked earlier

  IndexSet<IndexOf::kInside> by_inside_;
  IndexSet<IndexOf::kOutside> by_outside_;
  IndexSet<IndexOf::kMapping> by_key_;
  Map<AddrKey<Addr>, AddrRef> by_addr_;
  Map<EndpointKey<Addr>, EndpointRef> endpoints_;
  Map<Addr, uint32_t> hosts_;
  std::vector<uint32_t> port_owner_;
  uint32_t exclusive_used_ = 0;
  ExplicitMap explicit_;
  Map<uint16_t, uint32_t, absl::Hash<uint16_t>> explicit_ports_;
  std::vector<uint16_t> port_users_;  // shared-port presets with explicit mappings: mappings per port
  int64_t explicit_next_due_ = INT64_MAX;
};

static_assert(sizeof(MappingTable<Ip4>::Session) == 32, "an IPv4 session is half a cache line");
static_assert(sizeof(MappingTable<Ip4>::Mapping) == 72 && sizeof(MappingTable<Ip6>::Mapping) == 96,
              "mappings: no padding");
static_assert(sizeof(MappingTable<Ip6>::Session) == 48, "an IPv6 session: 44 bytes + alignment");

}  // namespace natd

#endif  // NATD_NAT_MAPPING_TABLE_H_
