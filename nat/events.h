// What the engine tells the rest of natd, and the counters it keeps.
//
// The engine never does I/O and never waits: it calls an EventSink, whose
// implementation (the dataplane's logger) must only enqueue. Counters are
// written by one shard's thread and read by anyone (status dump), so each is
// a relaxed atomic updated without a locked instruction.
#ifndef NATD_NAT_EVENTS_H_
#define NATD_NAT_EVENTS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "nat/drop_reason.h"

namespace natd {

// An address of either family, for events and dumps (not the hot path).
struct IpAddress {
  uint8_t family = 0;  // 4 or 6
  uint8_t bytes[16] = {};
};
std::string ToString(const IpAddress& a);

struct MappingEvent {
  uint8_t proto = 0;  // kProtoTcp, kProtoUdp, kProtoIcmp or kProtoIcmp6
  IpAddress inside;
  uint16_t inside_port = 0;
  uint16_t external_port = 0;  // 0 when none could be given
  IpAddress remote;  // the remote end that caused it
  uint16_t remote_port = 0;
};

enum class RemoveReason : uint8_t { kExpired, kFlushed };
std::string_view RemoveReasonName(RemoveReason r);

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void MappingInserted(const MappingEvent& e) = 0;
  virtual void MappingRemoved(const MappingEvent& e, RemoveReason why) = 0;
  // A new mapping or session was refused: kNoPort, kTableFull or kHostQuota.
  virtual void MappingRefused(const MappingEvent& e, DropReason why) = 0;
  // Any packet the engine drops, with its bytes (valid during the call only).
  virtual void PacketDropped(DropReason why, const uint8_t* data, size_t len) = 0;
};

class NullEventSink final : public EventSink {
 public:
  void MappingInserted(const MappingEvent&) override {}
  void MappingRemoved(const MappingEvent&, RemoveReason) override {}
  void MappingRefused(const MappingEvent&, DropReason) override {}
  void PacketDropped(DropReason, const uint8_t*, size_t) override {}
};

// A counter with a single writer: load+store, no read-modify-write.
class Counter {
 public:
  void Add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct Counters {
  Counter packets_out;  // translated inside -> outside
  Counter packets_in;   // translated outside -> inside (ICMP errors included)
  Counter icmp_errors_in;
  Counter hairpinned;  // inside -> global address -> inside, both halves done
  Counter fragments_translated;
  Counter fragments_held;  // kept until their datagram's first fragment came
  Counter icmp_prohibited_sent;        // answers to refused packets
  Counter icmp_prohibited_suppressed;  // refused beyond the rate limit
  Counter status_requests;
  Counter mappings_inserted;
  Counter mappings_removed;
  Counter sessions_inserted;
  Counter sessions_removed;
  Counter drops[kNumDropReasons];

  Counter& drop(DropReason r) { return drops[static_cast<size_t>(r)]; }
  const Counter& drop(DropReason r) const { return drops[static_cast<size_t>(r)]; }
};

}  // namespace natd

#endif  // NATD_NAT_EVENTS_H_
