// EnginePortMapper: PortMapper (pcp_server.h) over natd's engine. A request
// runs as a task on the worker that owns the inside endpoint's shard
// (Pipeline::RunOnWorker), the one thread that may touch that shard; the
// server's thread waits for the answer (at most a second).
#ifndef NATD_TOOLS_ENGINE_PORT_MAPPER_H_
#define NATD_TOOLS_ENGINE_PORT_MAPPER_H_

#include <chrono>
#include <future>
#include <memory>

#include "nat/engine.h"
#include "tools/pcp_server.h"
#include "tun/pipeline.h"

namespace natd {

class EnginePortMapper final : public PortMapper {
 public:
  EnginePortMapper(Engine* engine, tun::Pipeline* pipeline) : engine_(engine), pipeline_(pipeline) {}

  Mapped Map(int family, const uint8_t* inside, uint8_t protocol, uint16_t internal_port, uint16_t suggested_port,
             uint32_t lifetime_s, bool prefer_failure) override {
    uint8_t addr[16] = {};
    std::memcpy(addr, inside, family == 4 ? 4 : 16);
    const int64_t lifetime_ms = int64_t(lifetime_s) * 1000;
    // Deleting all of a host's mappings: they may be in any shard.
    if (internal_port == 0) {
      for (uint32_t w = 0; w < engine_->shards(); ++w) {
        Run(w, family, addr, protocol, 0, 0, false, 0);
      }
      return {pcp::Result::kSuccess, 0, 0};
    }
    const uint32_t w = engine_->steering().ShardOfInside(family, addr, internal_port);
    const auto r = Run(w, family, addr, protocol, internal_port, suggested_port, prefer_failure, lifetime_ms);
    if (!r) return {pcp::Result::kNetworkFailure, 0, 0};
    switch (r->code) {
      case Shard::PortMapCode::kOk:
        return {pcp::Result::kSuccess, r->external_port, lifetime_s};
      case Shard::PortMapCode::kNoPort:
        return {prefer_failure ? pcp::Result::kCannotProvideExternal : pcp::Result::kNoResources, 0, 0};
      case Shard::PortMapCode::kQuota:
        return {pcp::Result::kUserExQuota, 0, 0};
      case Shard::PortMapCode::kTableFull:
        return {pcp::Result::kNoResources, 0, 0};
      case Shard::PortMapCode::kUnsupported:
        return {pcp::Result::kUnsuppProtocol, 0, 0};
      case Shard::PortMapCode::kNoFamily:
        break;
    }
    return {pcp::Result::kNetworkFailure, 0, 0};
  }

 private:
  std::optional<Shard::PortMapResult> Run(uint32_t w, int family, const uint8_t* addr, uint8_t protocol,
                                          uint16_t internal_port, uint16_t suggested, bool prefer_failure,
                                          int64_t lifetime_ms) {
    auto done = std::make_shared<std::promise<Shard::PortMapResult>>();
    std::future<Shard::PortMapResult> result = done->get_future();
    uint8_t a[16];
    std::memcpy(a, addr, 16);
    Engine* engine = engine_;
    pipeline_->RunOnWorker(w, [=](int64_t now) {
      done->set_value(
          engine->shard(w).MapPort(family, a, protocol, internal_port, suggested, prefer_failure, lifetime_ms, now));
    });
    if (result.wait_for(std::chrono::seconds(1)) != std::future_status::ready) return std::nullopt;
    return result.get();
  }

  Engine* const engine_;
  tun::Pipeline* const pipeline_;
};

}  // namespace natd

#endif  // NATD_TOOLS_ENGINE_PORT_MAPPER_H_
