// EngineProcessor: the dataplane's PacketProcessor over natd's engine. One
// worker per engine shard; WorkerOf is the engine's pure steering function.
#ifndef NATD_TOOLS_ENGINE_PROCESSOR_H_
#define NATD_TOOLS_ENGINE_PROCESSOR_H_

#include <algorithm>
#include <vector>

#include "nat/engine.h"
#include "tun/processor.h"

namespace natd {

class EngineProcessor final : public tun::PacketProcessor {
 public:
  // `capacity`: bytes each packet buffer holds (room for replies built in place).
  EngineProcessor(Engine* engine, uint32_t batch, uint32_t capacity) : engine_(engine), capacity_(capacity) {
    per_worker_.resize(engine->shards());
    for (auto& w : per_worker_) {
      w.refs.resize(batch);
      w.verdicts.resize(batch);
      w.released.resize(batch);
    }
  }

  uint32_t workers() const override { return engine_->shards(); }
  uint32_t WorkerOf(const uint8_t* data, size_t len) const override { return engine_->ShardOf(data, len); }

  void Process(uint32_t w, std::span<tun::PacketBuf> pkts, std::span<tun::Disposition> out, int64_t now) override {
    PerWorker& pw = per_worker_[w];
    const size_t n = pkts.size();
    for (size_t i = 0; i < n; ++i) {
      pw.refs[i] = PacketRef{pkts[i].data,
                             pkts[i].len,
                             capacity_,
                             (pkts[i].flags & tun::kPartialChecksum) != 0,
                             (pkts[i].flags & tun::kHandedOff) != 0,
                             pkts[i].id};
    }
    engine_->shard(w).Process(std::span(pw.refs.data(), n), std::span(pw.verdicts.data(), n), now);
    for (size_t i = 0; i < n; ++i) out[i] = Dispose(pkts[i], pw.refs[i], pw.verdicts[i]);
  }

  // Held fragments come back as the buffers they were: the engine kept the
  // buffer's id as the packet's cookie.
  size_t TakeReleased(uint32_t w, std::span<tun::PacketBuf> out, std::span<tun::Disposition> how, int64_t now,
                      bool all) override {
    PerWorker& pw = per_worker_[w];
    Shard& shard = engine_->shard(w);
    if (all) shard.ReleaseAllHeld(now);
    const size_t n = shard.TakeReleased(std::span(pw.released.data(), std::min(out.size(), pw.released.size())));
    for (size_t i = 0; i < n; ++i) {
      const Shard::Released& r = pw.released[i];
      out[i] = tun::PacketBuf{r.packet.data, r.packet.len, static_cast<uint32_t>(r.packet.cookie), 0, 0};
      how[i] = Dispose(out[i], r.packet, r.verdict);
    }
    return n;
  }

  void Tick(uint32_t w, int64_t now) override { engine_->shard(w).Expire(now); }

  void AppendStatus(uint32_t w, std::string* out, int64_t now) override {
    engine_->shard(w).AppendStatus(out, now);
  }

 private:
  struct PerWorker {
    std::vector<PacketRef> refs;
    std::vector<Verdict> verdicts;
    std::vector<Shard::Released> released;
  };

  static tun::Disposition Dispose(tun::PacketBuf& buf, const PacketRef& ref, const Verdict& v) {
    switch (v.action) {
      case Action::kForward:
        return tun::Disposition::kWrite;
      case Action::kStatus:
        return tun::Disposition::kStatus;
      case Action::kReply:  // natd's answer, built in the buffer
        buf.len = ref.len;
        buf.flags = tun::kRebuilt;
        return tun::Disposition::kWrite;
      case Action::kHandOff:  // half-way through a hairpin, or a fragment
        buf.hand_to = v.next_shard;
        return tun::Disposition::kHandOff;
      case Action::kHold:  // a fragment ahead of its first
        return tun::Disposition::kHold;
      case Action::kDrop:
        break;
    }
    return tun::Disposition::kDrop;
  }
  Engine* const engine_;
  const uint32_t capacity_;
  std::vector<PerWorker> per_worker_;  // each touched only by its worker
};

}  // namespace natd

#endif  // NATD_TOOLS_ENGINE_PROCESSOR_H_
