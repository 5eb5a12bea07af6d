// FragmentTable: what one shard knows about fragmented datagrams (RFC 4787
// REQ-14: a NAT MUST translate fragments, in order or out of order).
//
// Only a datagram's first fragment carries its ports, so only it can be
// matched to a session. Every fragment of a datagram shares a key (source,
// destination, protocol, identification); the engine steers fragments by a
// hash of that key to one shard, F, and the session lives in shard T (the
// shard its ports steer to; often T == F):
//
//   fragment ──steer by key──▶ F ── first fragment: learns T, releases held ──▶ T
//                              │    later fragment:  T known? hand to T,        │
//                              │                     else hold it (bounded)     │
//                              ▼                                                ▼
//                         held fragments (wait for the first, or time out)    first: translated with its
//                                                                              session, and T records the
//                                                                              new addresses; later: only
//                                                                              the addresses are rewritten
//
// So a datagram costs one entry in F (its target, its held fragments) and
// one in T (its translation); when T == F it is one entry doing both. The
// first fragment's L4 checksum covers the whole datagram, and the RFC 1624
// delta applied to it accounts for every byte the translation changes (the
// ports are in it, the addresses are in the pseudo-header), so later
// fragments need only their addresses (and IPv4 header checksum) rewritten.
//
// Bounds, each counted under its own drop reason: datagram entries (fixed at
// start), held fragments by count and by bytes, and time — an entry lives
// `timeout_ms` after its last fragment; fragments held that long are
// dropped. Deliberately unsupported: fragmented ICMP errors (refused by the
// parser) and hairpinned fragments (dropped as `hairpin-fragment`). natd
// never reassembles: fragments leave as they came.
#ifndef NATD_NAT_FRAGMENT_TABLE_H_
#define NATD_NAT_FRAGMENT_TABLE_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "nat/expiry_list.h"
#include "nat/mapping_table.h"
#include "nat/packet_view.h"

namespace natd {

struct FragmentKey {
  uint8_t src[16];
  uint8_t dst[16];
  uint32_t id;
  uint8_t proto;
  uint8_t family;
  uint8_t pad[2];

  static FragmentKey Of(const uint8_t* d, const PacketView& v) {
    FragmentKey k{};
    const size_t alen = v.family == 4 ? 4 : 16;
    std::memcpy(k.src, d + v.src_addr_offset(), alen);
    std::memcpy(k.dst, d + v.dst_addr_offset(), alen);
    k.id = v.frag_id;
    k.proto = v.proto;
    k.family = v.family;
    return k;
  }
  friend bool operator==(const FragmentKey& a, const FragmentKey& b) { return std::memcmp(&a, &b, sizeof a) == 0; }
};
static_assert(sizeof(FragmentKey) == 40, "fragment key: two addresses, id, proto, family");

struct FragmentKeyHash {
  size_t operator()(const FragmentKey& k) const {
    uint64_t w[5];
    std::memcpy(w, &k, sizeof w);
    return MixWords(MixWords(w[0], w[1]) ^ w[2], MixWords(w[3], w[4]));
  }
};

// A packet the table keeps until its datagram's first fragment is seen.
// `cookie` is the caller's name for the buffer; the table never frees it.
struct HeldPacket {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t capacity = 0;
  uint64_t cookie = 0;
};

struct FragmentLimits {
  uint32_t datagrams = 1024;   // entries
  uint32_t held = 256;         // fragments held at once
  uint32_t held_bytes = 1 << 20;
  int64_t timeout_ms = 5000;
};

class FragmentTable {
 public:
  static constexpr uint16_t kNoTarget = 0xffff;

  struct Datagram {
    FragmentKey key;
    int64_t expires_ms = 0;
    uint32_t prev = kNil, next = kNil;  // expiry list, or free list (next)
    uint32_t held_head = kNil, held_tail = kNil;
    uint16_t target = kNoTarget;  // F: the shard that translates it
    bool translated = false;      // T: the first fragment was translated
    uint16_t ip4_delta = 0;       // T: IPv4 header checksum delta of the rewrite
    uint8_t new_id[2] = {};       // T: IPv4 Identification later fragments get
    uint8_t new_src[16];          // T: the addresses later fragments get
    uint8_t new_dst[16];
  };

