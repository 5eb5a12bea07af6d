#include "nat/testing/fuzz_checks.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "nat/behavior.h"
#include "nat/config.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/prefix_set.h"
#include "nat/testing/fixtures.h"
#include "nat/verify.h"

namespace natd::testing {
namespace {

// Returns the message from the enclosing function when `cond` is false.
#define FUZZ_CHECK(cond, ...)                                                                \
  do {                                                                                       \
    if (!(cond)) return absl::StrCat("check failed: " #cond " " __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)
// Returns the message of a nested check that failed.
#define FUZZ_RETURN_IF_ERROR(expr)            \
  do {                                        \
    std::string fuzz_err_ = (expr);           \
    if (!fuzz_err_.empty()) return fuzz_err_; \
  } while (0)

// ---------------------------------------------------------------------------
// Checksums from scratch (independent of nat/checksum.h).

uint32_t Sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += uint32_t(p[i]) << 8 | p[i + 1];
  if (n % 2) acc += uint32_t(p[n - 1]) << 8;
  return acc;
}
uint16_t Fold16(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}
std::string Name(DropReason r) { return std::string(DropReasonName(r)); }
uint16_t Be16At(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// The pseudo-header sum of a parsed packet's L4 (unfolded).
uint32_t PseudoSum(const uint8_t* d, const PacketView& v, uint32_t l4_len) {
  const size_t alen = v.family == 4 ? 4 : 16;
  uint32_t s = Sum16(d + v.src_addr_offset(), alen);
  s = Sum16(d + v.dst_addr_offset(), alen, s);
  return s + v.proto + (l4_len & 0xffff) + (l4_len >> 16);
}

uint32_t L4Len(const uint8_t* d, const PacketView& v) {
  return v.kind == L4Kind::kUdp ? Be16At(d + v.l4 + 4) : v.len - v.l4;
}

// Offset of the L4 checksum field from the L4 header.
uint32_t ChecksumOffset(L4Kind kind) { return kind == L4Kind::kTcp ? 16 : kind == L4Kind::kUdp ? 6 : 2; }

bool Ip4HeaderValid(const uint8_t* h) { return Fold16(Sum16(h, (h[0] & 0x0f) * 4u)) == 0xffff; }

void FixIp4Header(uint8_t* h) {
  const size_t ihl = (h[0] & 0x0f) * 4u;
  PutBe16(h + 10, 0);
  PutBe16(h + 10, uint16_t(~Fold16(Sum16(h, ihl))));
}

// With checksum offload the TCP/UDP field holds the folded pseudo-header sum.
bool OffloadSumValid(const uint8_t* d, const PacketView& v) {
  const uint16_t want = Fold16(PseudoSum(d, v, L4Len(d, v)));
  const uint16_t have = Be16At(d + v.l4 + ChecksumOffset(v.kind));
  return want % 0xffff == have % 0xffff;  // 0 and 0xffff are both zero
}

// Makes every checksum of a parsed packet valid (or, offloaded, the
// pseudo-header sum).
void FixChecksums(uint8_t* d, const PacketView& v, bool offload) {
  if (v.family == 4) FixIp4Header(d);
  if (v.fragment || v.kind == L4Kind::kNone) return;
  if (v.kind == L4Kind::kError && v.family == 4) FixIp4Header(d + v.quote.l3);
  uint8_t* l4 = d + v.l4;
  const uint32_t len = L4Len(d, v);
  uint8_t* field = l4 + ChecksumOffset(v.kind);
  PutBe16(field, 0);
  const bool pseudo = v.kind == L4Kind::kTcp || v.kind == L4Kind::kUdp || v.family == 6;
  if (offload && (v.kind == L4Kind::kTcp || v.kind == L4Kind::kUdp)) {
    PutBe16(field, Fold16(PseudoSum(d, v, len)));
    return;
  }
  uint16_t c = uint16_t(~Fold16(Sum16(l4, len, pseudo ? PseudoSum(d, v, len) : 0)));
  if (v.kind == L4Kind::kUdp && c == 0) c = 0xffff;
  PutBe16(field, c);
}

// ---------------------------------------------------------------------------
// PacketView invariants.

std::string CheckView(const uint8_t* d, size_t n, const PacketView& v) {
  const uint32_t cap = uint32_t(std::min<size_t>(n, 0xffff + 40));
  FUZZ_CHECK(v.family == 4 || v.family == 6, int(v.family));
  FUZZ_CHECK((d[0] >> 4) == v.family);
  const uint32_t ip_min = v.family == 4 ? 20 : 40;
  FUZZ_CHECK(v.len >= ip_min && v.len <= cap, v.len, " of ", n);
  FUZZ_CHECK(v.l4 >= ip_min && v.l4 <= v.len, v.l4, " of ", v.len);
  if (v.family == 4) {
    FUZZ_CHECK(v.len == Be16At(d + 2));
    FUZZ_CHECK(v.l4 == (d[0] & 0x0f) * 4u);
    FUZZ_CHECK(v.proto == d[9]);
  } else {
    FUZZ_CHECK(v.len == 40u + Be16At(d + 4));
    FUZZ_CHECK((v.l4 - 40) % 8 == 0);
  }
  if (v.later_fragment) {
    FUZZ_CHECK(v.fragment && v.kind == L4Kind::kNone);
    return "";
  }
  FUZZ_CHECK(v.kind != L4Kind::kNone);
  FUZZ_CHECK(!v.fragment || v.kind != L4Kind::kError, "a fragmented ICMP error is refused");
  const uint8_t* l4 = d + v.l4;
  const uint32_t avail = v.len - v.l4;
  switch (v.kind) {
    case L4Kind::kTcp:
      FUZZ_CHECK(v.proto == kProtoTcp);
      FUZZ_CHECK(avail >= 20 && (l4[12] >> 4) * 4u >= 20 && (l4[12] >> 4) * 4u <= avail);
      FUZZ_CHECK(v.src_port == Be16At(l4) && v.dst_port == Be16At(l4 + 2) && v.tcp_flags == l4[13]);
      break;
    case L4Kind::kUdp:
      FUZZ_CHECK(v.proto == kProtoUdp);
      FUZZ_CHECK(avail >= 8 && Be16At(l4 + 4) >= 8 && (Be16At(l4 + 4) <= avail || v.fragment));
      FUZZ_CHECK(v.src_port == Be16At(l4) && v.dst_port == Be16At(l4 + 2));
      break;
    case L4Kind::kEcho:
      FUZZ_CHECK(v.proto == (v.family == 4 ? kProtoIcmp : kProtoIcmp6));
      FUZZ_CHECK(avail >= 8);
      FUZZ_CHECK(v.src_port == Be16At(l4 + 4) && v.dst_port == v.src_port);
      FUZZ_CHECK(v.icmp_type == l4[0] && v.icmp_code == l4[1]);
      break;
    case L4Kind::kError: {
      FUZZ_CHECK(v.proto == (v.family == 4 ? kProtoIcmp : kProtoIcmp6));
      FUZZ_CHECK(v.icmp_type == l4[0] && v.icmp_code == l4[1]);
      const QuotedView& q = v.quote;
      FUZZ_CHECK(q.l3 == v.l4 + 8u, q.l3);
      FUZZ_CHECK(q.end == v.len, q.end);
      FUZZ_CHECK(q.l4 >= q.l3 + ip_min && q.l4 + 8u <= q.end, q.l3, " ", q.l4, " ", q.end);
      FUZZ_CHECK((d[q.l3] >> 4) == v.family);
      if (v.family == 4) FUZZ_CHECK(q.l4 == q.l3 + (d[q.l3] & 0x0f) * 4u);
      const uint8_t* ql4 = d + q.l4;
      if (q.kind == L4Kind::kTcp || q.kind == L4Kind::kUdp) {
        FUZZ_CHECK(q.proto == (q.kind == L4Kind::kTcp ? kProtoTcp : kProtoUdp));
        FUZZ_CHECK(q.src_port == Be16At(ql4) && q.dst_port == Be16At(ql4 + 2));
      } else {
        FUZZ_CHECK(q.kind == L4Kind::kEcho, int(q.kind));
        FUZZ_CHECK(q.src_port == Be16At(ql4 + 4) && q.dst_port == q.src_port);
      }
      break;
    }
    case L4Kind::kNone:
      break;
  }
  return "";
}

bool SameView(const PacketView& a, const PacketView& b) {
  return a.len == b.len && a.family == b.family && a.proto == b.proto && a.kind == b.kind && a.fragment == b.fragment &&
         a.later_fragment == b.later_fragment && a.frag_id == b.frag_id &&
         a.tcp_flags == b.tcp_flags && a.icmp_type == b.icmp_type && a.icmp_code == b.icmp_code && a.l4 == b.l4 &&
         a.src_port == b.src_port && a.dst_port == b.dst_port && a.quote.l3 == b.quote.l3 && a.quote.l4 == b.quote.l4 &&
         a.quote.end == b.quote.end && a.quote.proto == b.quote.proto && a.quote.kind == b.quote.kind &&
         a.quote.src_port == b.quote.src_port && a.quote.dst_port == b.quote.dst_port;
}

// ---------------------------------------------------------------------------
// translate_fuzz.

// Counts what the engine reports, to compare with its counters.
class CountingSink final : public EventSink {
 public:
  void MappingInserted(const MappingEvent& e) override {
    ++inserted;
    if (e.external_port == 0) bad = "MappingInserted without an external port";
  }
  void MappingRemoved(const MappingEvent&, RemoveReason) override { ++removed; }
  void MappingRefused(const MappingEvent&, DropReason why) override {
    if (why != DropReason::kNoPort && why != DropReason::kTableFull && why != DropReason::kHostQuota) {
      bad = absl::StrCat("MappingRefused with ", Name(why));
    }
  }
  void PacketDropped(DropReason, const uint8_t*, size_t) override { ++dropped; }

  uint64_t inserted = 0, removed = 0, dropped = 0;
  std::string bad;
};

// The lab's addresses (those of the golden fixtures), raw, per family.
struct Lab {
  uint8_t inside[2][16];
  uint8_t remote[2][16];
  uint8_t router[16];
  uint8_t global[16];
  size_t alen;
};

Lab MakeLab(int family) {
  Lab lab{};
  lab.alen = family == 4 ? 4 : 16;
  const int af = family == 4 ? AF_INET : AF_INET6;
  const char* const names4[] = {kInside4, "198.18.0.3", kRemote4, "203.0.113.8", kRouter4, kGlobal4};
  const char* const names6[] = {kInside6, "fd00:18::3", kRemote6, "2001:db8:beef::8", kRouter6, kGlobal6};
  const char* const* names = family == 4 ? names4 : names6;
  uint8_t* const dst[] = {lab.inside[0], lab.inside[1], lab.remote[0], lab.remote[1], lab.router, lab.global};
  for (int i = 0; i < 6; ++i) inet_pton(af, names[i], dst[i]);
  return lab;
}

// A flow natd translated outbound, as the far end sees it.
struct Flow {
  uint8_t family;
  uint8_t remote[16];
  uint8_t inside[16];
  uint16_t inside_port, remote_port, external_port;
};

constexpr uint16_t kPortSetChoice = 0x03;

// One live session as the tables hold it, addresses as raw bytes.
struct LiveSession {
  uint8_t inside[16];
  uint8_t remote[16];
  uint16_t inside_port, external_port, remote_port;
};

template <typename Addr>
void CollectSessions(const MappingTable<Addr>& t, std::vector<LiveSession>* out) {
  t.ForEachSession([&](const auto& m, const auto& s) {
    LiveSession l{};
    m.inside.Store(l.inside);
    s.remote.Store(l.remote);
    l.inside_port = m.inside_port;
    l.external_port = m.external_port;
    l.remote_port = s.remote_port;
    out->push_back(l);
  });
}

// The sessions of the table that translates `kind` (TCP, UDP or echo).
std::vector<LiveSession> SessionsOf(Shard& shard, uint8_t family, L4Kind kind) {
  std::vector<LiveSession> out;
  if (family == 4 && shard.v4()) CollectSessions(shard.v4()->For(kind), &out);
  if (family == 6 && shard.v6()) CollectSessions(shard.v6()->For(kind), &out);
  return out;
}

// What a packet's table lookup is about; null fields match anything.
struct SessionQuery {
  const uint8_t* inside = nullptr;
  const uint8_t* remote = nullptr;
  const uint16_t* inside_port = nullptr;
  const uint16_t* external_port = nullptr;
  const uint16_t* remote_port = nullptr;
};

bool AnySession(const std::vector<LiveSession>& sessions, size_t alen, const SessionQuery& q) {
  for (const LiveSession& l : sessions) {
    if ((!q.inside || std::memcmp(l.inside, q.inside, alen) == 0) &&
        (!q.remote || std::memcmp(l.remote, q.remote, alen) == 0) &&
        (!q.inside_port || l.inside_port == *q.inside_port) &&
        (!q.external_port || l.external_port == *q.external_port) &&
        (!q.remote_port || l.remote_port == *q.remote_port)) {
      return true;
    }
  }
  return false;
}

const Behavior& BehaviorOf(const EngineConfig& c, L4Kind kind) {
  return kind == L4Kind::kTcp ? c.tcp : kind == L4Kind::kUdp ? c.udp : c.icmp;
}

// The tables' own consistency: outside keys (what inbound lookups use) and
// inside keys are unique, an exclusive external port belongs to one inside
// endpoint (a port shared per remote address: per remote address), and every
// external port is in the shard's slice.
std::string CheckTable(std::vector<LiveSession> v, size_t alen, PortSharing sharing, const PortPlan& plan,
                       uint32_t shard) {
  for (const LiveSession& l : v) {
    FUZZ_CHECK(plan.OwnerOf(l.external_port) == shard, "external port ", l.external_port, " of shard ", shard);
  }
  auto by = [&](auto key) {
    std::sort(v.begin(), v.end(), [&](const LiveSession& a, const LiveSession& b) { return key(a) < key(b); });
  };
  using Key = std::tuple<std::string, std::string, uint32_t, uint32_t>;
  auto bytes = [&](const uint8_t* p) { return std::string(reinterpret_cast<const char*>(p), alen); };
  // Outside key (remote, external port, remote port): unique.
  auto outside = [&](const LiveSession& l) { return Key{bytes(l.remote), "", l.external_port, l.remote_port}; };
  by(outside);
  for (size_t i = 1; i < v.size(); ++i) FUZZ_CHECK(outside(v[i - 1]) != outside(v[i]), "two sessions, one outside key");
  // Inside key (inside, remote, inside port, remote port): unique.
  auto inside = [&](const LiveSession& l) {
    return Key{bytes(l.inside), bytes(l.remote), l.inside_port, l.remote_port};
  };
  by(inside);
  for (size_t i = 1; i < v.size(); ++i) FUZZ_CHECK(inside(v[i - 1]) != inside(v[i]), "two sessions, one inside key");
  if (sharing == PortSharing::kPerRemoteEndpoint) return "";
  // Exclusive: one inside endpoint per external port; per remote address:
  // one per external port and remote address.
  const bool per_addr = sharing == PortSharing::kPerRemoteAddress;
  auto port = [&](const LiveSession& l) { return Key{per_addr ? bytes(l.remote) : "", "", l.external_port, 0}; };
  by(port);
  for (size_t i = 1; i < v.size(); ++i) {
    if (port(v[i - 1]) != port(v[i])) continue;
    FUZZ_CHECK(std::memcmp(v[i - 1].inside, v[i].inside, alen) == 0 && v[i - 1].inside_port == v[i].inside_port,
               "external port ", v[i].external_port, " given to two inside endpoints");
  }
  return "";
}

// A table's sizes and times: every mapping has a session, the table is within
// its capacity, expiry has removed every session that was due, and none is
// due later than its longest timeout.
template <typename Addr>
std::string CheckTableTimes(const MappingTable<Addr>& table, int64_t now, const char* when) {
  FUZZ_CHECK(table.mapping_count() <= table.session_count(), "every mapping has a session");
  FUZZ_CHECK(table.session_count() <= table.config().capacity);
  const int64_t longest = std::max(table.config().timeout_ms, table.config().established_timeout_ms);
  int64_t earliest = INT64_MAX, latest = INT64_MIN;
  table.ForEachSession([&](const auto&, const auto& ss) {
    earliest = std::min(earliest, ss.expires_ms);
    latest = std::max(latest, ss.expires_ms);
  });
  if (table.session_count()) {
    FUZZ_CHECK(earliest > now && latest <= now + longest, when, ": sessions expire in ", earliest - now, "..",
               latest - now, " ms, timeout ", longest);
  }
  return "";
}

class TranslateRun {
 public:
  std::string Run(const uint8_t* data, size_t size);

 private:
  std::string Step(uint8_t op, const uint8_t* pkt, size_t len);
  std::string CheckBalance(const char* when);
  std::string CheckAnswer(const uint8_t* d, uint32_t len, const std::vector<uint8_t>& before, const PacketView& vb,
                          uint32_t shard);
  std::string CheckAgainstTable(Shard& shard, const uint8_t* after, const uint8_t* before, const PacketView& vb,
                                const PacketView& va, bool inbound, const std::vector<LiveSession>& sessions_before);
  void Patch(uint8_t op, uint8_t* d, size_t n);
  const Flow* PickFlow(uint8_t family, bool older) const;
  // Fragments: a packet's way through the shards after its first verdict,
  // and the packets shards let go of later.
  std::string CheckFragmentPath(uint32_t si, PacketRef& ref, Verdict v, const std::vector<uint8_t>& before,
                                const PacketView& vb);
  std::string DrainReleased();

  CountingSink sink_;
  std::unique_ptr<Engine> engine_;
  Lab lab4_ = MakeLab(4), lab6_ = MakeLab(6);
  std::deque<Flow> flows_;
  int64_t now_ = 1'000'000;
  size_t index_ = 0;
  uint8_t room_ = 0;  // byte 2, bits 4-5
  // Answers built per shard in the current second: {second, count}.
  std::vector<std::pair<int64_t, uint32_t>> answers_;
  // Buffers of fragments, alive for the run: a shard may hold one.
  std::vector<std::unique_ptr<uint8_t[]>> kept_;
};

std::string TranslateRun::CheckFragmentPath(uint32_t si, PacketRef& ref, Verdict v, const std::vector<uint8_t>& before,
                                            const PacketView& vb) {
  uint8_t* d = ref.data;
  const Lab& lab = vb.family == 6 ? lab6_ : lab4_;
  const size_t alen = lab.alen;
  uint32_t decider = si;
  if (v.action == Action::kHandOff) {
    FUZZ_CHECK(v.next_shard < engine_->shards() && v.next_shard != si && ref.handed_off, "fragment hand-off to ",
               v.next_shard, " from ", si);
    FUZZ_CHECK(std::memcmp(d, before.data(), before.size()) == 0, "a handed-off fragment is not yet translated");
    decider = v.next_shard;
    v = engine_->shard(v.next_shard).ProcessOne(ref, now_);
    FUZZ_CHECK(v.action != Action::kHandOff && v.action != Action::kHold, "the session's shard decides");
  }
  if (v.action == Action::kReply) {
    // A first fragment whose new flow is refused is answered like any
    // refused packet (RFC 1812 §4.3.2.7 forbids answering only later ones).
    FUZZ_CHECK(!vb.later_fragment, "only a first fragment is answered");
    FUZZ_CHECK(v.reason == DropReason::kNoPort || v.reason == DropReason::kTableFull ||
                   v.reason == DropReason::kHostQuota,
               "a fragment answered for ", Name(v.reason));
    return CheckAnswer(d, ref.len, before, vb, decider);
  }
  FUZZ_CHECK(v.action == Action::kForward || v.action == Action::kDrop || v.action == Action::kHold,
             "fragment verdict ", int(v.action));
  FUZZ_CHECK((v.action == Action::kDrop) == (v.reason != DropReason::kNone), Name(v.reason));
  FUZZ_CHECK(ref.len == before.size(), "a fragment keeps its length");
  if (v.action != Action::kForward) {
    FUZZ_CHECK(std::memcmp(d, before.data(), before.size()) == 0, "a dropped or held fragment is left as it was");
    return "";
  }
  PacketView va;
  const DropReason after = ParsePacket(d, ref.len, &va);
  FUZZ_CHECK(after == DropReason::kNone, "translated fragment parses: ", Name(after));
  FUZZ_RETURN_IF_ERROR(CheckView(d, ref.len, va));
  const bool inbound = std::memcmp(before.data() + vb.dst_addr_offset(), lab.global, alen) == 0;
  // Outbound IPv4 datagrams get natd's Identification (RFC 7857 §10).
  FUZZ_CHECK(va.fragment && va.later_fragment == vb.later_fragment &&
                 (va.frag_id == vb.frag_id || (vb.family == 4 && !inbound)) && va.len == vb.len && va.l4 == vb.l4 &&
                 va.proto == vb.proto,
             "a fragment keeps its shape");
  if (vb.family == 4) FUZZ_CHECK(!Ip4HeaderValid(before.data()) || Ip4HeaderValid(d), "IPv4 header checksum");
  if (inbound) {
    FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), lab.global, alen) != 0, "inbound fragment leaves global");
    FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), before.data() + vb.src_addr_offset(), alen) == 0);
  } else {
    FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), lab.global, alen) == 0, "outbound fragment leaves from global");
    FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), before.data() + vb.dst_addr_offset(), alen) == 0);
  }
  // Past the L4 header (or all of a later fragment) nothing changes.
  const size_t from = vb.later_fragment ? vb.l4 : vb.l4 + (vb.kind == L4Kind::kTcp ? 20 : 8);
  FUZZ_CHECK(from > vb.len || std::memcmp(d + from, before.data() + from, vb.len - from) == 0,
             "a fragment's payload is untouched");
  return "";
}

