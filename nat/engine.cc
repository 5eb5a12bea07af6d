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
  if (config.global6) config.global6->Store(e->global6_bytes_);
  for (uint32_t i = 0; i < config.shards; ++i) {
    e->shards_.push_back(std::make_unique<Shard>(e->config_, &e->plan_, i, events));
  }
  return e;
}

uint32_t Engine::InsideShard(const uint8_t* addr, size_t addr_len, uint16_t port) const {
  const uint8_t owner = plan_.OwnerOf(port);
  if (owner != PortPlan::kNoShard) return owner;
  uint64_t h = port;
  for (size_t i = 0; i < addr_len; i += 4) {
    uint32_t w;
    std::memcpy(&w, addr + i, 4);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return static_cast<uint32_t>((h >> 32) % shards_.size());
}

uint32_t Engine::ShardOf(const uint8_t* d, size_t len) const {
  if (shards_.size() == 1) return 0;
  PacketView v;
  if (ParsePacket(d, len, &v) != DropReason::kNone || v.kind == L4Kind::kNone) return 0;
  const size_t alen = v.family == 4 ? 4 : 16;
  const uint8_t* dst = d + v.dst_addr_offset();
  bool inbound = false;
  if (v.family == 4 && config_.global4) {
    inbound = std::memcmp(dst, &config_.global4->raw, 4) == 0;
  } else if (v.family == 6 && config_.global6) {
    inbound = std::memcmp(dst, global6_bytes_, 16) == 0;
  }
  // An inside source makes it a hairpin: its first half is outbound.
  if (inbound && !config_.inside.Contains(v.family, d + v.src_addr_offset())) {
    const uint16_t port = v.kind == L4Kind::kError ? v.quote.src_port : v.dst_port;
    const uint8_t owner = plan_.OwnerOf(port);
    return owner == PortPlan::kNoShard ? 0 : owner;
  }
  // An inside host's ICMP error belongs to the inside endpoint it quotes as
  // the destination of the packet it received.
  if (v.kind == L4Kind::kError) return InsideShard(d + v.quote.l3 + v.dst_addr_offset(), alen, v.quote.dst_port);
  return InsideShard(d + v.src_addr_offset(), alen, v.src_port);
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
