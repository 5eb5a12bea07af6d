#include "nat/shard.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nat/in2out.h"
#include "nat/out2in.h"
#include "nat/verify.h"

namespace natd {
namespace {

// Unspecified or link-local sources and multicast/broadcast destinations
// never cross a NAT: the kernel's own MLD reports and router solicitations on
// the TUN, for instance. Looks at the IP header only, before parsing.
[[gnu::always_inline]] inline bool LinkLocalOrMulticast4(const uint8_t* d) {
  const uint32_t src = LoadBe32(d + 12), dst = LoadBe32(d + 16);
  // 224.0.0.0/4, 255.255.255.255; 169.254.0.0/16, 0.0.0.0.
  return (dst >> 28) == 0xe || dst == 0xffffffff || (src >> 16) == 0xa9fe || src == 0;
}
[[gnu::always_inline]] inline bool LinkLocalOrMulticast6(const uint8_t* d) {
  const uint8_t* src = d + 8;
  static constexpr uint8_t kUnspecified[16] = {};
  return d[24] == 0xff || (src[0] == 0xfe && (src[1] & 0xc0) == 0x80) || std::memcmp(src, kUnspecified, 16) == 0;
}
[[gnu::always_inline]] inline bool LinkLocalOrMulticast(const uint8_t* d, uint32_t len) {
  if (len >= 20 && (d[0] >> 4) == 4) return LinkLocalOrMulticast4(d);
  if (len >= 40 && (d[0] >> 4) == 6) return LinkLocalOrMulticast6(d);
  return false;
}

#ifdef NATD_VERIFY_CHECKSUMS
// The debug builds' full recompute: a translated packet whose checksums
// were valid before must still have valid ones.
void CheckChecksumsKept(bool valid_before, DropReason r, const uint8_t* d, const PacketView& v) {
  if (r == DropReason::kNone && valid_before && !ChecksumsValid(d, v)) {
    std::fprintf(stderr, "natd: BUG: checksum broken by translation\n");
    std::abort();
  }
}
#endif

// An IPv4 header's destination is the status address.
[[gnu::always_inline]] inline bool ToStatusAddress4(const uint8_t* d) {
  return std::memcmp(d + 16, kStatusAddress, 4) == 0;
}
// An IPv4 packet to the status address (any protocol).
[[gnu::always_inline]] inline bool StatusRequest(const uint8_t* d, uint32_t len) {
  return len >= 20 && (d[0] >> 4) == 4 && ToStatusAddress4(d);
}

// `pool_size`: the family's global addresses, which share the capacity.
TableConfig MakeTableConfig(const EngineConfig& c, uint8_t proto, const Behavior& b, uint32_t pool_size) {
  TableConfig t;
  t.proto = proto;
  t.behavior = b;
  t.capacity = std::max<uint32_t>(1, c.max_sessions / c.shards / pool_size);
  t.port_probes = c.port_probes;
  t.prefault = c.prefault;
  t.host_quota = c.max_sessions_per_host == 0 ? 0 : (c.max_sessions_per_host + c.shards - 1) / c.shards;
  // Explicit mappings: TCP and UDP only (PCP MAP and NAT-PMP map those).
  if (proto == kProtoTcp || proto == kProtoUdp) {
    t.explicit_capacity =
        c.explicit_mappings == 0 ? 0 : (c.explicit_mappings + c.shards * pool_size - 1) / (c.shards * pool_size);
    t.explicit_per_host = c.explicit_per_host;
  }
  if (proto == kProtoTcp) {
    t.timeout_ms = c.timeouts.tcp_transitory_ms;
    t.established_timeout_ms = c.timeouts.tcp_established_ms;
  } else if (proto == kProtoUdp) {
    t.timeout_ms = c.timeouts.udp_ms;
    t.inbound_refresh = c.udp_inbound_refresh;
  } else {
    t.timeout_ms = c.timeouts.icmp_ms;
  }
  return t;
}

uint64_t SeedFor(const EngineConfig& c, uint32_t index) {
  uint64_t seed = c.seed;
  if (seed == 0) {
    FILE* f = std::fopen("/dev/urandom", "rb");
    if (f) {
      if (std::fread(&seed, sizeof seed, 1, f) != 1) seed = 0;
      std::fclose(f);
    }
    if (seed == 0) seed = reinterpret_cast<uintptr_t>(&c) ^ 0x5eed;
  }
  return seed + 0x9e3779b97f4a7c15ull * (index + 1);
}

std::string TcpStateName(uint8_t st) {
  if (st & kTcpStRst) return "reset";
  const bool fin_out = st & kTcpStFinOut, fin_in = st & kTcpStFinIn;
  if (fin_out && fin_in) return "closing";
  if (st & kTcpStEstablished) return fin_out ? "fin-out" : fin_in ? "fin-in" : "established";
  if (st & kTcpStMidstream) return "midstream";
  if (st & kTcpStSynOut) return "syn-out";
  if (st & kTcpStSynIn) return "syn-in";
  return "new";
}

template <typename Addr>
void AppendTable(std::string* out, const char* label, const MappingTable<Addr>& t, int64_t now) {
  const Behavior& b = t.config().behavior;
  absl::StrAppend(out, "  ", label, " ", std::string(b.name), " (", std::string(MappingName(b.mapping)), "/",
                  std::string(FilteringName(b.filtering)),
                  "): ", t.mapping_count(), " mappings, ", t.session_count(), " sessions\n");
  const bool tcp = t.config().proto == kProtoTcp;
  const std::string global = ToString(t.global());
  t.ForEachExplicit([&](const auto& m, int64_t until) {
    absl::StrAppend(out, "    explicit ", Addr::kFamily == 6 ? absl::StrCat("[", ToString(m.inside), "]:", m.inside_port)
                                                              : absl::StrCat(ToString(m.inside), ":", m.inside_port),
                    " -> ", Addr::kFamily == 6 ? absl::StrCat("[", global, "]:", m.external_port)
                                               : absl::StrCat(global, ":", m.external_port),
                    " (PCP/NAT-PMP) lifetime left ", (until - now) / 1000, "s\n");
  });
  auto ep = [](const Addr& a, uint16_t port) {
    return Addr::kFamily == 6 ? absl::StrCat("[", ToString(a), "]:", port) : absl::StrCat(ToString(a), ":", port);
  };
  t.ForEachSession([&](const auto& m, const auto& s) {
    absl::StrAppend(out, "    ", ep(m.inside, m.inside_port), " -> ", ep(t.global(), m.external_port), " <-> ",
                    ep(s.remote, s.remote_port));
    if (tcp) absl::StrAppend(out, " ", TcpStateName(s.tcp_state));
    absl::StrAppendFormat(out, " age=%ds idle=%ds expires=%ds out=%u/%uB in=%u/%uB\n", (now - m.created_ms) / 1000,
                          (now - m.last_ms) / 1000, (s.expires_ms - now) / 1000, m.packets_out, m.bytes_out,
                          m.packets_in, m.bytes_in);
  });
}

}  // namespace

template <typename Addr>
AddressTables<Addr>::AddressTables(const EngineConfig& c, const Addr& global, uint32_t n, uint32_t shard,
                                   const PortPlan* plan, Rng* rng, Counters* counters, EventSink* events)
    : tcp(MakeTableConfig(c, kProtoTcp, c.tcp, n), global, shard, plan, rng, counters, events),
      udp(MakeTableConfig(c, kProtoUdp, c.udp, n), global, shard, plan, rng, counters, events),
      icmp(MakeTableConfig(c, Addr::kFamily == 4 ? kProtoIcmp : kProtoIcmp6, c.icmp, n), global, shard, plan, rng,
           counters, events) {}

namespace {

template <typename Addr>
std::vector<std::unique_ptr<AddressTables<Addr>>> MakePool(const EngineConfig& c, const std::vector<Addr>& globals,
                                                           uint32_t shard, const PortPlan* plan, Rng* rng,
                                                           Counters* counters, EventSink* events) {
  std::vector<std::unique_ptr<AddressTables<Addr>>> pool;
  for (const Addr& g : globals) {
    pool.push_back(std::make_unique<AddressTables<Addr>>(c, g, uint32_t(globals.size()), shard, plan, rng, counters,
                                                         events));
  }
  return pool;
}

}  // namespace

template <typename Addr>
FamilyTables<Addr>::FamilyTables(const EngineConfig& c, const std::vector<Addr>& globals, uint32_t shard,
                                 const PortPlan* plan, Rng* rng, Counters* counters, EventSink* events)
    : pool(MakePool(c, globals, shard, plan, rng, counters, events)),
      first(pool[0].get()),
      first_global(first->global()),
      pooled(pool.size() > 1),
      tcp(pool[0]->tcp),
      udp(pool[0]->udp),
      icmp(pool[0]->icmp) {}

template struct AddressTables<Ip4>;
template struct AddressTables<Ip6>;
template struct FamilyTables<Ip4>;
template struct FamilyTables<Ip6>;

namespace {

template <typename Addr>
void ApplyLiveTo(FamilyTables<Addr>* f, const EngineConfig& c, int64_t now) {
  if (f == nullptr) return;
  for (auto& a : f->pool) {
    for (MappingTable<Addr>* t : {&a->tcp, &a->udp, &a->icmp}) {
      t->SetLive(MakeTableConfig(c, t->config().proto, t->config().behavior, uint32_t(f->pool.size())), now);
    }
  }
}

}  // namespace

void Shard::ApplyLive(const EngineConfig& c, int64_t now) {
  prohibited_per_second_ = c.icmp_prohibited_per_second;
  ApplyLiveTo(v4_.get(), c, now);
  ApplyLiveTo(v6_.get(), c, now);
}

Shard::Shard(const EngineConfig& config, const PortPlan* plan, uint32_t index, EventSink* events)
    : index_(index),
      plan_(plan),
      steering_(config, plan),
      frags_(FragmentLimits{(config.fragment_datagrams + config.shards - 1) / config.shards,
                            (config.fragments_held + config.shards - 1) / config.shards,
                            (config.fragment_held_bytes + config.shards - 1) / config.shards,
                            config.fragment_timeout_ms}),
      prohibited_per_second_(config.icmp_prohibited_per_second),
      rng_(SeedFor(config, index)),
      events_(events) {
  released_.reserve(frags_.limits().held);
  ip_id_counter_ = static_cast<uint32_t>(rng_.Next());
  if (config.global4) {
    std::vector<Ip4> globals = {*config.global4};
    globals.insert(globals.end(), config.more_global4.begin(), config.more_global4.end());
    v4_ = std::make_unique<FamilyTables<Ip4>>(config, globals, index, plan, &rng_, &counters_, events);
  }
  if (config.global6) {
    std::vector<Ip6> globals = {*config.global6};
    globals.insert(globals.end(), config.more_global6.begin(), config.more_global6.end());
    v6_ = std::make_unique<FamilyTables<Ip6>>(config, globals, index, plan, &rng_, &counters_, events);
  }
}

template <typename Addr>
inline DropReason Shard::TranslatePlain(MappingTable<Addr>& table, uint8_t* d, const PacketView& v, ChecksumMode mode,
                                        int64_t now, const Hashed<InsideKey<Addr>>* ahead, uint32_t candidate) {
  const DropReason r = TranslateOutbound(table, d, v, mode, now, ahead, candidate);
  if (r == DropReason::kNone) LeftOutbound<Addr>(d);
  return r;
}

template <typename Addr>
inline DropReason Shard::TranslatePlain(MappingTable<Addr>& table, uint8_t* d, const PacketView& v, ChecksumMode mode,
                                        int64_t now, const Hashed<OutsideKey<Addr>>* ahead, uint32_t candidate) {
  const DropReason r = TranslateInbound(table, d, v, mode, now, ahead, candidate);
  if (r == DropReason::kNone) counters_.packets_in.Add();
  return r;
}

template <typename Addr>
DropReason Shard::TranslateIn(AddressTables<Addr>* tables, uint8_t* d, const PacketView& v, ChecksumMode mode,
                              int64_t now) {
  if (v.kind == L4Kind::kError) {
    DropReason r = TranslateInboundError(tables->For(v.quote.kind), d, v, mode);
    if (r == DropReason::kNone) {
      counters_.icmp_errors_in.Add();
      counters_.packets_in.Add();
    }
    return r;
  }
  return TranslatePlain(tables->For(v.kind), d, v, mode, now, static_cast<const Hashed<OutsideKey<Addr>>*>(nullptr),
                        kNil);
}

template <typename Addr>
Verdict Shard::Translate(FamilyTables<Addr>* tables, PacketRef& p, PacketView& v, int64_t now) {
  auto verdict = [](DropReason r) {
    return Verdict{r == DropReason::kNone ? Action::kForward : Action::kDrop, r, 0};
  };
  if (tables == nullptr) return verdict(DropReason::kNoGlobalAddress);
  uint8_t* const d = p.data;
  const ChecksumMode mode = p.partial_checksum ? ChecksumMode::kPartial : ChecksumMode::kFull;
  const Addr src = Addr::Load(d + v.SrcAddrOffset(Addr::kFamily));
  AddressTables<Addr>* const from_global = tables->ForGlobal(src);
  AddressTables<Addr>* const to_global = tables->ForGlobal(Addr::Load(d + v.DstAddrOffset(Addr::kFamily)));
  if (p.handed_off) {
    // Only a first half made by a shard of this engine arrives here.
    if (!from_global || !to_global) return verdict(DropReason::kSourceIsGlobal);
    DropReason r = TranslateIn(to_global, d, v, mode, now);
    if (r == DropReason::kNone) counters_.hairpinned.Add();
    return verdict(r);
  }
  if (from_global) return verdict(DropReason::kSourceIsGlobal);
  if (to_global && !steering_.IsHairpin(d, v)) return verdict(TranslateIn(to_global, d, v, mode, now));
  // Outbound, by the inside host's (paired) global address; when addressed
  // to a global address, the first half of a hairpin.
  if (to_global && v.kind == L4Kind::kEcho) return verdict(DropReason::kHairpinEcho);
  // An inside host's ICMP error is about the endpoint it quotes as the
  // destination: the sender itself.
  AddressTables<Addr>& mine = tables->ForInside(src);
  if (v.kind == L4Kind::kError) {
    const DropReason r = TranslateOutboundError(mine.For(v.quote.kind), d, v, mode);
    if (r != DropReason::kNone) return verdict(r);
    LeftOutbound<Addr>(d);
  } else {
    const DropReason r =
        TranslatePlain(mine.For(v.kind), d, v, mode, now, static_cast<const Hashed<InsideKey<Addr>>*>(nullptr), kNil);
    if (r != DropReason::kNone) return verdict(r);
  }
  if (!to_global) return verdict(DropReason::kNone);
  // Now G:x' -> G:y'. The view's ports changed with the rewrite: parse again.
  if (ParsePacket(d, v.len, &v) != DropReason::kNone) return verdict(DropReason::kBadQuote);
  const uint16_t port = v.kind == L4Kind::kError ? v.quote.src_port : v.dst_port;
  const uint8_t owner = plan_->OwnerOf(port);
  if (owner == PortPlan::kNoShard) return verdict(DropReason::kNoMapping);
  p.handed_off = true;
  if (owner != index_) return Verdict{Action::kHandOff, DropReason::kNone, owner};
  return Translate(tables, p, v, now);  // the second half, here
}

Verdict Shard::ProcessOne(PacketRef& p, int64_t now) {
  uint8_t* const d = p.data;
  const uint32_t len = p.len;
  if (StatusRequest(d, len)) {
    counters_.status_requests.Add();
    return {Action::kStatus, DropReason::kNone};
  }
  PacketView v;
  DropReason r = LinkLocalOrMulticast(d, len) ? DropReason::kLinkLocalOrMulticast : ParsePacket(d, len, &v);
  if (r == DropReason::kNone) {
#ifdef NATD_VERIFY_CHECKSUMS
    const bool valid_before = !v.fragment && !p.partial_checksum && ChecksumsValid(d, v);
#endif
    Verdict t = v.fragment          ? ProcessFragment(p, v, now)
                : v.family == 4 ? Translate(v4_.get(), p, v, now)
                                : Translate(v6_.get(), p, v, now);
    r = t.reason;
#ifdef NATD_VERIFY_CHECKSUMS
    CheckChecksumsKept(valid_before, r, d, v);
#endif
    if (t.action == Action::kHandOff || t.action == Action::kHold) return t;
  }
  if (r != DropReason::kNone) return Dropped(p, v, r, now);
  return {Action::kForward, DropReason::kNone};
}

Verdict Shard::Dropped(PacketRef& p, const PacketView& v, DropReason r, int64_t now) {
  counters_.drop(r).Add();
  events_->PacketDropped(r, p.data, p.len);
  const bool refused = r == DropReason::kNoPort || r == DropReason::kTableFull || r == DropReason::kHostQuota;
  if (refused && ReplyProhibited(p, v, now)) return {Action::kReply, r};
  return {Action::kDrop, r};
}

Verdict Shard::ProcessAhead(PacketRef& p, int64_t now, const Ahead& a) {
  uint8_t* const d = p.data;
  const ChecksumMode mode = p.partial_checksum ? ChecksumMode::kPartial : ChecksumMode::kFull;
  DropReason r = DropReason::kNone;
  a.Visit([&](auto& table, const auto& key) {
    using Addr = std::remove_cvref_t<decltype(table.global())>;
    // Tested by the look-ahead (PrefetchSlotsIn): what ParsePacket would
    // find, without its tests.
    PacketView v;
    if constexpr (Addr::kFamily == 4) {
      FillCommonView<20>(d, LoadBe16(d + 2), d[9], &v);
    } else {
      FillCommonView<40>(d, 40 + LoadBe16(d + 4), d[6], &v);
    }
#if defined(NATD_VERIFY_CHECKSUMS) || !defined(NDEBUG)
    // The packet is still what the look-ahead decided about, a few packets
    // ago, and that was ProcessOne's decision (Process's contract).
    PacketView parsed;
    Ahead again;
    PrefetchSlots(p, again);
    if (StatusRequest(d, p.len) || LinkLocalOrMulticast(d, p.len) || !ParseCommonPacket(d, p.len, &parsed) ||
        !(parsed == v) || again.kind != a.kind || again.table != a.table) {
      std::fprintf(stderr, "natd: BUG: a packet changed after its look-ahead, or the look-ahead decided wrong\n");
      std::abort();
    }
#endif
#ifdef NATD_VERIFY_CHECKSUMS
    const bool valid_before = !p.partial_checksum && ChecksumsValid(d, v);
#endif
    r = TranslatePlain(table, d, v, mode, now, &key, a.candidate);
#ifdef NATD_VERIFY_CHECKSUMS
    CheckChecksumsKept(valid_before, r, d, v);
#endif
  });
  if (r == DropReason::kNone) return {Action::kForward, DropReason::kNone};
  // A drop leaves the packet as it was: the view is parsed again here, not
  // kept from above, where the translation needs only a few of its fields.
  PacketView v;
  ParsePacket(d, p.len, &v);
  return Dropped(p, v, r, now);
}

namespace {

template <typename Addr>
Shard::PortMapResult MapIn(FamilyTables<Addr>* t, const uint8_t* inside, uint8_t proto, uint16_t internal_port,
                           uint16_t suggested, bool prefer_failure, int64_t lifetime_ms, int64_t now) {
  using Code = Shard::PortMapCode;
  Shard::PortMapResult out;
  if (t == nullptr) {
    out.code = Code::kNoFamily;
    return out;
  }
  if (proto != kProtoTcp && proto != kProtoUdp) {
    out.code = Code::kUnsupported;
    return out;
  }
  const Addr a = Addr::Load(inside);
  AddressTables<Addr>& mine = t->ForInside(a);
  mine.global().Store(out.external_address);
  MappingTable<Addr>& table = proto == kProtoTcp ? mine.tcp : mine.udp;
  if (lifetime_ms == 0) {
    table.UnmapExplicit(a, internal_port);
    return out;
  }
  using E = typename MappingTable<Addr>::ExplicitCode;
  const auto r = table.MapExplicit(a, internal_port, suggested, prefer_failure, now + lifetime_ms, now);
  switch (r.code) {
    case E::kOk:
      out.external_port = r.external_port;
      return out;
    case E::kNoPort:
      out.code = Code::kNoPort;
      return out;
    case E::kQuota:
      out.code = Code::kQuota;
      return out;
    case E::kTableFull:
      break;
  }
  out.code = Code::kTableFull;
  return out;
}

}  // namespace

Shard::PortMapResult Shard::MapPort(int family, const uint8_t* inside, uint8_t proto, uint16_t internal_port,
                                    uint16_t suggested, bool prefer_failure, int64_t lifetime_ms, int64_t now) {
  return family == 4
             ? MapIn(v4_.get(), inside, proto, internal_port, suggested, prefer_failure, lifetime_ms, now)
             : MapIn(v6_.get(), inside, proto, internal_port, suggested, prefer_failure, lifetime_ms, now);
}

void Shard::RenumberIp4(uint8_t* d) {
  const uint16_t id = static_cast<uint16_t>(ip_id_counter_++ * steering_.shards() + index_);
  uint8_t raw[2];
  StoreBe16(raw, id);
  ApplyDeltaAt(d + 10, Rewrite16(d + 4, LoadRaw16(raw)));
}

Verdict Shard::ProcessFragment(PacketRef& p, PacketView& v, int64_t now) {
  auto drop = [](DropReason r) { return Verdict{Action::kDrop, r, 0}; };
  uint8_t* const d = p.data;
  if (v.family == 4 ? v4_ == nullptr : v6_ == nullptr) return drop(DropReason::kNoGlobalAddress);
  if (steering_.IsGlobal(v.family, d + v.src_addr_offset())) return drop(DropReason::kSourceIsGlobal);
  if (steering_.IsGlobal(v.family, d + v.dst_addr_offset()) && steering_.IsInside(v.family, d + v.src_addr_offset())) {
    return drop(DropReason::kHairpinFragment);
  }
  const FragmentKey key = FragmentKey::Of(d, v);
  // Handed here by the datagram's shard: this shard holds the session.
  if (p.handed_off) return TranslateFragment(p, v, key, now);

  // This is the datagram's shard (steered by its key).
  if (!v.later_fragment) {
    const uint32_t i = frags_.Touch(key, now);
    if (i == kNil) return drop(DropReason::kFragmentTableFull);
    const uint16_t target = static_cast<uint16_t>(steering_.ShardOfFlow(d, v));
    frags_.at(i).target = target;
    Verdict first;
    if (target == index_) {
      first = TranslateFragment(p, v, key, now);
    } else {
      p.handed_off = true;
      first = Verdict{Action::kHandOff, DropReason::kNone, target};
    }
    // What waited for this fragment follows it.
    frags_.Release(i, [&](const HeldPacket& h) { ReleaseHeld(h, key, target, now); });
    return first;
  }
  if (const uint32_t i = frags_.Find(key); i != kNil && frags_.at(i).target != FragmentTable::kNoTarget) {
    frags_.Touch(key, now);
    const uint16_t target = frags_.at(i).target;
    if (target == index_) return TranslateFragment(p, v, key, now);
    p.handed_off = true;
    return Verdict{Action::kHandOff, DropReason::kNone, target};
  }
  // Ahead of its first fragment: keep it, within bounds.
  const uint32_t i = frags_.Touch(key, now);
  if (i == kNil) return drop(DropReason::kFragmentTableFull);
  const DropReason r = frags_.Hold(i, HeldPacket{d, p.len, p.capacity, p.cookie});
  if (r != DropReason::kNone) return drop(r);
  counters_.fragments_held.Add();
  return Verdict{Action::kHold, DropReason::kNone, 0};
}

Verdict Shard::TranslateFragment(PacketRef& p, PacketView& v, const FragmentKey& key, int64_t now) {
  uint8_t* const d = p.data;
  const size_t alen = v.family == 4 ? 4 : 16;
  const bool inbound = steering_.IsGlobal(v.family, d + v.dst_addr_offset());
  if (!v.later_fragment) {
    // The first fragment: translated with its session like a whole packet.
    PacketRef whole = p;
    whole.handed_off = false;
    const Verdict t = v.family == 4 ? Translate(v4_.get(), whole, v, now) : Translate(v6_.get(), whole, v, now);
    if (t.action != Action::kForward) return t;
    counters_.fragments_translated.Add();
    // Record the new addresses for the later fragments (without an entry
    // they are dropped as fragment-without-first).
    if (const uint32_t i = frags_.Touch(key, now); i != kNil) {
      FragmentTable::Datagram& e = frags_.at(i);
      e.translated = true;
      std::memcpy(e.new_src, d + v.src_addr_offset(), alen);
      std::memcpy(e.new_dst, d + v.dst_addr_offset(), alen);
      if (v.family == 4) {
        // The first fragment may have got a new Identification (outbound):
        // every fragment of the datagram gets the same.
        uint8_t old_id[2];
        StoreBe16(old_id, static_cast<uint16_t>(key.id));
        std::memcpy(e.new_id, d + 4, 2);
        e.ip4_delta = AddDelta(AddDelta(DeltaBytes(key.src, e.new_src, 4), DeltaBytes(key.dst, e.new_dst, 4)),
                               DeltaBytes(old_id, e.new_id, 2));
      }
    }
    return t;
  }
  const uint32_t i = frags_.Find(key);
  if (i == kNil || !frags_.at(i).translated) return Verdict{Action::kDrop, DropReason::kFragmentNoFirst, 0};
  frags_.Touch(key, now);
  const FragmentTable::Datagram& e = frags_.at(i);
  std::memcpy(d + v.src_addr_offset(), e.new_src, alen);
  std::memcpy(d + v.dst_addr_offset(), e.new_dst, alen);
  if (v.family == 4) {
    std::memcpy(d + 4, e.new_id, 2);
    ApplyDeltaAt(d + 10, e.ip4_delta);
  }
  counters_.fragments_translated.Add();
  (inbound ? counters_.packets_in : counters_.packets_out).Add();
  return Verdict{Action::kForward, DropReason::kNone, 0};
}

void Shard::ReleaseHeld(const HeldPacket& h, const FragmentKey& key, uint16_t target, int64_t now) {
  PacketRef r{h.data, h.len, h.capacity, false, false, h.cookie};
  if (target != index_) {
    r.handed_off = true;
    released_.push_back({r, Verdict{Action::kHandOff, DropReason::kNone, target}});
    return;
  }
  PacketView v;
  DropReason pr = ParsePacket(h.data, h.len, &v);
  Verdict t = pr == DropReason::kNone ? TranslateFragment(r, v, key, now) : Verdict{Action::kDrop, pr, 0};
  if (t.action == Action::kDrop) {
    ReleaseDropped(h, t.reason);
    return;
  }
  released_.push_back({r, t});
}

void Shard::ReleaseDropped(const HeldPacket& h, DropReason why) {
  counters_.drop(why).Add();
  events_->PacketDropped(why, h.data, h.len);
  released_.push_back({PacketRef{h.data, h.len, h.capacity, false, false, h.cookie}, Verdict{Action::kDrop, why, 0}});
}

size_t Shard::TakeReleased(std::span<Released> out) {
  size_t n = 0;
  while (n < out.size() && released_taken_ < released_.size()) out[n++] = released_[released_taken_++];
  if (released_taken_ == released_.size()) {
    released_.clear();
    released_taken_ = 0;
  }
  return n;
}

void Shard::ReleaseAllHeld(int64_t now) {
  frags_.Expire(now, true, [&](const HeldPacket& h) { ReleaseDropped(h, DropReason::kFragmentTimeout); });
}

bool Shard::ReplyProhibited(PacketRef& p, const PacketView& v, int64_t now) {
  // Only what an inside host sent is answered (a refusal is always outbound).
  const bool v4 = v.family == 4;
  const uint8_t* global = nullptr;
  uint8_t global_bytes[16];
  // From the sender's own (paired) global address.
  if (v4 && v4_) {
    v4_->ForInside(Ip4::Load(p.data + v.src_addr_offset())).global().Store(global_bytes);
    global = global_bytes;
  } else if (!v4 && v6_) {
    v6_->ForInside(Ip6::Load(p.data + v.src_addr_offset())).global().Store(global_bytes);
    global = global_bytes;
  }
  if (global == nullptr || prohibited_per_second_ == 0) return false;
  // Refusals of inbound packets (a table full for a full-cone newcomer) are
  // not answered: nothing unsolicited from outside gets a reply.
  if (std::memcmp(p.data + v.dst_addr_offset(), global, v4 ? 4 : 16) == 0) return false;
  const int64_t second = now / 1000;
  if (second != prohibited_second_) {
    prohibited_second_ = second;
    prohibited_sent_this_second_ = 0;
  }
  if (prohibited_sent_this_second_ >= prohibited_per_second_) {
    counters_.icmp_prohibited_suppressed.Add();
    return false;
  }
  // RFC 1812 §4.3.2.3 / RFC 4443 §2.4(c): quote as much as fits in 576 bytes
  // (IPv4) or the IPv6 minimum MTU.
  const uint32_t hdr = v4 ? 20 : 40;
  // The packet itself (its IP length), not bytes that trail it in the buffer.
  const uint32_t quote = std::min(v.len, (v4 ? 576u : 1280u) - hdr - 8);
  const uint32_t total = hdr + 8 + quote;
  if (total > p.capacity) return false;
  uint8_t* d = p.data;
  uint8_t sender[16];
  std::memcpy(sender, d + v.src_addr_offset(), v4 ? 4 : 16);
  std::memmove(d + hdr + 8, d, quote);
  std::memset(d, 0, hdr + 8);
  uint8_t* icmp = d + hdr;
  if (v4) {
    d[0] = 0x45;
    StoreBe16(d + 2, uint16_t(total));
    d[8] = 64;  // TTL
    d[9] = kProtoIcmp;
    std::memcpy(d + 12, global, 4);
    std::memcpy(d + 16, sender, 4);
    StoreRaw16(d + 10, Checksum(d, 20));
    icmp[0] = 3;   // Destination Unreachable
    icmp[1] = 13;  // communication administratively prohibited
    StoreRaw16(icmp + 2, Checksum(icmp, 8 + quote));
  } else {
    d[0] = 0x60;
    StoreBe16(d + 4, uint16_t(8 + quote));
    d[6] = kProtoIcmp6;
    d[7] = 64;  // hop limit
    std::memcpy(d + 8, global, 16);
    std::memcpy(d + 24, sender, 16);
    icmp[0] = 1;  // Destination Unreachable
    icmp[1] = 1;  // communication with destination administratively prohibited
    uint8_t pseudo_tail[8] = {0, 0, uint8_t((8 + quote) >> 8), uint8_t(8 + quote), 0, 0, 0, kProtoIcmp6};
    StoreRaw16(icmp + 2, Checksum(icmp, 8 + quote, SumRaw(pseudo_tail, 8, SumRaw(d + 8, 32))));
  }
  p.len = total;
  p.partial_checksum = false;
  ++prohibited_sent_this_second_;
  counters_.icmp_prohibited_sent.Add();
  return true;
}

// ProcessOne's tests of the packet, those of a common IPv4 (IPv6) packet:
// see Ahead. What fails one is left to ProcessOne (kNone), unprefetched.
template <typename Addr>
inline void Shard::PrefetchSlotsIn(FamilyTables<Addr>* tables, const uint8_t* d, uint32_t len, Ahead& a) {
  constexpr bool kV4 = Addr::kFamily == 4;
  constexpr uint32_t kHdr = kV4 ? 20 : 40;
  const uint32_t total = CommonIpTotal<kHdr>(d, len);
  const uint8_t proto = d[kV4 ? 9 : 6];
  if (total == 0 || !CommonL4Valid<kHdr>(d, total, proto)) return;
  if (kV4 ? ToStatusAddress4(d) || LinkLocalOrMulticast4(d) : LinkLocalOrMulticast6(d)) return;
  const Addr src = Addr::Load(d + PacketView::SrcAddrOffset(Addr::kFamily));
  const Addr dst = Addr::Load(d + PacketView::DstAddrOffset(Addr::kFamily));
  if (tables->ForGlobal(src)) return;  // source-is-global
  const uint16_t sport = LoadBe16(d + kHdr), dport = LoadBe16(d + kHdr + 2);
  if (AddressTables<Addr>* to = tables->ForGlobal(dst)) {
    if (steering_.IsInside(Addr::kFamily, d + PacketView::SrcAddrOffset(Addr::kFamily))) return;  // a hairpin
    MappingTable<Addr>& t = proto == kProtoTcp ? to->tcp : to->udp;
    t.PrefetchSlots(a.Set(&t, OutsideKey<Addr>{src, dport, sport}));
  } else {
    AddressTables<Addr>& mine = tables->ForInside(src);
    MappingTable<Addr>& t = proto == kProtoTcp ? mine.tcp : mine.udp;
    t.PrefetchSlots(a.Set(&t, InsideKey<Addr>{src, dst, sport, dport}));
  }
}

inline void Shard::PrefetchSlots(const PacketRef& p, Ahead& a) {
  const uint8_t* d = p.data;
  a.kind = Ahead::Kind::kNone;  // the ring's entry may hold an earlier packet's
  a.candidate = kNil;
  if (p.handed_off || p.len < 20) return;
  if (d[0] == 0x45) {
    if (v4_) PrefetchSlotsIn(v4_.get(), d, p.len, a);
  } else if ((d[0] >> 4) == 6 && p.len >= 40 && v6_) {
    PrefetchSlotsIn(v6_.get(), d, p.len, a);
  }
}

// The later steps: the first one found the table and hashed the key; the
// session step finds the candidate the mapping step follows.
inline void Shard::Prefetch(Ahead& a, PrefetchStep step) {
  a.Visit([&a, step](const auto& table, const auto& key) {
    step == PrefetchStep::kSession ? table.PrefetchSession(key, &a.candidate)
                                   : table.PrefetchMapping(key.key, a.candidate);
  });
}

void Shard::Process(std::span<PacketRef> packets, std::span<Verdict> verdicts, int64_t now_ms) {
  const size_t n = std::min(packets.size(), verdicts.size());
  // Tables this small stay in the caches, where the look-ahead only costs.
  if (counters_.sessions_inserted.value() - counters_.sessions_removed.value() < kPrefetchFrom) {
    for (size_t i = 0; i < n; ++i) verdicts[i] = ProcessOne(packets[i], now_ms);
    return;
  }
  // Start the loads of the packets a few places ahead (their hash slots 8
  // ahead, their sessions 4 ahead, their mappings 2 ahead), so that their
  // cache misses overlap with this one's work instead of following one
  // another. (A hash slot holds only an index: the lookup's key compare
  // reads the session and the mapping, so both must be near by then.)
  constexpr size_t kAhead = 8, kSession = 4, kMapping = 2;
  // Each packet's key is hashed once, by the first step, and kept here for
  // the other two and the lookup: only packets i .. i + kAhead are in
  // flight, so a ring of 16 entries (on the stack, whatever the batch size;
  // natd's --batch allows up to 1024) holds them all.
  constexpr size_t kRing = 16;
  static_assert(kRing > kAhead && (kRing & (kRing - 1)) == 0);
  Ahead ahead[kRing];
  for (size_t i = 0; i < std::min(n, kAhead); ++i) PrefetchSlots(packets[i], ahead[i]);
  for (size_t i = 0; i < std::min(n, kSession); ++i) Prefetch(ahead[i], PrefetchStep::kSession);
  for (size_t i = 0; i < std::min(n, kMapping); ++i) Prefetch(ahead[i], PrefetchStep::kMapping);
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) PrefetchSlots(packets[i + kAhead], ahead[(i + kAhead) % kRing]);
    if (i + kSession < n) Prefetch(ahead[(i + kSession) % kRing], PrefetchStep::kSession);
    if (i + kMapping < n) Prefetch(ahead[(i + kMapping) % kRing], PrefetchStep::kMapping);
    const Ahead& a = ahead[i % kRing];
    verdicts[i] = a.kind != Ahead::Kind::kNone ? ProcessAhead(packets[i], now_ms, a) : ProcessOne(packets[i], now_ms);
  }
}

