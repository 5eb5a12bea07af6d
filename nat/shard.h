// Shard: one worker's slice of the NAT. It owns six MappingTables (TCP, UDP
// and ICMP echo, for IPv4 and IPv6) over its own slice of the external port
// space, and translates batches of packets in place. A shard is used by one
// thread at a time and shares nothing writable with other shards.
//
// The packet path through a shard:
//   Process -> ParsePacket (packet_view.h) -> classify (status / inbound /
//   outbound / hairpin) -> TranslateOutbound (in2out.h) or TranslateInbound /
//   TranslateInboundError (out2in.h) -> verdict.
// In a batch, the common TCP / UDP packet is parsed and classified by
// Process's look-ahead instead, a few packets before its turn (Ahead), and
// then only translated (ProcessAhead).
//
// Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 §6): an inside host A
// sends to the global address G and the external port y' of inside host B.
//
//   A:a -> G:y'   shard of A (steered like outbound): outbound translation,
//                 A's mapping and a session with remote G:y'
//   G:x' -> G:y'  shard owning y' (kHandOff, unless it is this one): inbound
//                 translation, B's filtering decides as for any remote end
//   G:x' -> B:b   forwarded; B sees A's external endpoint, never A:a (REQ-9b)
//
// The two halves meet only through the dataplane's queue to the owner's
// worker, so no lock is shared. Fragments take the same road: steered by
// their datagram, held there until the first fragment names the shard of
// the session, then handed to it (fragment_table.h). Inside hosts are told from remote ones by
// EngineConfig::inside. Echo requests to the global address are not
// hairpinned (no inside host answers at an identifier; `hairpin-echo`).
#ifndef NATD_NAT_SHARD_H_
#define NATD_NAT_SHARD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "nat/addr.h"
#include "nat/config.h"
#include "nat/events.h"
#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/fragment_table.h"
#include "nat/prefix_set.h"
#include "nat/steering.h"
#include "nat/rewrite.h"
#include "nat/rng.h"

namespace natd {

// 192.0.2.2 (RFC 5737 TEST-NET-1): any packet to it asks for a status dump.
inline constexpr uint8_t kStatusAddress[4] = {192, 0, 2, 2};

struct PacketRef {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  // Bytes the buffer can hold; room for a reply built in place (0: none).
  uint32_t capacity = 0;
  // The L4 checksum field holds only the pseudo-header sum, to be completed
  // by the device (TUN offload, VIRTIO_NET_HDR_F_NEEDS_CSUM).
  bool partial_checksum = false;
  // The second half of a hairpin: another shard (or this one) translated it
  // outbound and handed it here, to the owner of its destination port. A
  // fragment: handed here by the shard its datagram steers to.
  bool handed_off = false;
  // The caller's name for the buffer, given back with a held packet.
  uint64_t cookie = 0;
};

// kReply: the packet was refused and the buffer now holds natd's answer to
// its sender (an ICMP "administratively prohibited"), PacketRef::len long.
// kHandOff: give the packet to shard Verdict::next_shard, with
// PacketRef::handed_off set (half-way through a hairpin; a fragment whose
// session is there). kHold: the shard keeps the packet (a fragment waiting
// for its datagram's first one); TakeReleased gives it back later.
enum class Action : uint8_t { kForward, kDrop, kStatus, kReply, kHandOff, kHold };

struct Verdict {
  Action action = Action::kDrop;
  DropReason reason = DropReason::kNone;
  uint16_t next_shard = 0;  // kHandOff
  friend bool operator==(const Verdict&, const Verdict&) = default;
};

// One global address's tables: TCP, UDP and ICMP echo.
template <typename Addr>
struct AddressTables {
  AddressTables(const EngineConfig& c, const Addr& global, uint32_t pool_size, uint32_t shard, const PortPlan* plan,
                Rng* rng, Counters* counters, EventSink* events);
  MappingTable<Addr>& For(L4Kind kind) { return kind == L4Kind::kTcp ? tcp : kind == L4Kind::kUdp ? udp : icmp; }
  const MappingTable<Addr>& For(L4Kind kind) const {
    return kind == L4Kind::kTcp ? tcp : kind == L4Kind::kUdp ? udp : icmp;
  }
  const Addr& global() const { return tcp.global(); }
  MappingTable<Addr> tcp, udp, icmp;
};

// One address family's tables: a pool of global addresses (one, unless
// configured otherwise), each with its own tables. An inside address always
// uses the same one (paired pooling); inbound packets find theirs by the
// destination address.
template <typename Addr>
struct FamilyTables {
  FamilyTables(const EngineConfig& c, const std::vector<Addr>& globals, uint32_t shard, const PortPlan* plan, Rng* rng,
               Counters* counters, EventSink* events);
  // Every packet asks these (ForGlobal twice: its source and destination),
  // nearly always of a family with one global address: that case reads
  // only the fields below `pool`, not the pool's array.
  AddressTables<Addr>& ForInside(const Addr& inside) {
    return pooled ? *pool[PairedIndex(inside, pool.size())] : *first;
  }
  // The tables of a global address of the pool; nullptr for any other.
  [[gnu::always_inline]] AddressTables<Addr>* ForGlobal(const Addr& a) {
    if (a == first_global) return first;
    return pooled ? InPool(a) : nullptr;
  }
  AddressTables<Addr>* InPool(const Addr& a) {
    for (size_t i = 1; i < pool.size(); ++i) {
      if (pool[i]->global() == a) return pool[i].get();
    }
    return nullptr;
  }
  std::vector<std::unique_ptr<AddressTables<Addr>>> pool;
  AddressTables<Addr>* const first;  // pool[0]
  const Addr first_global;           // its global address
  const bool pooled;                 // more than one
  // The first address's tables (all there are without a pool).
  MappingTable<Addr>& tcp;
  MappingTable<Addr>& udp;
  MappingTable<Addr>& icmp;
  MappingTable<Addr>& For(L4Kind kind) { return pool[0]->For(kind); }
  const MappingTable<Addr>& For(L4Kind kind) const { return pool[0]->For(kind); }
};

class Shard {
 public:
  Shard(const EngineConfig& config, const PortPlan* plan, uint32_t index, EventSink* events);

