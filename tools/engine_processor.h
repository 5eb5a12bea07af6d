// EngineProcessor: the dataplane's PacketProcessor over natd's engine. One
// worker per engine shard; WorkerOf is the engine's pure steering function.
#ifndef NATD_TOOLS_ENGINE_PROCESSOR_H_
#define NATD_TOOLS_ENGINE_PROCESSOR_H_

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
    }
  }

  uint32_t workers() const override { return engine_->shards(); }
  uint32_t WorkerOf(const uint8_t* data, size_t len) const override { return engine_->ShardOf(data, len); }

  void Process(uint32_t w, std::span<tun::PacketBuf> pkts, std::span<tun::Disposition> out, int64_t now) override {
    PerWorker& pw = per_worker_[w];
    const size_t n = pkts.size();
    for (size_t i = 0; i < n; ++i) {
      pw.refs[i] = PacketRef{pkts[i].data, pkts[i].len, capacity_, (pkts[i].flags & tun::kPartialChecksum) != 0,
                             (pkts[i].flags & tun::kHandedOff) != 0};
    }
    engine_->shard(w).Process(std::span(pw.refs.data(), n), std::span(pw.verdicts.data(), n), now);
    for (size_t i = 0; i < n; ++i) {
      switch (pw.verdicts[i].action) {
        case Action::kForward:
          out[i] = tun::Disposition::kWrite;
          break;
        case Action::kStatus:
          out[i] = tun::Disposition::kStatus;
          break;
        case Action::kReply:  // natd's answer, built in the buffer
          pkts[i].len = pw.refs[i].len;
          pkts[i].flags = tun::kRebuilt;
          out[i] = tun::Disposition::kWrite;
          break;
        case Action::kDrop:
          out[i] = tun::Disposition::kDrop;
          break;
        case Action::kHandOff:  // half-way through a hairpin
          pkts[i].hand_to = pw.verdicts[i].next_shard;
          out[i] = tun::Disposition::kHandOff;
          break;
      }
    }
  }

  void Tick(uint32_t w, int64_t now) override { engine_->shard(w).Expire(now); }

  void AppendStatus(uint32_t w, std::string* out, int64_t now) override {
    engine_->shard(w).AppendStatus(out, now);
  }

 private:
  struct PerWorker {
    std::vector<PacketRef> refs;
    std::vector<Verdict> verdicts;
  };
  Engine* const engine_;
  const uint32_t capacity_;
  std::vector<PerWorker> per_worker_;  // each touched only by its worker
};

}  // namespace natd

#endif  // NATD_TOOLS_ENGINE_PROCESSOR_H_
