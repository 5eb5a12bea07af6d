#include "nat/state_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nat/addr.h"
#include "nat/behavior.h"
#include "nat/config.h"
#include "nat/mapping_table.h"
#include "nat/packet_view.h"
#include "nat/shard.h"

namespace natd {
namespace {

// magic, version, length, saved_at
constexpr size_t kHeaderBytes = 8 + 4 + 8 + 8;
constexpr size_t kLengthOffset = 12;
constexpr size_t kCrcBytes = 4;
// Durations beyond this (about 35 000 years) are not from natd; bounding them
// keeps the arithmetic below far from overflow.
constexpr int64_t kMaxDurationMs = int64_t{1} << 50;

// The three tables of a family, in file order; their index is the "kind".
constexpr int kKinds = 3;
uint8_t ProtoOfKind(int kind, int family) {
  return kind == 0 ? kProtoTcp : kind == 1 ? kProtoUdp : family == 4 ? kProtoIcmp : kProtoIcmp6;
}
std::optional<int> KindOfProto(uint8_t proto, int family) {
  if (proto == kProtoTcp) return 0;
  if (proto == kProtoUdp) return 1;
  if (proto == (family == 4 ? kProtoIcmp : kProtoIcmp6)) return 2;
  return std::nullopt;
}
std::string TableName(int kind, int family) {
  return absl::StrCat(kind == 0 ? "tcp" : kind == 1 ? "udp" : "icmp", family);
}
// The family's global addresses (0 without the family).
size_t PoolSize(const Engine& engine, int family) {
  const EngineConfig& c = engine.config();
  if (family == 4) return c.global4 ? 1 + c.more_global4.size() : 0;
  return c.global6 ? 1 + c.more_global6.size() : 0;
}

template <typename Addr>
MappingTable<Addr>& TableOf(FamilyTables<Addr>& t, size_t pool, int kind) {
  AddressTables<Addr>& a = *t.pool[pool];
  return kind == 0 ? a.tcp : kind == 1 ? a.udp : a.icmp;
}

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(char(v)); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void I64(int64_t v) { Le(uint64_t(v), 8); }
  template <typename Addr>
  void Address(const Addr& a) {
    uint8_t b[Addr::kBytes];
    a.Store(b);
    out_.append(reinterpret_cast<const char*>(b), sizeof b);
  }
  void Raw(std::string_view b) { out_.append(b); }
  std::string& bytes() { return out_; }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(char(v >> (8 * i)));
  }
  std::string out_;
};

