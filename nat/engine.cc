#include "nat/engine.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "nat/checksum.h"

namespace natd {

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config, EventSink* events) {
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  absl::StatusOr<PortPlan> plan = PortPlan::Make(config.ports, config.shards);
  if (!plan.ok()) return plan.status();
  std::unique_ptr<Engine> e(new Engine(config, *std::move(plan)));
  for (uint32_t i = 0; i < config.shards; ++i) {
    e->shards_.push_back(std::make_unique<Shard>(e->config_, &e->plan_, i, events));
  }
  return e;
}

uint32_t Engine::ShardOf(const uint8_t* d, size_t len) const {
  if (shards_.size() == 1) return 0;
  PacketView v;
  if (ParsePacket(d, len, &v) != DropReason::kNone) return 0;
  return steering_.ShardOf(d, v);
}

std::string Engine::CountersText() const {
  struct Row {
    const char* name;
    Counter Counters::*field;
  };
  static constexpr Row kRows[] = {
      {"packets_out", &Counters::packets_out},
      {"packets_in", &Counters::packets_in},
      {"icmp_errors_in", &Counters::icmp_errors_in},
      {"hairpinned", &Counters::hairpinned},
      {"fragments_translated", &Counters::fragments_translated},
      {"fragments_held", &Counters::fragments_held},
      {"icmp_prohibited_sent", &Counters::icmp_prohibited_sent},
      {"icmp_prohibited_suppressed", &Counters::icmp_prohibited_suppressed},
      {"status_requests", &Counters::status_requests},
      {"mappings_inserted", &Counters::mappings_inserted},
      {"mappings_removed", &Counters::mappings_removed},
      {"sessions_inserted", &Counters::sessions_inserted},
      {"sessions_removed", &Counters::sessions_removed},
  };
  std::string out;
  for (const Row& row : kRows) {
    uint64_t sum = 0;
    for (const auto& s : shards_) sum += (s->counters().*row.field).value();
    absl::StrAppend(&out, row.name, " ", sum, "\n");
  }
  for (size_t r = 1; r < kNumDropReasons; ++r) {
    uint64_t sum = 0;
    for (const auto& s : shards_) sum += s->counters().drops[r].value();
    if (sum) absl::StrAppend(&out, "drop.", std::string(DropReasonName(static_cast<DropReason>(r))), " ", sum, "\n");
  }
  return out;
}

}  // namespace natd