std::string TranslateRun::DrainReleased() {
  Shard::Released r[16];
  for (uint32_t i = 0; i < engine_->shards(); ++i) {
    size_t n;
    while ((n = engine_->shard(i).TakeReleased(std::span(r, 16))) > 0) {
      for (size_t k = 0; k < n; ++k) {
        PacketRef ref = r[k].packet;
        Verdict v = r[k].verdict;
        FUZZ_CHECK(v.action != Action::kHold && v.action != Action::kStatus && v.action != Action::kReply,
                   "released with ", int(v.action));
        if (v.action == Action::kHandOff) {
          FUZZ_CHECK(v.next_shard < engine_->shards() && v.next_shard != i && ref.handed_off);
          v = engine_->shard(v.next_shard).ProcessOne(ref, now_);
          FUZZ_CHECK(v.action == Action::kForward || v.action == Action::kDrop, "released fragment verdict ",
                     int(v.action));
        }
        if (v.action == Action::kForward) {
          PacketView va;
          FUZZ_CHECK(ParsePacket(ref.data, ref.len, &va) == DropReason::kNone && va.later_fragment,
                     "a released fragment is a later one and parses");
        }
      }
    }
  }
  return "";
}

const Flow* TranslateRun::PickFlow(uint8_t family, bool older) const {
  int skip = older ? 1 : 0;
  for (auto it = flows_.rbegin(); it != flows_.rend(); ++it) {
    if (it->family == family && skip-- == 0) return &*it;
  }
  return nullptr;
}