  // Translates packets in place; verdicts[i] tells what to do with packets[i].
  // A reply (kReply) replaces the packet in its buffer and updates its len.
  // Each packet in a buffer of its own, which nothing else writes meanwhile:
  // Process reads a packet's headers a few packets before its turn (Ahead).
  void Process(std::span<PacketRef> packets, std::span<Verdict> verdicts, int64_t now_ms);
  Verdict ProcessOne(PacketRef& packet, int64_t now_ms);
  // For callers without spare room in the buffer (no reply is built).
  Verdict ProcessOne(uint8_t* data, uint32_t len, int64_t now_ms, bool partial_checksum = false) {
    PacketRef p{data, len, 0, partial_checksum, false};
    return ProcessOne(p, now_ms);
  }

  // A packet held earlier, let go with what to do with it now.
  struct Released {
    PacketRef packet;
    Verdict verdict;
  };
  // Takes up to out.size() released packets, oldest first; call after
  // Process and Expire until it returns 0.
  size_t TakeReleased(std::span<Released> out);
  // Lets go of every held packet (dropped), e.g. at stop.
  void ReleaseAllHeld(int64_t now_ms);

  // An explicit mapping (PCP / NAT-PMP) of an inside endpoint, which must
  // steer to this shard (Steering::ShardOfInside): made or refreshed for
  // lifetime_ms, or deleted when it is 0 (every one of the address's when
  // internal_port is 0 too). `inside` holds 4 or 16 bytes per `family`.
  enum class PortMapCode : uint8_t { kOk, kNoPort, kTableFull, kQuota, kNoFamily, kUnsupported };
  struct PortMapResult {
    PortMapCode code = PortMapCode::kOk;
    uint16_t external_port = 0;
    uint8_t external_address[16] = {};  // the host's (paired) global address, 4 or 16 bytes
  };
  PortMapResult MapPort(int family, const uint8_t* inside, uint8_t proto, uint16_t internal_port, uint16_t suggested,
                        bool prefer_failure, int64_t lifetime_ms, int64_t now_ms);

  // Takes the settings natd may change live (SIGHUP) from `c`: timeouts,
  // UDP inbound refresh, the per-host quota and the prohibited-answer rate;
  // on the shard's own thread (MappingTable::SetLive says what becomes of
  // existing sessions).
  void ApplyLive(const EngineConfig& c, int64_t now_ms);

