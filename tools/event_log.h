// EventLog: natd's log. The engine's workers report events through the
// EventSink interface; this implementation only copies a small record into a
// lock-free queue (never waits; counts what it must drop), and one logging
// thread formats and writes the lines. Invalid and untranslatable packets
// are rate-limited (per second); mapping inserts and removals are not.
#ifndef NATD_TOOLS_EVENT_LOG_H_
#define NATD_TOOLS_EVENT_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "concurrentqueue/concurrentqueue.h"
#include "nat/events.h"

namespace natd {

class EventLog final : public EventSink {
 public:
  // Writes to `out`, opened from `path` ("-": stderr, never reopened).
  // `invalid_per_second` caps packet-drop lines.
  EventLog(FILE* out, std::string path, uint32_t invalid_per_second);
  ~EventLog() override;

  void MappingInserted(const MappingEvent& e) override;
  void MappingRemoved(const MappingEvent& e, RemoveReason why) override;
  void MappingRefused(const MappingEvent& e, DropReason why) override;
  void PacketDropped(DropReason why, const uint8_t* data, size_t len) override;

  // A free-form line (start-up, status dumps, totals); not for the packet path.
  void Line(std::string text);
  // Asks the logging thread to reopen the log file (SIGHUP, after rotation).
  void Reopen() {
    reopen_ = true;
    wake_.notify_one();
  }
  // The cap on packet-drop lines from now on (SIGHUP).
  void SetInvalidPerSecond(uint32_t n) { invalid_per_second_.store(n, std::memory_order_relaxed); }
  // Writes everything queued, stops the thread.
  void Stop();
  uint64_t lost() const { return lost_.load(); }

 private:
  enum class Kind : uint8_t { kInserted, kRemoved, kRefused, kDropped };
  struct Record {
    Kind kind;
    uint8_t reason;  // RemoveReason or DropReason
    int64_t wall_ms;
    MappingEvent event;
    uint16_t len;
    uint8_t head[48];  // first bytes of a dropped packet
  };

  void Push(Record&& r);
  bool RateLimit();
  void Run();
  void Write(const Record& r);

  FILE* out_;  // only the logging thread touches it after construction
  const std::string path_;
  std::atomic<bool> reopen_{false};
  std::atomic<uint32_t> invalid_per_second_;
  moodycamel::ConcurrentQueue<Record> queue_;
  std::mutex lines_mu_;
  std::vector<std::string> lines_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> lost_{0};
  std::atomic<int64_t> window_second_{0};
  std::atomic<uint32_t> window_count_{0};
  std::atomic<uint64_t> suppressed_{0};
  std::thread thread_;
};

}  // namespace natd

#endif  // NATD_TOOLS_EVENT_LOG_H_
