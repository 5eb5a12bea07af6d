// Engine: the whole NAT as the dataplane sees it — N shards plus a pure
// steering function.
//
//   reader thread:   shard = engine.ShardOf(bytes)        (no table touched)
//   worker thread k: engine.shard(k).Process(batch, ...)  (only shard k's state)
//
// Steering (steering.h) puts both directions of a session, the ICMP errors
// about it and every fragment of a datagram in one shard.
#ifndef NATD_NAT_ENGINE_H_
#define NATD_NAT_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nat/config.h"
#include "nat/events.h"
#include "nat/port_set.h"
#include "nat/shard.h"
#include "nat/steering.h"

namespace natd {

class Engine {
 public:
  // Validates the config; the sink must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config, EventSink* events);

  uint32_t ShardOf(const uint8_t* data, size_t len) const;
  const Steering& steering() const { return steering_; }
  Shard& shard(uint32_t i) { return *shards_[i]; }
  const Shard& shard(uint32_t i) const { return *shards_[i]; }
  uint32_t shards() const { return static_cast<uint32_t>(shards_.size()); }
  const EngineConfig& config() const { return config_; }
  const PortPlan& plan() const { return plan_; }

  // Counters summed over shards, one "name value" per line (zero drops omitted).
  std::string CountersText() const;

 private:
  Engine(const EngineConfig& config, PortPlan plan)
      : config_(config), plan_(std::move(plan)), steering_(config_, &plan_) {}

  const EngineConfig config_;
  const PortPlan plan_;
  const Steering steering_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace natd

#endif  // NATD_NAT_ENGINE_H_