// Writes the ports of a parsed TCP/UDP/echo header (echo: the identifier).
void SetPorts(uint8_t* l4, L4Kind kind, uint16_t src, uint16_t dst) {
  if (kind == L4Kind::kEcho) {
    PutBe16(l4 + 4, src);
  } else {
    PutBe16(l4, src);
    PutBe16(l4 + 2, dst);
  }
}

void TranslateRun::Patch(uint8_t op, uint8_t* d, size_t n) {
  using In = TranslateInput;
  const uint8_t mode = op & 3;
  if (n == 0) return;
  const uint8_t family = d[0] >> 4;
  if (!((family == 4 && n >= 20) || (family == 6 && n >= 40))) return;
  const Lab& lab = family == 4 ? lab4_ : lab6_;
  const size_t alen = lab.alen;
  const size_t src = family == 4 ? 12 : 8, dst = family == 4 ? 16 : 24;
  const bool other_inside = op & In::kOtherInside, other_remote = op & In::kOtherRemote;
  const Flow* flow = (op & In::kFromFlow) ? PickFlow(family, op & In::kOlderFlow) : nullptr;
  // The remote end: the flow's (or the other lab remote), else a lab remote.
  uint8_t remote[16];
  if (flow) {
    std::memcpy(remote, flow->remote, alen);
    if (other_remote) {
      const bool is0 = std::memcmp(remote, lab.remote[0], alen) == 0;
      std::memcpy(remote, lab.remote[is0 ? 1 : 0], alen);
    }
  } else {
    std::memcpy(remote, lab.remote[other_remote ? 1 : 0], alen);
  }
  switch (mode) {
    case In::kOutbound:
      std::memcpy(d + src, flow ? flow->inside : lab.inside[other_inside ? 1 : 0], alen);
      std::memcpy(d + dst, remote, alen);
      break;
    case In::kInbound:
      std::memcpy(d + src, remote, alen);
      std::memcpy(d + dst, lab.global, alen);
      break;
    case In::kError:
      if (other_inside) {  // outbound: an inside host's error
        std::memcpy(d + src, flow ? flow->inside : lab.inside[0], alen);
        std::memcpy(d + dst, remote, alen);
      } else {
        std::memcpy(d + src, lab.router, alen);
        std::memcpy(d + dst, lab.global, alen);
      }
      break;
    default:
      break;
  }
  PacketView v;
  if (ParsePacket(d, n, &v) != DropReason::kNone) return;
  if (mode == In::kError && v.kind == L4Kind::kError) {
    if (other_inside) {  // quotes what the inside host received
      std::memcpy(d + v.quote.l3 + src, remote, alen);
      std::memcpy(d + v.quote.l3 + dst, flow ? flow->inside : lab.inside[0], alen);
      if (flow) SetPorts(d + v.quote.l4, v.quote.kind, flow->remote_port, flow->inside_port);
    } else {  // quotes what natd sent out
      std::memcpy(d + v.quote.l3 + src, lab.global, alen);
      std::memcpy(d + v.quote.l3 + dst, remote, alen);
      if (flow) SetPorts(d + v.quote.l4, v.quote.kind, flow->external_port, flow->remote_port);
    }
  } else if (flow && !v.fragment && v.kind != L4Kind::kNone && v.kind != L4Kind::kError) {
    if (mode == In::kOutbound) SetPorts(d + v.l4, v.kind, flow->inside_port, flow->remote_port);
    if (mode == In::kInbound) {
      SetPorts(d + v.l4, v.kind, uint16_t(flow->remote_port + (other_inside ? 1 : 0)), flow->external_port);
    }
  }
  if (op & In::kFixChecksums) {
    if (ParsePacket(d, n, &v) == DropReason::kNone) FixChecksums(d, v, op & In::kOffload);
  }
}