size_t Shard::Expire(int64_t now) {
  frags_.Expire(now, false, [&](const HeldPacket& h) { ReleaseDropped(h, DropReason::kFragmentTimeout); });
  size_t n = 0;
  if (v4_) {
    for (auto& t : v4_->pool) n += t->tcp.Expire(now) + t->udp.Expire(now) + t->icmp.Expire(now);
  }
  if (v6_) {
    for (auto& t : v6_->pool) n += t->tcp.Expire(now) + t->udp.Expire(now) + t->icmp.Expire(now);
  }
  return n;
}

void Shard::Flush() {
  auto flush = [](auto& fam) {
    for (auto& t : fam->pool) {
      t->tcp.Flush();
      t->udp.Flush();
      t->icmp.Flush();
    }
  };
  if (v4_) flush(v4_);
  if (v6_) flush(v6_);
}

void Shard::AppendStatus(std::string* out, int64_t now) const {
  absl::StrAppend(out, "shard ", index_, "\n");
  auto tables = [&](const auto& fam, const char* tcp, const char* udp, const char* icmp) {
    for (const auto& t : fam->pool) {
      if (fam->pool.size() > 1) absl::StrAppend(out, " global ", ToString(t->global()), "\n");
      AppendTable(out, tcp, t->tcp, now);
      AppendTable(out, udp, t->udp, now);
      AppendTable(out, icmp, t->icmp, now);
    }
  };
  if (v4_) tables(v4_, "tcp4", "udp4", "icmp4");
  if (v6_) tables(v6_, "tcp6", "udp6", "icmp6");
}

}  // namespace natd
