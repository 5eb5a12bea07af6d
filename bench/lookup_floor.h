// LookupFloor: the least work a NAT's fast path can do for an established
// packet, timed on the same machine, packets and batches as the engine, so
// that the engine's figures can be read as a ratio to this machine's floor
// (as the lab reads natd's against the kernel's NAT).
//
// It learns each of a Workload's sessions from natd itself: the packet's
// external address and port, and the RFC 1624 deltas of the IPv4 header and
// L4 checksums. It then translates the walk's packets with nothing else:
//
//   version and protocol checked  ->  key = the packet's addresses and ports,
//   hashed  ->  open-addressed table (linear probing, at most half full)  ->
//   rewrite source address and port, two checksum deltas, a last-seen time
//
// and none of natd's features: no other header checks, no status or
// link-local tests, no behaviours (the key is the whole 4-tuple, so no
// mapping shared between sessions), no filtering, no TCP state, no expiry
// lists, no counters, no inbound index, no hairpin, no fragments. Its output
// is natd's, byte for byte (lookup_floor_test), so what natd spends beyond it
// is what those features cost, plus what the floor's shortcuts would not
// survive (one direction only, a table that never deletes).
//
// Two layouts:
//   kIndexed  key -> slot holding a 4-byte index -> the entry in storage
//             apart: two dependent reads a packet. The layout natd's design
//             asks for (table values are indices into preallocated storage,
//             so that two indexes, inside and outside, reach one session).
//   kInline   the entry in the slot itself: one read a packet, possible for
//             one index only.
// Both look ahead in a batch as Shard::Process does: a packet's slot is
// prefetched 8 packets ahead and (kIndexed) its entry 4 ahead.
#ifndef NATD_BENCH_LOOKUP_FLOOR_H_
#define NATD_BENCH_LOOKUP_FLOOR_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "bench/engine_workload.h"
#include "nat/checksum.h"
#include "nat/table_alloc.h"

namespace natd::bench {

enum class FloorLayout { kIndexed, kInline };

template <int kFamily>
class LookupFloor {
 public:
  static constexpr size_t kAddr = kFamily == 4 ? 4 : 16;
  static constexpr size_t kKeyAt = kFamily == 4 ? 12 : 8;  // source address
  static constexpr size_t kKey = 2 * kAddr + 4;            // addresses, ports: contiguous
  static constexpr size_t kL4 = kFamily == 4 ? 20 : 40;

  // Learns every session of `w` (whose shard translates each session's
  // packet once, here). ok() is false if natd did not forward one.
  LookupFloor(Workload& w, uint8_t proto, FloorLayout layout)
      : proto_(proto),
        layout_(layout),
        csum_at_(kL4 + (proto == kProtoTcp ? 16 : 6)),
        min_len_(kL4 + (proto == kProtoTcp ? 20 : 8)) {
    const uint32_t n = w.sessions();
    while ((uint64_t(1) << bits_) < 2 * uint64_t(n)) ++bits_;
    const size_t cap = size_t(1) << bits_;
    if (layout == FloorLayout::kIndexed) {
      slots_.assign(cap, kEmpty);
      entries_.resize(n);
    } else {
      entries_.resize(cap);
    }
    for (uint32_t i = 0; i < n; ++i) {
      const testing::Bytes in = w.PacketOf(i);
      testing::Bytes out = in;
      if (w.shard().ProcessOne(out.data(), uint32_t(out.size()), 1).action != Action::kForward) return;
      Entry e;
      std::memcpy(e.key, in.data() + kKeyAt, kKey);
      std::memcpy(e.global, out.data() + kKeyAt, kAddr);
      std::memcpy(&e.port, out.data() + kL4, 2);
      e.ip_delta = DeltaBytes(in.data() + kKeyAt, out.data() + kKeyAt, kAddr);
      e.l4_delta = AddDelta(e.ip_delta, DeltaBytes(in.data() + kL4, out.data() + kL4, 2));
      e.used = true;
      size_t h = Home(e.key);
      if (layout == FloorLayout::kIndexed) {
        while (slots_[h] != kEmpty) h = (h + 1) & (cap - 1);
        slots_[h] = i;
        entries_[i] = e;
      } else {
        while (entries_[h].used) h = (h + 1) & (cap - 1);
        entries_[h] = e;
      }
    }
    ok_ = true;
  }

  bool ok() const { return ok_; }

  // Translates a batch in place; returns how many were translated (the rest,
  // not IPv4/IPv6 of the protocol or of no known session, are left as they
  // were).
  int Translate(std::span<PacketRef> packets, int64_t now_ms) {
    return layout_ == FloorLayout::kIndexed ? Run<FloorLayout::kIndexed>(packets, now_ms)
                                            : Run<FloorLayout::kInline>(packets, now_ms);
  }