std::string TranslateRun::CheckBalance(const char* when) {
  uint64_t ins = 0, rem = 0, drops = 0;
  for (uint32_t i = 0; i < engine_->shards(); ++i) {
    Shard& sh = engine_->shard(i);
    const Counters& c = sh.counters();
    size_t sessions = 0, mappings = 0;
    auto add = [&](auto* t) {
      if (!t) return std::string();
      for (const auto* table : {&t->tcp, &t->udp, &t->icmp}) {
        sessions += table->session_count();
        mappings += table->mapping_count();
        FUZZ_RETURN_IF_ERROR(CheckTableTimes(*table, now_, when));
      }
      return std::string();
    };
    FUZZ_RETURN_IF_ERROR(add(sh.v4()));
    FUZZ_RETURN_IF_ERROR(add(sh.v6()));
    FUZZ_CHECK(c.sessions_inserted.value() - c.sessions_removed.value() == sessions, when, ": shard ", i, " inserted ",
               c.sessions_inserted.value(), " removed ", c.sessions_removed.value(), " live ", sessions);
    FUZZ_CHECK(c.mappings_inserted.value() - c.mappings_removed.value() == mappings, when, ": shard ", i,
               " mappings inserted ", c.mappings_inserted.value(), " removed ", c.mappings_removed.value(), " live ",
               mappings);
    ins += c.mappings_inserted.value();
    rem += c.mappings_removed.value();
    for (size_t r = 0; r < kNumDropReasons; ++r) drops += c.drops[r].value();
    FUZZ_CHECK(c.drops[0].value() == 0, "no drop counted as 'none'");
  }
  FUZZ_CHECK(sink_.bad.empty(), sink_.bad);
  FUZZ_CHECK(sink_.inserted == ins && sink_.removed == rem, when, ": events ", sink_.inserted, "/", sink_.removed,
             " counters ", ins, "/", rem);
  FUZZ_CHECK(sink_.dropped == drops, when, ": PacketDropped ", sink_.dropped, " drop counters ", drops);
  return "";
}