  // Expires what is due at now_ms (held fragments too); returns sessions removed.
  size_t Expire(int64_t now_ms);
  void Flush();
  const FragmentTable& fragments() const { return frags_; }

  // Human-readable tables (mappings, sessions, TCP state, traffic).
  void AppendStatus(std::string* out, int64_t now_ms) const;

  const Counters& counters() const { return counters_; }
  uint32_t index() const { return index_; }
  FamilyTables<Ip4>* v4() { return v4_.get(); }
  FamilyTables<Ip6>* v6() { return v6_.get(); }

 private:
  // Builds the "administratively prohibited" answer to a refused packet in
  // its buffer, within the rate limit; false when it cannot or may not.
  bool ReplyProhibited(PacketRef& p, const PacketView& v, int64_t now_ms);
  // One packet's look-ahead in Process. Its first step (PrefetchSlots) reads
  // the packet's headers for its key anyway, so it also decides what
  // ProcessOne would: for the packet nearly every packet is (a common TCP or
  // UDP packet, ParseCommonPacket's, that asks for no status, is neither
  // link-local nor multicast, was not handed off, and is outbound, or
  // inbound to a global address from outside: no hairpin), it keeps that
  // decision, the table, and the key of the packet's lookup with the key's
  // hash (computed there, once), for the later steps and for ProcessAhead,
  // which then only fills the packet's view and translates it. Any other
  // packet is kNone, decided by ProcessOne from the start. The key and the
  // candidate stay hints: the lookup takes them only when they hold the
  // key it reads from the packet itself (MappingTable::FindSession).
  // One type for both families and directions (a union of the four keys):
  // 64 bytes, a cache line an entry (the candidate fits in kind's padding).
  struct Ahead {
    enum class Kind : uint8_t { kNone, kOut4, kIn4, kOut6, kIn6 };
    Kind kind = Kind::kNone;
    // The session step's candidate for the key (MappingTable::Probe), or kNil.
    uint32_t candidate = kNil;
    void* table = nullptr;  // the MappingTable<Ip4 or Ip6> of `kind`'s family
    union Keys {
      Keys() {}
      Hashed<InsideKey<Ip4>> out4;
      Hashed<OutsideKey<Ip4>> in4;
      Hashed<InsideKey<Ip6>> out6;
      Hashed<OutsideKey<Ip6>> in6;
    } k;
    // The first step: a packet's table and key (an InsideKey: outbound, an
    // OutsideKey: inbound), hashed.
    template <typename Addr, template <typename> class Key>
    [[gnu::always_inline]] const Hashed<Key<Addr>>& Set(MappingTable<Addr>* t, const Key<Addr>& key) {
      table = t;
      Hashed<Key<Addr>>* slot;
      if constexpr (std::is_same_v<Key<Addr>, InsideKey<Ip4>>) {
        kind = Kind::kOut4, slot = &k.out4;
      } else if constexpr (std::is_same_v<Key<Addr>, OutsideKey<Ip4>>) {
        kind = Kind::kIn4, slot = &k.in4;
      } else if constexpr (std::is_same_v<Key<Addr>, InsideKey<Ip6>>) {
        kind = Kind::kOut6, slot = &k.out6;
      } else {
        static_assert(std::is_same_v<Key<Addr>, OutsideKey<Ip6>>);
        kind = Kind::kIn6, slot = &k.in6;
      }
      return *slot = WithHash(key);
    }
    // f(table, hashed key), typed as `kind` says; nothing for kNone.
    template <typename F>
    [[gnu::always_inline]] void Visit(F&& f) const {
      switch (kind) {
        case Kind::kOut4:
          return f(*static_cast<MappingTable<Ip4>*>(table), k.out4);
        case Kind::kIn4:
          return f(*static_cast<MappingTable<Ip4>*>(table), k.in4);
        case Kind::kOut6:
          return f(*static_cast<MappingTable<Ip6>*>(table), k.out6);
        case Kind::kIn6:
          return f(*static_cast<MappingTable<Ip6>*>(table), k.in6);
        case Kind::kNone:
          break;
      }
    }
  };
  static_assert(sizeof(Ahead) == 64);
  // ProcessOne for a packet its look-ahead decided (kind not kNone).
  Verdict ProcessAhead(PacketRef& p, int64_t now_ms, const Ahead& a);
  // What ProcessOne and ProcessAhead do with a packet they drop for `r`
  // (v: its view): count, tell, and answer a refusal when allowed.
  [[gnu::noinline]] Verdict Dropped(PacketRef& p, const PacketView& v, DropReason r, int64_t now_ms);
  template <typename Addr>
  Verdict Translate(FamilyTables<Addr>* tables, PacketRef& p, PacketView& v, int64_t now_ms);
  // A TCP, UDP or echo packet in its table, with its counters: outbound
  // (an InsideKey) or inbound (an OutsideKey). `ahead`, `candidate`: the
  // look-ahead's key (with its hash) and candidate, or nullptr and kNil.
  template <typename Addr>
  [[gnu::always_inline]] DropReason TranslatePlain(MappingTable<Addr>& table, uint8_t* d, const PacketView& v,
                                                   ChecksumMode mode, int64_t now_ms,
                                                   const Hashed<InsideKey<Addr>>* ahead, uint32_t candidate);
  template <typename Addr>
  [[gnu::always_inline]] DropReason TranslatePlain(MappingTable<Addr>& table, uint8_t* d, const PacketView& v,
                                                   ChecksumMode mode, int64_t now_ms,
                                                   const Hashed<OutsideKey<Addr>>* ahead, uint32_t candidate);
  // Process's look-ahead: prefetches the hash slots a packet will need (and
  // fills its Ahead), its session's entry, or its mapping's (inlined into
  // Process, see MappingTable::PrefetchSlots); only with this many
  // sessions or more (measured: below, the tables stay in the caches and it
  // only costs).
  static constexpr uint64_t kPrefetchFrom = 4096;
  [[gnu::always_inline]] void PrefetchSlots(const PacketRef& p, Ahead& a);
  template <typename Addr>
  [[gnu::always_inline]] void PrefetchSlotsIn(FamilyTables<Addr>* tables, const uint8_t* d, uint32_t len, Ahead& a);
  enum class PrefetchStep : uint8_t { kSession, kMapping };
  [[gnu::always_inline]] static void Prefetch(Ahead& a, PrefetchStep step);
  // An outbound IPv4 packet without DF gets a fresh Identification.
  void RenumberIp4(uint8_t* d);
  // A packet translated outbound (plain or an ICMP error): counted, and
  // renumbered where RenumberIp4 says.
  template <typename Addr>
  [[gnu::always_inline]] void LeftOutbound(uint8_t* d) {
    counters_.packets_out.Add();
    if (Addr::kFamily == 4 && !(d[6] & 0x40)) RenumberIp4(d);
  }
  // Fragments: steering (the datagram's shard) and translation (the session's).
  Verdict ProcessFragment(PacketRef& p, PacketView& v, int64_t now_ms);
  Verdict TranslateFragment(PacketRef& p, PacketView& v, const FragmentKey& key, int64_t now_ms);
  void ReleaseHeld(const HeldPacket& h, const FragmentKey& key, uint16_t target, int64_t now_ms);
  void ReleaseDropped(const HeldPacket& h, DropReason why);
  template <typename Addr>
  DropReason TranslateIn(AddressTables<Addr>* tables, uint8_t* d, const PacketView& v, ChecksumMode mode,
                         int64_t now_ms);

  const uint32_t index_;
  const PortPlan* const plan_;
  const Steering steering_;
  FragmentTable frags_;
  std::vector<Released> released_;
  size_t released_taken_ = 0;
  uint32_t prohibited_per_second_;  // live (ApplyLive)
  int64_t prohibited_second_ = -1;
  uint32_t prohibited_sent_this_second_ = 0;
  Rng rng_;
  // IPv4 Identification for non-atomic datagrams leaving from the global
  // address (RFC 7857 §10, RFC 6864 §5.3.1): inside hosts pick theirs
  // independently, so two of them could send equal ones to one host. Each
  // shard counts in its own residue class modulo the shard count.
  uint32_t ip_id_counter_ = 0;
  Counters counters_;
  EventSink* const events_;
  std::unique_ptr<FamilyTables<Ip4>> v4_;
  std::unique_ptr<FamilyTables<Ip6>> v6_;
};

}  // namespace natd

#endif  // NATD_NAT_SHARD_H_