  explicit FragmentTable(const FragmentLimits& limits) : limits_(limits) {
    datagrams_.resize(limits.datagrams);
    for (uint32_t i = 0; i < limits.datagrams; ++i) datagrams_[i].next = i + 1 < limits.datagrams ? i + 1 : kNil;
    free_datagram_ = limits.datagrams ? 0 : kNil;
    held_.resize(limits.held);
    for (uint32_t i = 0; i < limits.held; ++i) held_[i].next = i + 1 < limits.held ? i + 1 : kNil;
    free_held_ = limits.held ? 0 : kNil;
    index_.reserve(limits.datagrams);
  }

  // The entry of a datagram, or kNil.
  uint32_t Find(const FragmentKey& k) const {
    auto it = index_.find(k);
    return it == index_.end() ? kNil : it->second;
  }
  // Finds or makes the entry, and pushes its expiry to now + timeout; kNil
  // when the table is full.
  uint32_t Touch(const FragmentKey& k, int64_t now) {
    uint32_t i = Find(k);
    if (i == kNil) {
      if (free_datagram_ == kNil) return kNil;
      i = free_datagram_;
      free_datagram_ = datagrams_[i].next;
      Datagram& d = datagrams_[i];
      d = Datagram{};
      d.key = k;
      index_.emplace(k, i);
    } else {
      list_.Remove(datagrams_, i);
    }
    datagrams_[i].expires_ms = now + limits_.timeout_ms;
    list_.PushBack(datagrams_, i);
    return i;
  }
  Datagram& at(uint32_t i) { return datagrams_[i]; }

  // Keeps a fragment of datagram i; the reason it cannot, or kNone.
  DropReason Hold(uint32_t i, const HeldPacket& p) {
    if (free_held_ == kNil) return DropReason::kFragmentHoldCount;
    if (held_bytes_ + p.len > limits_.held_bytes) return DropReason::kFragmentHoldBytes;
    const uint32_t h = free_held_;
    free_held_ = held_[h].next;
    held_[h].packet = p;
    held_[h].next = kNil;
    Datagram& d = datagrams_[i];
    if (d.held_tail == kNil) {
      d.held_head = h;
    } else {
      held_[d.held_tail].next = h;
    }
    d.held_tail = h;
    held_bytes_ += p.len;
    ++held_count_;
    return DropReason::kNone;
  }
  // Lets go of datagram i's held fragments, oldest first.
  template <typename Fn>
  void Release(uint32_t i, Fn&& fn) {
    Datagram& d = datagrams_[i];
    for (uint32_t h = d.held_head; h != kNil;) {
      const uint32_t next = held_[h].next;
      const HeldPacket p = held_[h].packet;
      held_[h].next = free_held_;
      free_held_ = h;
      held_bytes_ -= p.len;
      --held_count_;
      fn(p);
      h = next;
    }
    d.held_head = d.held_tail = kNil;
  }
  // Removes every entry whose time has come (all of them with `all`); their
  // held fragments go to fn. Returns the entries removed.
  template <typename Fn>
  size_t Expire(int64_t now, bool all, Fn&& fn) {
    size_t n = 0;
    while (list_.head() != kNil && (all || datagrams_[list_.head()].expires_ms <= now)) {
      const uint32_t i = list_.head();
      Release(i, fn);
      list_.Remove(datagrams_, i);
      index_.erase(datagrams_[i].key);
      datagrams_[i].next = free_datagram_;
      free_datagram_ = i;
      ++n;
    }
    return n;
  }

  size_t size() const { return index_.size(); }
  uint32_t held() const { return held_count_; }
  uint64_t held_bytes() const { return held_bytes_; }
  const FragmentLimits& limits() const { return limits_; }

 private:
  struct HeldSlot {
    HeldPacket packet;
    uint32_t next = kNil;
  };
  const FragmentLimits limits_;
  std::vector<Datagram> datagrams_;
  std::vector<HeldSlot> held_;
  uint32_t free_datagram_ = kNil, free_held_ = kNil;
  uint32_t held_count_ = 0;
  uint64_t held_bytes_ = 0;
  ExpiryList list_;
  absl::flat_hash_map<FragmentKey, uint32_t, FragmentKeyHash> index_;
};

}  // namespace natd

#endif  // NATD_NAT_FRAGMENT_TABLE_H_
