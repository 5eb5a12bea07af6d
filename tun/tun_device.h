// TunDevice: a Linux TUN interface opened with IFF_TUN | IFF_NO_PI |
// IFF_MULTI_QUEUE, one file descriptor per queue (TUNSETIFF on the same name
// once per queue, Documentation/networking/tuntap.rst §3.3). Each queue is a
// PacketIo; the kernel spreads flows over the queues by hash.
//
// With offloads (IFF_VNET_HDR + TUNSETOFFLOAD: TUN_F_CSUM, TSO4, TSO6, and
// USO4/USO6 where the kernel takes them) every packet is preceded by a
// virtio_net_hdr. Then TCP (and UDP) super-packets of up to 64 KB cross natd
// whole, and checksums may be left to the kernel (NEEDS_CSUM: the field holds
// the pseudo-header sum). The header is read into the buffer's headroom and
// written back from there unchanged: NAT changes no header length.
#ifndef NATD_TUN_TUN_DEVICE_H_
#define NATD_TUN_TUN_DEVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tun/packet_io.h"
#include "tun/uring.h"

namespace natd::tun {

// The largest packet an offloading TUN hands over (an IP packet of 64 KB).
inline constexpr uint32_t kMaxOffloadPacket = 65535;

class TunQueue final : public PacketIo {
 public:
  // With rings (tun/uring.h), reads and writes go in batches through
  // io_uring; without, one read() or write() per packet.
  TunQueue(int fd, bool vnet_hdr, std::unique_ptr<Uring> read_ring = nullptr,
           std::unique_ptr<Uring> write_ring = nullptr)
      : fd_(fd), vnet_hdr_(vnet_hdr), read_ring_(std::move(read_ring)), write_ring_(std::move(write_ring)) {}
  ~TunQueue() override;
  TunQueue(const TunQueue&) = delete;
  TunQueue& operator=(const TunQueue&) = delete;

  size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) override;
  size_t WriteBatch(std::span<const PacketBuf> bufs) override;
  int fd() const { return fd_; }
  // Busy polling (see TunOptions::busy_poll_us); before the reader starts.
  void set_busy_poll_us(uint32_t us) { busy_poll_ns_ = int64_t(us) * 1000; }
  const IoCounters& counters() const { return counters_; }

 private:
  bool WaitReadable(const std::atomic<bool>& stop);
  size_t ReadEach(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop);
  size_t ReadRing(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop);
  size_t WriteEach(std::span<const PacketBuf> bufs);
  size_t WriteRing(std::span<const PacketBuf> bufs);
  // Takes the packet read into `b` (r bytes, virtio_net_hdr first if any).
  void Accept(PacketBuf& b, uint32_t r) const;
  void ClearHeaderIfRebuilt(const PacketBuf& b) const;

  const int fd_;
  const bool vnet_hdr_;
  std::unique_ptr<Uring> read_ring_;   // the reader's thread only
  std::unique_ptr<Uring> write_ring_;  // the writer's thread only
  uint32_t last_read_ = 0;  // packets the last batch read (sizes the next)
  int64_t busy_poll_ns_ = 0;
  IoCounters counters_;
};

struct TunOptions {
  std::string name = "natd0";
  uint32_t queues = 1;
  uint32_t mtu = 1500;
  bool offload = true;  // IFF_VNET_HDR with checksum and segmentation offloads
  bool io_uring = true;  // batch reads and writes through io_uring where the kernel allows it
  // Once the device has run dry, a reader keeps looking for this long before
  // it sleeps. A packet that comes within it is taken at once, where a
  // sleeping thread must first be woken (on a VM, a wake-up on an idle CPU
  // costs tens of µs); the price is a core kept busy while packets keep
  // coming less than this apart. 0: sleep at once.
  uint32_t busy_poll_us = 0;
};

class TunDevice {
 public:
  // Creates (or attaches to) the device with its queues, sets its MTU and
  // brings it up. Errors name the step that failed and why.
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(const TunOptions& options);

  const std::string& name() const { return name_; }
  std::vector<PacketIo*> queues() const;
  TunQueue& queue(size_t i) { return *queues_[i]; }
  // The offloads the kernel accepted, e.g. "csum tso4 tso6 uso4 uso6", or "none".
  const std::string& offloads() const { return offloads_; }
  // How packets cross: "io_uring", or "read/write" (with the reason io_uring
  // was not used, if it was asked for).
  const std::string& io_mode() const { return io_mode_; }
  bool vnet_hdr() const { return vnet_hdr_; }
  // The largest IP packet a read can return.
  uint32_t max_packet() const { return max_packet_; }
  uint64_t read_errors() const;
  uint64_t write_errors() const;

 private:
  std::string name_;
  std::string offloads_ = "none";
  std::string io_mode_ = "read/write";
  bool vnet_hdr_ = false;
  uint32_t max_packet_ = 0;
  std::vector<std::unique_ptr<TunQueue>> queues_;
};

}  // namespace natd::tun

#endif  // NATD_TUN_TUN_DEVICE_H_
