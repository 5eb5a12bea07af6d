// Engine: the whole NAT as the dataplane sees it — N shards plus a pure
// steering function.
//
//   reader thread:   shard = engine.ShardOf(bytes)        (no table touched)
//   worker thread k: engine.shard(k).Process(batch, ...)  (only shard k's state)
//
// Steering rule (both directions of a session meet in one shard):
//   outbound (destination not a global address): the shard of the inside
//     endpoint (source address, port or echo id) — the owner of the inside
//     port when it is in the port set, so a preserved port is in the right
//     slice; a hash of the endpoint otherwise (an inside host's ICMP error:
//     the endpoint its quote is addressed to);
//   inbound (destination is a global address): the owner of the destination
//     port, or for an ICMP error of the quoted source port;
//   hairpinned (destination a global address, source inside): as outbound;
//     the shard hands the packet on to the owner of the destination port
//     (shard.h);
//   anything that will be dropped or is not port-based: a hash, or shard 0.
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

namespace natd {

class Engine {
 public:
  // Validates the config; the sink must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config, EventSink* events);

  uint32_t ShardOf(const uint8_t* data, size_t len) const;
  Shard& shard(uint32_t i) { return *shards_[i]; }
  const Shard& shard(uint32_t i) const { return *shards_[i]; }
  uint32_t shards() const { return static_cast<uint32_t>(shards_.size()); }
  const EngineConfig& config() const { return config_; }
  const PortPlan& plan() const { return plan_; }

  // Counters summed over shards, one "name value" per line (zero drops omitted).
  std::string CountersText() const;

 private:
  Engine(const EngineConfig& config, PortPlan plan) : config_(config), plan_(std::move(plan)) {}

  uint32_t InsideShard(const uint8_t* addr, size_t addr_len, uint16_t port) const;

  const EngineConfig config_;
  const PortPlan plan_;
  uint8_t global6_bytes_[16] = {};  // for steering: compared with each packet's destination
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace natd

#endif  // NATD_NAT_ENGINE_H_
