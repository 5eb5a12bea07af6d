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

// Every pooled buffer has this much room before `data`, where a device keeps
// its per-packet header (a TUN's virtio_net_hdr) so it is never copied.
inline constexpr uint32_t kHeadroom = 16;

// PacketBuf::flags
inline constexpr uint8_t kPartialChecksum = 0x01;  // L4 checksum left to the device
inline constexpr uint8_t kRebuilt = 0x02;  // a new packet: the device header read with it no longer applies
inline constexpr uint8_t kHandedOff = 0x04;  // passed from one worker to another (PacketProcessor, kHandOff)

// A packet in a pooled buffer: `data` holds `capacity` bytes (after
// kHeadroom bytes of headroom), of which the first `len` are the IP packet.
// `id` names the buffer in its pool.
struct PacketBuf {
  uint8_t* data = nullptr;
  uint32_t len = 0;
  uint32_t id = 0;
  uint8_t flags = 0;
  uint16_t hand_to = 0;  // with Disposition::kHandOff: the worker that takes it next
};

struct IoCounters {
  std::atomic<uint64_t> read_errors{0};
  std::atomic<uint64_t> write_errors{0};
};

class PacketIo {
 public:
  virtual ~PacketIo() = default;
  // Fills up to bufs.size() buffers (each `capacity` bytes) with packets and
  // returns how many. Waits for the first packet at most about 100 ms (0
  // then: nothing came) and not at all once `stop` is set, then takes only
  // what is ready.
  virtual size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) = 0;
  // Writes each packet; returns how many were accepted.
  virtual size_t WriteBatch(std::span<const PacketBuf> bufs) = 0;
};

}  // namespace natd::tun

#endif  // NATD_TUN_PACKET_IO_H_