 private:
  static constexpr uint32_t kEmpty = ~0u;
  struct Entry {
    uint8_t key[kKey];
    uint8_t global[kAddr];
    uint16_t port = 0;  // raw (network order)
    uint16_t ip_delta = 0, l4_delta = 0;
    bool used = false;
    int64_t last_ms = 0;
  };
  struct Ahead {
    size_t home = 0;
    uint32_t index = kEmpty;  // kIndexed: the home slot's index
    bool ok = false;
  };

  size_t Home(const uint8_t* key) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    size_t i = 0;
    for (; i + 8 <= kKey; i += 8) {
      uint64_t w;
      std::memcpy(&w, key + i, 8);
      h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
      h ^= h >> 31;
    }
    static_assert(kKey % 8 == 4);
    uint32_t w;
    std::memcpy(&w, key + i, 4);
    h = (h ^ w) * 0x94d049bb133111ebull;
    return size_t(h >> (64 - bits_));
  }
  bool Wanted(const PacketRef& p) const {
    const uint8_t* d = p.data;
    return p.len >= min_len_ && (kFamily == 4 ? d[0] == 0x45 && d[9] == proto_ : (d[0] >> 4) == 6 && d[6] == proto_);
  }

  template <FloorLayout kLayout>
  int Run(std::span<PacketRef> packets, int64_t now) {
    constexpr size_t kSlotAhead = 8, kEntryAhead = 4, kRing = 16;
    const size_t n = packets.size(), mask = (size_t(1) << bits_) - 1;
    Ahead ahead[kRing];
    auto slot_step = [&](size_t i) {
      Ahead& a = ahead[i % kRing];
      a.ok = Wanted(packets[i]);
      if (!a.ok) return;
      a.home = Home(packets[i].data + kKeyAt);
      __builtin_prefetch(kLayout == FloorLayout::kIndexed ? static_cast<const void*>(&slots_[a.home])
                                                          : static_cast<const void*>(&entries_[a.home]));
    };
    auto entry_step = [&](size_t i) {
      Ahead& a = ahead[i % kRing];
      if (!a.ok) return;
      a.index = slots_[a.home];
      if (a.index != kEmpty) __builtin_prefetch(&entries_[a.index]);
    };
    for (size_t i = 0; i < std::min(n, kSlotAhead); ++i) slot_step(i);
    if constexpr (kLayout == FloorLayout::kIndexed) {
      for (size_t i = 0; i < std::min(n, kEntryAhead); ++i) entry_step(i);
    }
    int translated = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i + kSlotAhead < n) slot_step(i + kSlotAhead);
      if constexpr (kLayout == FloorLayout::kIndexed) {
        if (i + kEntryAhead < n) entry_step(i + kEntryAhead);
      }
      const Ahead& a = ahead[i % kRing];
      if (!a.ok) continue;
      uint8_t* const d = packets[i].data;
      Entry* e = nullptr;
      if constexpr (kLayout == FloorLayout::kIndexed) {
        size_t h = a.home;
        for (uint32_t x = a.index; x != kEmpty; h = (h + 1) & mask, x = slots_[h]) {
          if (std::memcmp(entries_[x].key, d + kKeyAt, kKey) == 0) {
            e = &entries_[x];
            break;
          }
        }
      } else {
        for (size_t h = a.home; entries_[h].used; h = (h + 1) & mask) {
          if (std::memcmp(entries_[h].key, d + kKeyAt, kKey) == 0) {
            e = &entries_[h];
            break;
          }
        }
      }
      if (e == nullptr) continue;
      std::memcpy(d + kKeyAt, e->global, kAddr);
      std::memcpy(d + kL4, &e->port, 2);
      if constexpr (kFamily == 4) ApplyDeltaAt(d + 10, e->ip_delta);
      if (proto_ == kProtoUdp) {
        ApplyDeltaUdpAt(d + csum_at_, e->l4_delta);
      } else {
        ApplyDeltaAt(d + csum_at_, e->l4_delta);
      }
      e->last_ms = now;
      ++translated;
    }
    return translated;
  }

  const uint8_t proto_;
  const FloorLayout layout_;
  const size_t csum_at_;
  const uint32_t min_len_;  // the IP header and a whole TCP / UDP header
  int bits_ = 1;
  std::vector<uint32_t, TableAllocator<uint32_t>> slots_;
  std::vector<Entry, TableAllocator<Entry>> entries_;
  bool ok_ = false;
};

}  // namespace natd::bench

#endif  // NATD_BENCH_LOOKUP_FLOOR_H_