// A forwarded packet against the table it was looked up in: the rewrite is
// the session the table holds (after), and an inbound packet passed the
// preset's filtering (RFC 4787 §5) given the sessions there were before.
std::string TranslateRun::CheckAgainstTable(Shard& shard, const uint8_t* after, const uint8_t* before,
                                            const PacketView& vb, const PacketView& va, bool inbound,
                                            const std::vector<LiveSession>& sessions_before) {
  const size_t alen = vb.family == 4 ? 4 : 16;
  const L4Kind kind = vb.kind == L4Kind::kError ? vb.quote.kind : vb.kind;
  const std::vector<LiveSession> sessions_after = SessionsOf(shard, vb.family, kind);
  auto rport = [&](uint16_t port) { return kind == L4Kind::kEcho ? uint16_t(0) : port; };
  if (vb.kind == L4Kind::kError) {
    // Matched by the quoted session, which it neither creates nor removes.
    FUZZ_CHECK(sessions_after.size() == sessions_before.size(), "an ICMP error changes no session");
    const uint8_t* qb = before + vb.quote.l3;
    const uint8_t* qa = after + va.quote.l3;
    SessionQuery q;
    uint16_t inside_port, external_port, remote_port;
    if (inbound) {  // quotes global:e -> remote:r; becomes inside:x -> remote:r
      q.inside = qa + va.src_addr_offset();
      inside_port = va.quote.src_port;
      external_port = vb.quote.src_port;
      q.remote = qb + vb.dst_addr_offset();
      remote_port = rport(vb.quote.dst_port);
    } else {  // quotes remote:r -> inside:x; becomes remote:r -> global:e
      q.inside = qb + vb.dst_addr_offset();
      inside_port = vb.quote.dst_port;
      external_port = va.quote.dst_port;
      q.remote = qb + vb.src_addr_offset();
      remote_port = rport(vb.quote.src_port);
    }
    q.inside_port = &inside_port;
    q.external_port = &external_port;
    q.remote_port = &remote_port;
    FUZZ_CHECK(AnySession(sessions_before, alen, q), "an ICMP error is translated by the session it quotes");
    return "";
  }
  SessionQuery q;
  uint16_t inside_port, external_port, remote_port;
  if (inbound) {  // remote:r -> global:e becomes remote:r -> inside:x
    q.inside = after + va.dst_addr_offset();
    inside_port = va.dst_port;
    external_port = vb.dst_port;
    q.remote = before + vb.src_addr_offset();
    remote_port = rport(vb.src_port);
  } else {  // inside:x -> remote:r becomes global:e -> remote:r
    q.inside = before + vb.src_addr_offset();
    inside_port = vb.src_port;
    external_port = va.src_port;
    q.remote = before + vb.dst_addr_offset();
    remote_port = rport(vb.dst_port);
  }
  q.inside_port = &inside_port;
  q.external_port = &external_port;
  q.remote_port = &remote_port;
  FUZZ_CHECK(AnySession(sessions_after, alen, q), "the rewrite is a session of the table");
  if (!inbound) return "";
  // Filtering: what had to exist before for the packet to be let in.
  SessionQuery exact;  // this remote endpoint's session on the port
  exact.remote = q.remote;
  exact.external_port = &external_port;
  exact.remote_port = &remote_port;
  if (AnySession(sessions_before, alen, exact)) return "";
  SessionQuery same_addr;  // any session of this remote address on the port
  same_addr.remote = q.remote;
  same_addr.external_port = &external_port;
  SessionQuery any;  // any session on the port
  any.external_port = &external_port;
  const Behavior& b = BehaviorOf(engine_->config(), kind);
  FUZZ_CHECK(b.filtering != Dependence::kAddressPortDependent, "APDF lets in only remote endpoints sent to");
  FUZZ_CHECK(b.filtering != Dependence::kAddressDependent || AnySession(sessions_before, alen, same_addr),
             "ADF lets in only remote addresses sent to");
  FUZZ_CHECK(AnySession(sessions_before, alen, any), "inbound needs a mapping");
  FUZZ_CHECK(kind != L4Kind::kTcp || ((vb.tcp_flags & kTcpSyn) && !(vb.tcp_flags & kTcpRst)),
             "a new inbound TCP session starts with a SYN");
  return "";
}

// An answer to a refused packet, built in its buffer: an ICMP Destination
// Unreachable "administratively prohibited" from the global address to the
// packet's sender, quoting the packet's start, with valid checksums, only for
// outbound packets and within the per-second limit.
std::string TranslateRun::CheckAnswer(const uint8_t* d, uint32_t len, const std::vector<uint8_t>& before,
                                      const PacketView& vb, uint32_t shard) {
  const EngineConfig& c = engine_->config();
  static constexpr uint32_t kRoom[] = {0, 0, 600, 1300};
  FUZZ_CHECK(room_ != 0 && len <= before.size() + kRoom[room_], "the answer fits the buffer: ", len);
  FUZZ_CHECK(vb.family == 4 || vb.family == 6, "only a parsed packet is answered");
  const bool v4 = vb.family == 4;
  const Lab& lab = v4 ? lab4_ : lab6_;
  const size_t alen = lab.alen;
  FUZZ_CHECK(std::memcmp(before.data() + vb.dst_addr_offset(), lab.global, alen) != 0,
             "only outbound packets are answered");
  const uint32_t hdr = v4 ? 20 : 40;
  FUZZ_CHECK(len >= hdr + 8);
  const uint32_t quote = len - hdr - 8;
  FUZZ_CHECK(quote == std::min<uint32_t>(vb.len, (v4 ? 576 : 1280) - hdr - 8), "quote of ", quote,
             " bytes (the refused packet's own IP length, at most what fits)");
  FUZZ_CHECK(std::memcmp(d + hdr + 8, before.data(), quote) == 0, "the quote is the refused packet's start");
  FUZZ_CHECK((d[0] >> 4) == vb.family);
  const uint8_t* src = d + (v4 ? 12 : 8);
  const uint8_t* dst = d + (v4 ? 16 : 24);
  FUZZ_CHECK(std::memcmp(src, lab.global, alen) == 0, "answered from the global address");
  FUZZ_CHECK(std::memcmp(dst, before.data() + vb.src_addr_offset(), alen) == 0, "answered to the sender");
  const uint8_t* icmp = d + hdr;
  uint32_t pseudo = 0;
  if (v4) {
    FUZZ_CHECK(d[0] == 0x45 && Be16At(d + 2) == len && d[9] == kProtoIcmp && Ip4HeaderValid(d));
    FUZZ_CHECK(icmp[0] == 3 && icmp[1] == 13, "v4 type/code ", int(icmp[0]), "/", int(icmp[1]));
  } else {
    FUZZ_CHECK(Be16At(d + 4) == len - 40 && d[6] == kProtoIcmp6);
    FUZZ_CHECK(icmp[0] == 1 && icmp[1] == 1, "v6 type/code ", int(icmp[0]), "/", int(icmp[1]));
    pseudo = Sum16(src, 32) + kProtoIcmp6 + (len - 40);
  }
  FUZZ_CHECK(Fold16(Sum16(icmp, len - hdr, pseudo)) == 0xffff, "ICMP checksum of the answer");
  // At most icmp_prohibited_per_second answers per shard per second.
  if (answers_.size() < engine_->shards()) answers_.resize(engine_->shards(), {-1, 0});
  auto& [second, count] = answers_[shard];
  if (second != now_ / 1000) {
    second = now_ / 1000;
    count = 0;
  }
  ++count;
  FUZZ_CHECK(count <= c.icmp_prohibited_per_second, count, " answers in a second, limit ",
             c.icmp_prohibited_per_second);
  return "";
}

