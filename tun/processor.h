// What the dataplane asks of the packet logic, without knowing any of it:
// which worker a packet belongs to, and what to do with a batch. tools/
// implements it over natd::Engine; tests implement it with a toy.
#ifndef NATD_TUN_PROCESSOR_H_
#define NATD_TUN_PROCESSOR_H_

#include <cstdint>
#include <span>
#include <string>

#include "tun/packet_io.h"

namespace natd::tun {

// kHandOff: the packet's work continues on worker PacketBuf::hand_to (set by
// Process), which gets it with kHandedOff in its flags. kHold: the processor
// keeps the buffer for now and gives it back through TakeReleased.
enum class Disposition : uint8_t { kWrite, kDrop, kStatus, kHandOff, kHold };

class PacketProcessor {
 public:
  virtual ~PacketProcessor() = default;
  virtual uint32_t workers() const = 0;
  // Pure and thread-safe: called by every reader thread.
  virtual uint32_t WorkerOf(const uint8_t* data, size_t len) const = 0;
  // Called only on worker `w`'s thread: rewrite in place, decide each packet.
  virtual void Process(uint32_t w, std::span<PacketBuf> pkts, std::span<Disposition> out, int64_t now_ms) = 0;
  // Called on worker `w`'s thread between batches (expiry).
  virtual void Tick(uint32_t w, int64_t now_ms) = 0;
  // Called on worker `w`'s thread after Process and Tick, until it returns
  // 0: buffers kept earlier (kHold) that the processor now lets go, each
  // with its disposition (never kHold). With `all` (at stop, once the
  // worker's thread has ended) it lets go of everything it keeps.
  virtual size_t TakeReleased(uint32_t w, std::span<PacketBuf> out, std::span<Disposition> how, int64_t now_ms,
                              bool all) {
    (void)w, (void)out, (void)how, (void)now_ms, (void)all;
    return 0;
  }
  // Called on worker `w`'s thread when a status dump is wanted.
  virtual void AppendStatus(uint32_t w, std::string* out, int64_t now_ms) = 0;
};

}  // namespace natd::tun

#endif  // NATD_TUN_PROCESSOR_H_