// Reads fields in order; past the end it returns zeros and remembers that it
// ran out, so a decoder checks ok() once per record, not per field.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  uint8_t U8() { return uint8_t(Le(1)); }
  uint16_t U16() { return uint16_t(Le(2)); }
  uint32_t U32() { return uint32_t(Le(4)); }
  uint64_t U64() { return Le(8); }
  int64_t I64() { return int64_t(Le(8)); }
  template <typename Addr>
  Addr Address() {
    if (!Take(Addr::kBytes)) return Addr{};
    return Addr::Load(reinterpret_cast<const uint8_t*>(b_.data()) + pos_ - Addr::kBytes);
  }
  bool ok() const { return ok_; }
  size_t left() const { return b_.size() - pos_; }

 private:
  bool Take(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  uint64_t Le(int n) {
    if (!Take(n)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(uint8_t(b_[pos_ - n + i])) << (8 * i);
    return v;
  }
  std::string_view b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// ---------------------------------------------------------------------------
// The fingerprint: what decides port ownership and port sharing.

uint64_t PortsHash(const PortSet& ports) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (uint16_t p : ports.ports()) {
    for (uint8_t b : {uint8_t(p), uint8_t(p >> 8)}) h = (h ^ b) * 0x100000001b3ull;
  }
  return h;
}

struct Fingerprint {
  uint32_t shards = 0;
  std::optional<Ip4> global4;
  std::optional<Ip6> global6;
  std::vector<Ip4> more4;
  std::vector<Ip6> more6;
  uint32_t port_count = 0;
  uint64_t ports_hash = 0;
  std::array<std::array<uint8_t, 4>, kKinds> behavior{};  // TCP, UDP, ICMP
};

std::array<uint8_t, 4> BehaviorBytes(const Behavior& b) {
  return {uint8_t(b.mapping), uint8_t(b.filtering), uint8_t(b.strategy), uint8_t(b.sharing)};
}

Fingerprint FingerprintOf(const EngineConfig& c) {
  Fingerprint f;
  f.shards = c.shards;
  f.global4 = c.global4;
  f.global6 = c.global6;
  f.more4 = c.more_global4;
  f.more6 = c.more_global6;
  f.port_count = uint32_t(c.ports.ports().size());
  f.ports_hash = PortsHash(c.ports);
  f.behavior = {BehaviorBytes(c.tcp), BehaviorBytes(c.udp), BehaviorBytes(c.icmp)};
  return f;
}

void WriteFingerprint(Writer& w, const Fingerprint& f) {
  w.U32(f.shards);
  w.U8(f.global4.has_value());
  w.Address(f.global4.value_or(Ip4{}));
  w.U8(f.global6.has_value());
  w.Address(f.global6.value_or(Ip6{}));
  w.U8(uint8_t(f.more4.size()));
  for (const Ip4& a : f.more4) w.Address(a);
  w.U8(uint8_t(f.more6.size()));
  for (const Ip6& a : f.more6) w.Address(a);
  w.U32(f.port_count);
  w.U64(f.ports_hash);
  for (const auto& b : f.behavior) {
    for (uint8_t x : b) w.U8(x);
  }
}

Fingerprint ReadFingerprint(Reader& r) {
  Fingerprint f;
  f.shards = r.U32();
  const bool has4 = r.U8();
  const Ip4 g4 = r.Address<Ip4>();
  if (has4) f.global4 = g4;
  const bool has6 = r.U8();
  const Ip6 g6 = r.Address<Ip6>();
  if (has6) f.global6 = g6;
  for (uint8_t n = r.U8(); n > 0 && r.ok(); --n) f.more4.push_back(r.Address<Ip4>());
  for (uint8_t n = r.U8(); n > 0 && r.ok(); --n) f.more6.push_back(r.Address<Ip6>());
  f.port_count = r.U32();
  f.ports_hash = r.U64();
  for (auto& b : f.behavior) {
    for (uint8_t& x : b) x = r.U8();
  }
  return f;
}

std::string DescribeBehavior(const std::array<uint8_t, 4>& b) {
  for (const Behavior& p : AllPresets()) {
    if (BehaviorBytes(p) == b) return std::string(p.name);
  }
  return absl::StrFormat("an unknown behaviour (%d/%d/%d/%d)", b[0], b[1], b[2], b[3]);
}

template <typename Addr>
std::string DescribeGlobal(const std::optional<Addr>& a) {
  return a ? ToString(*a) : "none";
}

// Names the first setting that differs, saved value first.
absl::Status CompareFingerprints(const Fingerprint& saved, const Fingerprint& now) {
  auto differs = [](const std::string& what, const std::string& was, const std::string& is) {
    return absl::FailedPreconditionError(
        absl::StrCat("written for another configuration: ", what, " was ", was, ", is now ", is));
  };
  if (saved.shards != now.shards) {
    return differs("the worker count", absl::StrCat(saved.shards), absl::StrCat(now.shards));
  }
  if (saved.global4.has_value() != now.global4.has_value() || (saved.global4 && !(*saved.global4 == *now.global4))) {
    return differs("the global IPv4 address", DescribeGlobal(saved.global4), DescribeGlobal(now.global4));
  }
  if (saved.global6.has_value() != now.global6.has_value() || (saved.global6 && !(*saved.global6 == *now.global6))) {
    return differs("the global IPv6 address", DescribeGlobal(saved.global6), DescribeGlobal(now.global6));
  }
  auto pool = [](const auto& v) {
    std::string s;
    for (const auto& a : v) absl::StrAppend(&s, s.empty() ? "" : ",", ToString(a));
    return s.empty() ? std::string("none") : s;
  };
  if (!(saved.more4 == now.more4)) return differs("the IPv4 pool's other addresses", pool(saved.more4), pool(now.more4));
  if (!(saved.more6 == now.more6)) return differs("the IPv6 pool's other addresses", pool(saved.more6), pool(now.more6));
  if (saved.port_count != now.port_count || saved.ports_hash != now.ports_hash) {
    return differs("the port set", absl::StrCat(saved.port_count, " ports"),
                   absl::StrCat("another set of ", now.port_count, " ports"));
  }
  static constexpr const char* kWhat[kKinds] = {"the TCP behaviour", "the UDP behaviour", "the ICMP behaviour"};
  for (int k = 0; k < kKinds; ++k) {
    if (saved.behavior[k] != now.behavior[k]) {
      return differs(kWhat[k], DescribeBehavior(saved.behavior[k]), DescribeBehavior(now.behavior[k]));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Tables.

template <typename Addr>
using SavedTable = std::vector<typename MappingTable<Addr>::SavedMapping>;

template <typename Addr>
void WriteTable(Writer& w, uint32_t shard, int kind, size_t pool, const SavedTable<Addr>& saved) {
  w.U32(shard);
  w.U8(uint8_t(Addr::kFamily));
  w.U8(ProtoOfKind(kind, Addr::kFamily));
  w.U8(uint8_t(pool));
  w.U32(uint32_t(saved.size()));
  for (const auto& m : saved) {
    w.Address(m.inside);
    w.U16(m.inside_port);
    w.U16(m.external_port);
    w.Address(m.remote_key);
    w.U16(m.remote_port_key);
    w.I64(m.age_ms);
    w.I64(m.idle_ms);
    w.U64(m.packets_out);
    w.U64(m.bytes_out);
    w.U64(m.packets_in);
    w.U64(m.bytes_in);
    w.U32(uint32_t(m.sessions.size()));
    for (const auto& s : m.sessions) {
      w.Address(s.remote);
      w.U16(s.remote_port);
      w.U8(s.tcp_state);
      w.U8(s.timeout_class);
      w.I64(s.remaining_ms);
    }
  }
}

// Reads one table's mappings; durations must be what natd writes (ages and
// idle times >= 0, lifetimes > 0, all bounded). The file's own length bounds
// what a count can make it read.
template <typename Addr>
absl::Status ReadTable(Reader& r, const std::string& label, SavedTable<Addr>* out) {
  const uint32_t mappings = r.U32();
  auto bad = [&](size_t i, const std::string& what) {
    return absl::DataLossError(absl::StrCat(label, ": mapping ", i, ": ", what));
  };
  for (uint32_t i = 0; i < mappings && r.ok(); ++i) {
    typename MappingTable<Addr>::SavedMapping m;
    m.inside = r.Address<Addr>();
    m.inside_port = r.U16();
    m.external_port = r.U16();
    m.remote_key = r.Address<Addr>();
    m.remote_port_key = r.U16();
    m.age_ms = r.I64();
    m.idle_ms = r.I64();
    m.packets_out = r.U64();
    m.bytes_out = r.U64();
    m.packets_in = r.U64();
    m.bytes_in = r.U64();
    const uint32_t sessions = r.U32();
    if (!r.ok()) break;
    if (m.age_ms < 0 || m.age_ms > kMaxDurationMs || m.idle_ms < 0 || m.idle_ms > m.age_ms) {
      return bad(i, absl::StrCat("age ", m.age_ms, " ms, idle ", m.idle_ms, " ms"));
    }
    if (sessions == 0) return bad(i, "no session");
    for (uint32_t j = 0; j < sessions && r.ok(); ++j) {
      typename MappingTable<Addr>::SavedSession s;
      s.remote = r.Address<Addr>();
      s.remote_port = r.U16();
      s.tcp_state = r.U8();
      s.timeout_class = r.U8();
      s.remaining_ms = r.I64();
      if (r.ok() && (s.remaining_ms <= 0 || s.remaining_ms > kMaxDurationMs)) {
        return bad(i, absl::StrCat("session ", j, ": lifetime ", s.remaining_ms, " ms"));
      }
      m.sessions.push_back(s);
    }
    out->push_back(std::move(m));
  }
  if (!r.ok()) return absl::DataLossError(absl::StrCat(label, ": the entries end early"));
  return absl::OkStatus();
}

// The wall-clock time natd was down, taken off every lifetime and added to
// every age; sessions whose time ran out are dropped, then mappings left
// without a session.
template <typename Addr>
void AgeBy(int64_t elapsed_ms, SavedTable<Addr>* table, size_t* expired) {
  SavedTable<Addr> kept;
  for (auto& m : *table) {
    std::erase_if(m.sessions, [&](auto& s) {
      s.remaining_ms -= elapsed_ms;
      if (s.remaining_ms > 0) return false;
      ++*expired;
      return true;
    });
    if (m.sessions.empty()) continue;
    m.age_ms += elapsed_ms;
    m.idle_ms += elapsed_ms;
    kept.push_back(std::move(m));
  }
  *table = std::move(kept);
}

struct Decoded {
  // Indexed (shard * pool size + pool index) * kKinds + kind; nullopt where
  // the file has no such table.
  std::vector<std::optional<SavedTable<Ip4>>> v4;
  std::vector<std::optional<SavedTable<Ip6>>> v6;
};

absl::StatusOr<Decoded> Decode(const Engine& engine, std::string_view bytes, int64_t unix_ms, size_t* expired) {
  const std::string_view magic(kStateMagic, sizeof kStateMagic);
  if (bytes.substr(0, magic.size()) != magic.substr(0, bytes.size())) {
    return absl::InvalidArgumentError("not a natd state file (no NATDSTAT magic at its start)");
  }
  if (bytes.size() < kHeaderBytes) {
    return absl::DataLossError(absl::StrCat("truncated: ", bytes.size(), " bytes, shorter than the header"));
  }
  Reader header(bytes.substr(magic.size()));
  const uint32_t version = header.U32();
  const uint64_t length = header.U64();
  const int64_t saved_unix_ms = header.I64();
  if (version != kStateFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("format version ", version, "; this natd reads version ", kStateFormatVersion));
  }
  if (bytes.size() < length) {
    return absl::DataLossError(absl::StrCat("truncated: ", bytes.size(), " of ", length, " bytes"));
  }
  if (bytes.size() > length) {
    return absl::DataLossError(absl::StrCat(bytes.size() - length, " bytes after the ", length, " the header gives"));
  }
  if (length < kHeaderBytes + kCrcBytes) {
    return absl::DataLossError(absl::StrCat("the header gives a length of ", length, " bytes, too short"));
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcBytes);
  Reader crc_reader(bytes.substr(body.size()));
  const uint32_t stored_crc = crc_reader.U32();
  if (const uint32_t crc = Crc32c(body); crc != stored_crc) {
    return absl::DataLossError(
        absl::StrFormat("checksum mismatch: CRC32C of the contents is %08x, the file says %08x", crc, stored_crc));
  }

  Reader r(body.substr(kHeaderBytes));
  const Fingerprint saved = ReadFingerprint(r);
  if (!r.ok()) return absl::DataLossError("the configuration fingerprint ends early");
  if (absl::Status s = CompareFingerprints(saved, FingerprintOf(engine.config())); !s.ok()) return s;

  Decoded d;
  const uint32_t shards = engine.shards();
  const size_t pool4 = PoolSize(engine, 4), pool6 = PoolSize(engine, 6);
  d.v4.resize(size_t{shards} * pool4 * kKinds);
  d.v6.resize(size_t{shards} * pool6 * kKinds);
  const uint32_t tables = r.U32();
  for (uint32_t t = 0; t < tables; ++t) {
    const uint32_t shard = r.U32();
    const uint8_t family = r.U8();
    const uint8_t proto = r.U8();
    const uint8_t pool = r.U8();
    if (!r.ok()) break;
    const std::optional<int> kind = KindOfProto(proto, family);
    const size_t pool_size = family == 4 ? pool4 : family == 6 ? pool6 : 0;
    if (shard >= shards || pool >= pool_size || !kind) {
      return absl::DataLossError(absl::StrCat("table ", t, " is for shard ", shard, ", family ", int(family),
                                              ", protocol ", int(proto), ", global address ", int(pool),
                                              ": no such table"));
    }
    const std::string label =
        absl::StrCat("shard ", shard, " ", TableName(*kind, family), pool_size > 1 ? absl::StrCat(" #", pool) : "");
    const size_t slot = (size_t{shard} * pool_size + pool) * kKinds + *kind;
    absl::Status s;
    if (family == 4) {
      if (d.v4[slot]) return absl::DataLossError(absl::StrCat(label, ": the table is there twice"));
      s = ReadTable<Ip4>(r, label, &d.v4[slot].emplace());
    } else {
      if (d.v6[slot]) return absl::DataLossError(absl::StrCat(label, ": the table is there twice"));
      s = ReadTable<Ip6>(r, label, &d.v6[slot].emplace());
    }
    if (!s.ok()) return s;
  }
  if (!r.ok()) return absl::DataLossError("the tables end early");
  if (r.left() != 0) return absl::DataLossError(absl::StrCat(r.left(), " bytes after the last table"));

  // A clock set back counts as no time passed; one far ahead expires all.
  const int64_t elapsed = std::clamp<int64_t>(unix_ms - saved_unix_ms, 0, kMaxDurationMs);
  for (auto& t : d.v4) {
    if (t) AgeBy<Ip4>(elapsed, &*t, expired);
  }
  for (auto& t : d.v6) {
    if (t) AgeBy<Ip6>(elapsed, &*t, expired);
  }
  return d;
}

}  // namespace

uint32_t Crc32c(std::string_view bytes) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (char ch : bytes) c = kTable[(c ^ uint8_t(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::string EncodeState(Engine& engine, int64_t now_ms, int64_t unix_ms, size_t* sessions) {
  Writer w;
  w.Raw(std::string_view(kStateMagic, sizeof kStateMagic));
  w.U32(kStateFormatVersion);
  w.U64(0);  // the length, once known
  w.I64(unix_ms);
  WriteFingerprint(w, FingerprintOf(engine.config()));
  Writer tables;
  uint32_t count = 0;
  size_t written = 0;
  auto add = [&](const auto& saved) {
    for (const auto& m : saved) written += m.sessions.size();
  };
  for (uint32_t i = 0; i < engine.shards(); ++i) {
    Shard& shard = engine.shard(i);
    for (int kind = 0; kind < kKinds; ++kind) {
      if (FamilyTables<Ip4>* t = shard.v4()) {
        for (size_t p = 0; p < t->pool.size(); ++p) {
          const SavedTable<Ip4> saved = TableOf(*t, p, kind).Save(now_ms);
          if (saved.empty()) continue;
          WriteTable<Ip4>(tables, i, kind, p, saved);
          add(saved);
          ++count;
        }
      }
      if (FamilyTables<Ip6>* t = shard.v6()) {
        for (size_t p = 0; p < t->pool.size(); ++p) {
          const SavedTable<Ip6> saved = TableOf(*t, p, kind).Save(now_ms);
          if (saved.empty()) continue;
          WriteTable<Ip6>(tables, i, kind, p, saved);
          add(saved);
          ++count;
        }
      }
    }
  }
  w.U32(count);
  w.Raw(tables.bytes());
  std::string& out = w.bytes();
  const uint64_t length = out.size() + kCrcBytes;
  for (int b = 0; b < 8; ++b) out[kLengthOffset + b] = char(length >> (8 * b));
  w.U32(Crc32c(out));
  if (sessions) *sessions = written;
  return std::move(out);
}

absl::StatusOr<RestoreCounts> RestoreState(Engine& engine, std::string_view bytes, int64_t now_ms, int64_t unix_ms) {
  size_t expired = 0;
  absl::StatusOr<Decoded> decoded = Decode(engine, bytes, unix_ms, &expired);
  if (!decoded.ok()) return decoded.status();
  // Every table's part is checked before any is applied.
  auto each = [&](auto&& fn) -> absl::Status {
    const size_t pool4 = PoolSize(engine, 4), pool6 = PoolSize(engine, 6);
    for (uint32_t i = 0; i < engine.shards(); ++i) {
      for (int kind = 0; kind < kKinds; ++kind) {
        for (size_t p = 0; p < pool4; ++p) {
          const size_t slot = (size_t{i} * pool4 + p) * kKinds + kind;
          if (!decoded->v4[slot]) continue;
          if (absl::Status s = fn(TableOf(*engine.shard(i).v4(), p, kind), *decoded->v4[slot], i, kind, 4); !s.ok()) {
            return s;
          }
        }
        for (size_t p = 0; p < pool6; ++p) {
          const size_t slot = (size_t{i} * pool6 + p) * kKinds + kind;
          if (!decoded->v6[slot]) continue;
          if (absl::Status s = fn(TableOf(*engine.shard(i).v6(), p, kind), *decoded->v6[slot], i, kind, 6); !s.ok()) {
            return s;
          }
        }
      }
    }
    return absl::OkStatus();
  };
  auto in_context = [](const absl::Status& s, uint32_t shard, int kind, int family) {
    return absl::Status(s.code(), absl::StrCat("shard ", shard, " ", TableName(kind, family), ": ", s.message()));
  };
  absl::Status checked = each([&](const auto& table, const auto& saved, uint32_t i, int kind, int family) {
    absl::Status s = table.CheckRestore(saved);
    return s.ok() ? s : in_context(s, i, kind, family);
  });
  if (!checked.ok()) return checked;
  RestoreCounts counts;
  counts.expired = expired;
  absl::Status applied = each([&](auto& table, const auto& saved, uint32_t i, int kind, int family) {
    absl::StatusOr<size_t> n = table.Restore(saved, now_ms);
    if (!n.ok()) return in_context(n.status(), i, kind, family);  // checked above: never
    counts.sessions += *n;
    counts.mappings += saved.size();
    return absl::OkStatus();
  });
  if (!applied.ok()) return applied;
  return counts;
}

}  // namespace natd