std::string TranslateRun::Step(uint8_t op, const uint8_t* pkt, size_t len) {
  // The packet in a heap buffer of exactly its capacity (its length unless
  // the input gives room for an answer), so ASan sees any access beyond.
  static constexpr uint32_t kRoom[] = {0, 0, 600, 1300};
  const uint32_t capacity = room_ == 0 ? 0 : uint32_t(len) + kRoom[room_];
  std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>({len, capacity, 1})]);
  if (len) std::memcpy(buf.get(), pkt, len);
  uint8_t* d = buf.get();
  Patch(op, d, len);
  const bool offload = op & TranslateInput::kOffload;

  const std::vector<uint8_t> before(d, d + len);
  PacketView vb;
  const DropReason parsed = len ? ParsePacket(d, len, &vb) : DropReason::kEmpty;
  const bool ok = parsed == DropReason::kNone;
  const bool port_based = ok && !vb.fragment && vb.kind != L4Kind::kNone;
  const bool valid_before = port_based && !offload && ChecksumsValid(d, vb);
  const bool offload_valid_before =
      port_based && offload && (vb.kind == L4Kind::kTcp || vb.kind == L4Kind::kUdp) && OffloadSumValid(d, vb);
  const bool quote_ip_valid_before =
      port_based && vb.kind == L4Kind::kError && vb.family == 4 && Ip4HeaderValid(d + vb.quote.l3);
  const Lab& lab = ok && vb.family == 6 ? lab6_ : lab4_;
  const bool to_global = ok && std::memcmp(d + vb.dst_addr_offset(), lab.global, lab.alen) == 0;

  const uint32_t si = engine_->ShardOf(d, len);
  FUZZ_CHECK(si < engine_->shards(), si);
  Shard& shard = engine_->shard(si);
  const L4Kind table_kind = port_based ? (vb.kind == L4Kind::kError ? vb.quote.kind : vb.kind) : L4Kind::kNone;

  // A fragment: through its datagram's shard to its session's, or held
  // (one to the status address asks for the status, like any packet).
  const bool to_status = ok && vb.family == 4 && std::memcmp(d + 16, kStatusAddress, 4) == 0;
  if (ok && vb.fragment && !to_status) {
    PacketRef ref{d, uint32_t(len), capacity, offload, false, index_};
    kept_.push_back(std::move(buf));  // a held fragment lives on in its buffer
    const Verdict v = shard.ProcessOne(ref, now_);
    FUZZ_RETURN_IF_ERROR(CheckFragmentPath(si, ref, v, before, vb));
    FUZZ_RETURN_IF_ERROR(DrainReleased());
    return CheckBalance("after a fragment");
  }

  // Inside -> global address: hairpinned, through up to two shards (an
  // ICMP error only when it is about a packet an inside host received).
  const PrefixSet& inside = engine_->config().inside;
  const bool hairpin = port_based && to_global && inside.Contains(vb.family, d + vb.src_addr_offset()) &&
                       (vb.kind != L4Kind::kError || inside.Contains(vb.family, d + vb.quote.l3 + vb.dst_addr_offset()));
  if (hairpin) {
    const size_t alen = lab.alen;
    PacketRef ref{d, uint32_t(len), capacity, offload, false};
    Verdict v = shard.ProcessOne(ref, now_);
    uint32_t last = si;
    if (v.action == Action::kHandOff) {
      FUZZ_CHECK(v.next_shard < engine_->shards() && v.next_shard != si && ref.handed_off, "a hand-off to shard ",
                 v.next_shard, " from ", si);
      FUZZ_CHECK(std::memcmp(d + vb.src_addr_offset(), lab.global, alen) == 0 &&
                     std::memcmp(d + vb.dst_addr_offset(), lab.global, alen) == 0,
                 "a handed-off packet goes from the global address to it");
      last = v.next_shard;
      v = engine_->shard(last).ProcessOne(ref, now_);
      FUZZ_CHECK(v.action != Action::kHandOff, "one hand-off at most");
    }
    FUZZ_CHECK(v.action == Action::kForward || v.action == Action::kDrop, "hairpin verdict ", int(v.action));
    FUZZ_CHECK(ref.len == len, "a hairpinned packet keeps its length");
    if (v.action == Action::kForward) {
      PacketView va;
      const DropReason after = ParsePacket(d, len, &va);
      FUZZ_CHECK(after == DropReason::kNone, "hairpinned packet parses: ", Name(after));
      FUZZ_RETURN_IF_ERROR(CheckView(d, len, va));
      FUZZ_CHECK(va.family == vb.family && va.len == vb.len && va.kind == vb.kind && va.l4 == vb.l4,
                 "hairpinning keeps the packet's shape");
      FUZZ_CHECK(!valid_before || ChecksumsValid(d, va), "checksums valid before hairpinning stay valid");
      FUZZ_CHECK(!offload_valid_before || OffloadSumValid(d, va), "offloaded pseudo-header sum stays right");
      FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), lab.global, alen) == 0,
                 "a hairpinned packet comes from the global address");
      FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), lab.global, alen) != 0, "and goes to an inside host");
    }
    const Behavior& b = BehaviorOf(engine_->config(), table_kind);
    for (uint32_t s : {si, last}) {
      FUZZ_RETURN_IF_ERROR(
          CheckTable(SessionsOf(engine_->shard(s), vb.family, table_kind), alen, b.sharing, engine_->plan(), s));
    }
    return CheckBalance("after a hairpinned packet");
  }
  // The table this packet is looked up in, before.
  const std::vector<LiveSession> sessions_before =
      port_based ? SessionsOf(shard, vb.family, table_kind) : std::vector<LiveSession>();
  const Counters& c = shard.counters();
  std::vector<uint64_t> drops_before(kNumDropReasons);
  for (size_t r = 0; r < kNumDropReasons; ++r) drops_before[r] = c.drops[r].value();
  const uint64_t status_before = c.status_requests.value();
  const uint64_t sent_before = c.icmp_prohibited_sent.value();
  const uint64_t suppressed_before = c.icmp_prohibited_suppressed.value();

  // A batch of one, through the worker's entry point.
  PacketRef ref;
  ref.data = d;
  ref.len = uint32_t(len);
  ref.capacity = capacity;
  ref.partial_checksum = offload;
  Verdict verdict;
  shard.Process(std::span<PacketRef>(&ref, 1), std::span<Verdict>(&verdict, 1), now_);

  // An answer is a refusal too: dropped, counted, reported.
  const bool refused = verdict.action == Action::kDrop || verdict.action == Action::kReply;
  FUZZ_CHECK(refused == (verdict.reason != DropReason::kNone), int(verdict.action), " ", Name(verdict.reason));
  for (size_t r = 0; r < kNumDropReasons; ++r) {
    const uint64_t want = drops_before[r] + (refused && size_t(verdict.reason) == r ? 1 : 0);
    FUZZ_CHECK(c.drops[r].value() == want, "drop counter ", Name(DropReason(r)));
  }
  FUZZ_CHECK(c.icmp_prohibited_sent.value() == sent_before + (verdict.action == Action::kReply ? 1 : 0));
  FUZZ_CHECK(c.icmp_prohibited_suppressed.value() <= suppressed_before + 1);
  FUZZ_CHECK(verdict.action == Action::kReply || ref.len == len, "only an answer changes the length");
  if (verdict.action == Action::kReply) {
    FUZZ_RETURN_IF_ERROR(CheckAnswer(d, ref.len, before, vb, si));
  } else if (verdict.action != Action::kForward) {
    FUZZ_CHECK(len == 0 || std::memcmp(d, before.data(), len) == 0, "a ",
               verdict.action == Action::kDrop ? "dropped" : "status", " packet is left as it was (",
               Name(verdict.reason), ")");
  }
  if (verdict.action == Action::kDrop && IsMalformed(verdict.reason)) {
    FUZZ_CHECK(!ok, "a packet that parses is not malformed: ", Name(verdict.reason));
  }
  if (verdict.action == Action::kStatus) {
    FUZZ_CHECK(c.status_requests.value() == status_before + 1);
    std::string status;
    for (uint32_t i = 0; i < engine_->shards(); ++i) engine_->shard(i).AppendStatus(&status, now_);
    status += engine_->CountersText();
    FUZZ_CHECK(!status.empty());
  }
  if (verdict.action == Action::kForward) {
    FUZZ_CHECK(port_based, "only a parsed, port-based packet is forwarded");
    PacketView va;
    const DropReason after = ParsePacket(d, len, &va);
    FUZZ_CHECK(after == DropReason::kNone, "forwarded packet parses: ", Name(after));
    FUZZ_RETURN_IF_ERROR(CheckView(d, len, va));
    FUZZ_CHECK(va.family == vb.family && va.len == vb.len && va.kind == vb.kind && va.l4 == vb.l4 &&
                   va.proto == vb.proto && va.quote.l3 == vb.quote.l3 && va.quote.l4 == vb.quote.l4 &&
                   va.quote.kind == vb.quote.kind,
               "translation keeps the packet's shape");
    FUZZ_CHECK(!valid_before || ChecksumsValid(d, va), "checksums valid before translation stay valid");
    FUZZ_CHECK(!offload_valid_before || OffloadSumValid(d, va), "offloaded pseudo-header sum stays right");
    FUZZ_CHECK(!quote_ip_valid_before || Ip4HeaderValid(d + va.quote.l3), "quoted IPv4 header checksum stays valid");
    FUZZ_CHECK(std::memcmp(d + va.len, before.data() + vb.len, len - vb.len) == 0,
               "bytes past the IP length untouched");
    const size_t alen = lab.alen;
    const uint8_t* global = lab.global;
    if (!to_global && va.kind == L4Kind::kError) {
      FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), global, alen) == 0, "an inside error leaves from global");
      FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), before.data() + vb.dst_addr_offset(), alen) == 0);
      FUZZ_CHECK(std::memcmp(d + va.quote.l3 + va.dst_addr_offset(), global, alen) == 0,
                 "the quoted destination becomes global");
      FUZZ_CHECK(engine_->plan().OwnerOf(va.quote.dst_port) == si, "quoted external port ", va.quote.dst_port,
                 " owned by shard ", si);
      FUZZ_CHECK(va.quote.src_port == vb.quote.src_port || va.quote.kind == L4Kind::kEcho);
    } else if (!to_global) {
      FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), global, alen) == 0, "outbound source becomes global");
      FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), before.data() + vb.dst_addr_offset(), alen) == 0);
      FUZZ_CHECK(va.dst_port == vb.dst_port || va.kind == L4Kind::kEcho);
      FUZZ_CHECK(engine_->plan().OwnerOf(va.src_port) == si, "external port ", va.src_port, " owned by shard ", si);
      Flow f{};
      f.family = vb.family;
      std::memcpy(f.remote, before.data() + vb.dst_addr_offset(), alen);
      std::memcpy(f.inside, before.data() + vb.src_addr_offset(), alen);
      f.inside_port = vb.src_port;
      f.remote_port = vb.dst_port;
      f.external_port = va.src_port;
      flows_.push_back(f);
      if (flows_.size() > 8) flows_.pop_front();
    } else {
      FUZZ_CHECK(std::memcmp(d + va.dst_addr_offset(), global, alen) != 0, "inbound destination leaves global");
      FUZZ_CHECK(std::memcmp(d + va.src_addr_offset(), before.data() + vb.src_addr_offset(), alen) == 0);
      if (va.kind == L4Kind::kError) {
        FUZZ_CHECK(engine_->plan().OwnerOf(vb.quote.src_port) == si, "quoted port owned by the shard");
        FUZZ_CHECK(std::memcmp(d + va.quote.l3 + va.src_addr_offset(), d + va.dst_addr_offset(), alen) == 0,
                   "quoted source becomes the inside host");
      } else {
        FUZZ_CHECK(engine_->plan().OwnerOf(vb.dst_port) == si, "external port owned by the shard");
        FUZZ_CHECK(va.src_port == vb.src_port || va.kind == L4Kind::kEcho);
      }
    }
    FUZZ_RETURN_IF_ERROR(CheckAgainstTable(shard, d, before.data(), vb, va, to_global, sessions_before));
  }
  if (port_based) {
    const Behavior& b = BehaviorOf(engine_->config(), table_kind);
    FUZZ_RETURN_IF_ERROR(
        CheckTable(SessionsOf(shard, vb.family, table_kind), lab.alen, b.sharing, engine_->plan(), si));
  }
  return CheckBalance("after packet");
}

