// The batch I/O interface between the dataplane's threads and a packet
// device: a TUN queue in production (tun_device.h), an in-memory fake in
// tests (fake_io.h), so the pipeline's tests need neither root nor
// /dev/net/tun.
#ifndef NATD_TUN_PACKET_IO_H_
#define NATD_TUN_PACKET_IO_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace natd::tun {

// A packet in a pooled buffer: `data` holds `capacity` bytes, of which the
// first `len` are the packet. `id` names the buffer in its pool.
struct PacketBuf {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t id = 0;
};

struct IoCounters {
  std::atomic<uint64_t> read_errors{0};
  std::atomic<uint64_t> write_errors{0};
};

class PacketIo {
 public:
  virtual ~PacketIo() = default;
  // Fills up to bufs.size() buffers (each `capacity` bytes) with packets and
  // returns how many. Waits for the first packet until `stop` is set
  // (checked at least every 100 ms), then takes only what is ready.
  virtual size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) = 0;
  // Writes each packet; returns how many were accepted.
  virtual size_t WriteBatch(std::span<const PacketBuf> bufs) = 0;
};

}  // namespace natd::tun

#endif  // NATD_TUN_PACKET_IO_H_
