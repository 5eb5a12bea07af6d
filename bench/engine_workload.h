// The engine workload the benchmarks share: N established sessions in one
// shard (EIM mappings; each inside endpoint talks to N / 64512 remote ends
// when N exceeds the port space), and 64-byte packets for sessions picked at
// random, patched into a template so every packet is a real lookup; one by
// one (Shard::ProcessOne) or in batches, as the dataplane hands them over
// (Shard::Process).
#ifndef NATD_BENCH_ENGINE_WORKLOAD_H_
#define NATD_BENCH_ENGINE_WORKLOAD_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "nat/engine.h"
#include "nat/testing/packet_builder.h"

namespace natd::bench {

inline constexpr uint32_t kPorts = 64512;  // 1024-65535
inline constexpr uint32_t kMaxBatch = 256;

inline EngineConfig BenchConfig(uint32_t sessions) {
  EngineConfig c;
  c.global4 = Ip4{};
  c.global6 = Ip6{};
  ParseIp4("198.19.0.100", &*c.global4);
  ParseIp6("2001:db8:19::100", &*c.global6);
  c.tcp = c.udp = *PresetByName("full-cone");
  c.max_sessions = sessions + 1;
  c.seed = 1;
  return c;
}

// Session i: inside endpoint i % kPorts (address 10.0.x.y, port 1024 + low
// byte), remote end i / kPorts (198.19.x.y).
inline void PatchPacket(uint8_t* p, int family, uint32_t i) {
  const uint32_t ep = i % kPorts, remote = i / kPorts;
  const uint32_t in_addr = __builtin_bswap32(0x0a000000u | (ep >> 8));
  const uint16_t in_port = __builtin_bswap16(uint16_t(1024 + (ep & 0xff)));
  // 198.19.0.100 is the global address (BenchConfig): the 101st remote and
  // later ones (16515072 sessions) skip it.
  const uint32_t r_addr = __builtin_bswap32(0xc6130000u | (remote < 100 ? remote : remote + 1));
  const size_t src = family == 4 ? 12 : 20, dst = family == 4 ? 16 : 36, l4 = family == 4 ? 20 : 40;
  std::memcpy(p + src, &in_addr, 4);
  std::memcpy(p + dst, &r_addr, 4);
  std::memcpy(p + l4, &in_port, 2);
}

inline testing::Bytes Template(int family, uint8_t proto) {
  testing::PacketSpec sp;
  sp.family = family;
  sp.src = family == 4 ? "10.0.0.1" : "fd00:18::0:0";
  sp.dst = family == 4 ? "198.19.0.2" : "2001:db8:19::0:0";
  sp.proto = proto;
  sp.sport = 1024;
  sp.dport = 443;
  sp.tcp_flags = 0x10;
  const size_t hdr = (family == 4 ? 20 : 40) + (proto == 6 ? 20 : 8);
  sp.payload.assign(hdr < 64 ? 64 - hdr : 0, 0xab);
  return testing::Build(sp);
}

class Workload {
 public:
  Workload(int family, uint8_t proto, uint32_t sessions)
      : family_(family), n_(sessions), tmpl_(Template(family, proto)), buf_(tmpl_.size()) {
    auto e = Engine::Create(BenchConfig(sessions), &sink_);
    if (!e.ok()) return;
    engine_ = *std::move(e);
    for (uint32_t i = 0; i < n_; ++i) {
      Load(i);
      buf_[family == 4 ? 33 : 53] = 0x02;  // TCP: a SYN opens the session
      if (shard().ProcessOne(buf_.data(), uint32_t(buf_.size()), 0).action != Action::kForward) return;
    }
    order_.resize(1 << 20);
    Rng rng(7);
    for (auto& o : order_) o = rng.Below(n_);
    ok_ = true;
  }

  bool ok() const { return ok_; }
  Shard& shard() { return engine_->shard(0); }
  // Translates the k-th packet of the random walk; 1 when forwarded.
  int TranslateOne(size_t k) {
    Load(order_[k & (order_.size() - 1)]);
    return shard().ProcessOne(buf_.data(), uint32_t(buf_.size()), 1).action == Action::kForward;
  }
  // Translates packets k .. k + n - 1 of the walk (n <= kMaxBatch) as one
  // batch, each in its own buffer; returns how many were forwarded.
  int TranslateBatch(size_t k, uint32_t n) {
    const std::span<PacketRef> refs = FillBatch(k, n);
    shard().Process(refs, std::span(verdicts_.data(), n), 1);
    int forwarded = 0;
    for (uint32_t i = 0; i < n; ++i) forwarded += verdicts_[i].action == Action::kForward;
    return forwarded;
  }
  // Packets k .. k + n - 1 of the walk (n <= kMaxBatch), each in its own
  // buffer, as TranslateBatch hands them to the shard (LookupFloor takes the
  // same ones).
  std::span<PacketRef> FillBatch(size_t k, uint32_t n) {
    if (batch_.empty()) {
      batch_.resize(size_t(kMaxBatch) * kSlot);
      refs_.resize(kMaxBatch);
      verdicts_.resize(kMaxBatch);
    }
    for (uint32_t i = 0; i < n; ++i) {
      uint8_t* b = batch_.data() + size_t(i) * kSlot;
      std::memcpy(b, tmpl_.data(), tmpl_.size());
      PatchPacket(b, family_, order_[(k + i) & (order_.size() - 1)]);
      refs_[i] = PacketRef{b, uint32_t(tmpl_.size()), 0, false, false};
    }
    return std::span(refs_.data(), n);
  }
  // Session i's packet, as the walk sends it (before translation).
  testing::Bytes PacketOf(uint32_t i) const {
    testing::Bytes b = tmpl_;
    PatchPacket(b.data(), family_, i);
    return b;
  }
  int family() const { return family_; }
  uint32_t sessions() const { return n_; }

 private:
  void Load(uint32_t i) {
    std::memcpy(buf_.data(), tmpl_.data(), tmpl_.size());
    PatchPacket(buf_.data(), family_, i);
  }

  const int family_;
  const uint32_t n_;
  NullEventSink sink_;
  std::unique_ptr<Engine> engine_;
  testing::Bytes tmpl_;
  std::vector<uint8_t> buf_;
  std::vector<uint32_t> order_;
  static constexpr size_t kSlot = 128;  // a batch's buffers, one per packet
  std::vector<uint8_t> batch_;
  std::vector<PacketRef> refs_;
  std::vector<Verdict> verdicts_;
  bool ok_ = false;
};

}  // namespace natd::bench

#endif  // NATD_BENCH_ENGINE_WORKLOAD_H_