std::string TranslateRun::Run(const uint8_t* data, size_t size) {
  if (size < 3) return "";
  const auto presets = AllPresets();
  // Configs and port sets are built once: each walks thousands of ports,
  // which would dominate a run under coverage instrumentation.
  static const EngineConfig* const kBase = new EngineConfig();
  static const std::vector<PortSet>* const kPortSets = [] {
    auto* sets = new std::vector<PortSet>;
    for (const char* spec : {"1024-1031", "40000-40063", "v6plus:0xc4", "1024-65535"}) {
      sets->push_back(*PortSet::Parse(spec));
    }
    return sets;
  }();
  EngineConfig c = *kBase;
  // The lab's inside hosts (kInside4/6 and their neighbours): what they send
  // to the global address is hairpinned.
  c.inside = *PrefixSet::Parse("198.18.0.0/24,fd00:18::/64");
  const uint8_t b0 = data[0], b1 = data[1];
  c.tcp = c.udp = c.icmp = presets[b0 % presets.size()];
  c.shards = 1 + (b0 / 9) % 3;
  static constexpr uint32_t kProbes[] = {32, 1, 4, 32};
  c.port_probes = kProbes[(b0 / 27) % 4];
  c.ports = (*kPortSets)[b1 & kPortSetChoice];
  static constexpr uint32_t kSessions[] = {4, 16, 64, 1024};
  c.max_sessions = kSessions[(b1 >> 2) & 3];
  c.udp_inbound_refresh = b1 & 0x10;
  if (b1 & 0x20) {
    c.timeouts.tcp_transitory_ms = 2000;
    c.timeouts.tcp_established_ms = 10000;
    c.timeouts.icmp_ms = 1000;
    c.timeouts.udp_ms = kMinUdpTimeoutMs;
  }
  const uint8_t families = b1 >> 6;
  if (families != 2) c.global4 = Ip4::Load(lab4_.global);
  if (families != 1) c.global6 = Ip6::Load(lab6_.global);
  const uint8_t b2 = data[2];
  static constexpr uint32_t kPerHost[] = {0, 1, 4, 0};
  c.max_sessions_per_host = kPerHost[b2 & 3];
  static constexpr uint32_t kProhibited[] = {100, 0, 1, 100};
  c.icmp_prohibited_per_second = kProhibited[(b2 >> 2) & 3];
  room_ = (b2 >> 4) & 3;
  c.seed = 0x5eed + b0;
  auto engine = Engine::Create(c, &sink_);
  FUZZ_CHECK(engine.ok(), engine.status().ToString());
  engine_ = *std::move(engine);

  size_t pos = 3;
  while (size - pos >= 4) {
    const uint8_t op = data[pos], dt = data[pos + 1];
    const size_t len = std::min<size_t>(size_t(data[pos + 2]) << 8 | data[pos + 3], size - pos - 4);
    pos += 4;
    if (dt == TranslateInput::kFlush) {
      for (uint32_t i = 0; i < engine_->shards(); ++i) engine_->shard(i).Flush();
    } else if (dt) {
      now_ += int64_t(dt & 63) << (6 * (dt >> 6));
      size_t removed = 0;
      uint64_t removed_before = 0, removed_after = 0;
      for (uint32_t i = 0; i < engine_->shards(); ++i) {
        removed_before += engine_->shard(i).counters().sessions_removed.value();
        removed += engine_->shard(i).Expire(now_);
        removed_after += engine_->shard(i).counters().sessions_removed.value();
      }
      FUZZ_CHECK(removed_after - removed_before == removed, "Expire returns the sessions it removed");
      FUZZ_RETURN_IF_ERROR(DrainReleased());  // fragments held too long
    }
    FUZZ_RETURN_IF_ERROR(CheckBalance("after expiry"));
    std::string err = Step(op, data + pos, len);
    if (!err.empty()) return absl::StrCat("packet ", index_, " (offset ", pos, ", ", len, " bytes): ", err);
    pos += len;
    ++index_;
  }
  for (uint32_t i = 0; i < engine_->shards(); ++i) {
    engine_->shard(i).Flush();
    engine_->shard(i).ReleaseAllHeld(now_);
  }
  FUZZ_RETURN_IF_ERROR(DrainReleased());
  for (uint32_t i = 0; i < engine_->shards(); ++i) {
    FUZZ_CHECK(engine_->shard(i).fragments().held() == 0, "every held fragment is let go");
  }
  FUZZ_RETURN_IF_ERROR(CheckBalance("after flush"));
  for (uint32_t i = 0; i < engine_->shards(); ++i) {
    const Counters& k = engine_->shard(i).counters();
    FUZZ_CHECK(k.sessions_inserted.value() == k.sessions_removed.value(), "flush removes every session");
    FUZZ_CHECK(k.mappings_inserted.value() == k.mappings_removed.value(), "flush removes every mapping");
  }
  return "";
}

}  // namespace

std::string CheckPacketView(const uint8_t* data, size_t size) {
  PacketView v;
  const DropReason r = ParsePacket(data, size, &v);
  FUZZ_CHECK(size_t(r) < kNumDropReasons);
  if (r != DropReason::kNone) return "";
  FUZZ_RETURN_IF_ERROR(CheckView(data, size, v));
  // Bytes beyond the IP length are ignored: the packet alone parses the same.
  PacketView alone;
  FUZZ_CHECK(ParsePacket(data, v.len, &alone) == DropReason::kNone && SameView(v, alone),
             "the packet cut at its IP length parses the same");
  if (!v.fragment) (void)ChecksumsValid(data, v);  // reads only inside the packet
  return "";
}

std::string CheckTranslate(const uint8_t* data, size_t size) { return TranslateRun().Run(data, size); }

std::string CheckEngineTables(Engine& engine, int64_t now) {
  for (uint32_t i = 0; i < engine.shards(); ++i) {
    Shard& shard = engine.shard(i);
    size_t sessions = 0, mappings = 0;
    auto family = [&](auto* tables, uint8_t fam) {
      if (!tables) return std::string();
      const size_t alen = fam == 4 ? 4 : 16;
      for (L4Kind kind : {L4Kind::kTcp, L4Kind::kUdp, L4Kind::kEcho}) {
        const auto& table = tables->For(kind);
        sessions += table.session_count();
        mappings += table.mapping_count();
        FUZZ_RETURN_IF_ERROR(CheckTableTimes(table, now, "tables"));
        FUZZ_RETURN_IF_ERROR(CheckTable(SessionsOf(shard, fam, kind), alen, BehaviorOf(engine.config(), kind).sharing,
                                        engine.plan(), i));
      }
      return std::string();
    };
    FUZZ_RETURN_IF_ERROR(family(shard.v4(), 4));
    FUZZ_RETURN_IF_ERROR(family(shard.v6(), 6));
    const Counters& c = shard.counters();
    FUZZ_CHECK(c.sessions_inserted.value() - c.sessions_removed.value() == sessions, "shard ", i, " inserted ",
               c.sessions_inserted.value(), " removed ", c.sessions_removed.value(), " live ", sessions);
    FUZZ_CHECK(c.mappings_inserted.value() - c.mappings_removed.value() == mappings, "shard ", i,
               " mappings inserted ", c.mappings_inserted.value(), " removed ", c.mappings_removed.value(), " live ",
               mappings);
  }
  return "";
}

std::string CheckPortSet(const uint8_t* data, size_t size) {
  const std::string_view spec(reinterpret_cast<const char*>(data), size);
  auto set = PortSet::Parse(spec);
  if (!set.ok()) {
    FUZZ_CHECK(!set.status().message().empty());
    return "";
  }
  const std::vector<uint16_t>& ports = set->ports();
  FUZZ_CHECK(!ports.empty(), "a parsed set has ports");
  FUZZ_CHECK(ports.front() >= 1, "port 0 is never in a set");
  for (size_t i = 1; i < ports.size(); ++i) FUZZ_CHECK(ports[i - 1] < ports[i], "ascending and unique at ", i);
  FUZZ_CHECK(!set->description().empty());
  for (uint32_t shards = 1; shards <= 8; ++shards) {
    auto plan = PortPlan::Make(*set, shards);
    FUZZ_CHECK(plan.ok() == (ports.size() >= shards), shards, " shards over ", ports.size(), " ports");
    if (!plan.ok()) continue;
    FUZZ_CHECK(plan->shards() == shards);
    size_t next = 0, smallest = ports.size(), largest = 0;
    for (uint32_t s = 0; s < shards; ++s) {
      const std::vector<uint16_t>& slice = plan->Slice(s);
      FUZZ_CHECK(!slice.empty(), "shard ", s, " of ", shards, " has ports");
      smallest = std::min(smallest, slice.size());
      largest = std::max(largest, slice.size());
      for (size_t i = 0; i < slice.size(); ++i, ++next) {
        FUZZ_CHECK(next < ports.size() && slice[i] == ports[next], "slices are the set in order");
        FUZZ_CHECK(plan->OwnerOf(slice[i]) == s && plan->IndexInSlice(slice[i]) == i);
      }
    }
    FUZZ_CHECK(next == ports.size(), "slices cover the set");
    FUZZ_CHECK(largest - smallest <= 1, "slices are even: ", smallest, "..", largest);
    size_t owned = 0;
    for (uint32_t p = 0; p < 65536; ++p) owned += plan->OwnerOf(uint16_t(p)) != PortPlan::kNoShard;
    FUZZ_CHECK(owned == ports.size(), "only the set's ports are owned");
  }
  return "";
}

TranslateInput::TranslateInput(uint8_t preset, uint8_t shards, uint8_t options, uint8_t limits) {
  bytes.push_back(uint8_t(preset % 9 + 9 * ((shards - 1) % 3)));
  bytes.push_back(options);
  bytes.push_back(limits);
}

TranslateInput& TranslateInput::Add(const std::vector<uint8_t>& packet, uint8_t op, uint8_t dt) {
  bytes.push_back(op);
  bytes.push_back(dt);
  bytes.push_back(uint8_t(packet.size() >> 8));
  bytes.push_back(uint8_t(packet.size()));
  bytes.insert(bytes.end(), packet.begin(), packet.end());
  return *this;
}

}  // namespace natd::testing
