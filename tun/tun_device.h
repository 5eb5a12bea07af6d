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

namespace natd::tun {

// The largest packet an offloading TUN hands over (an IP packet of 64 KB).
inline constexpr uint32_t kMaxOffloadPacket = 65535;

class TunQueue final : public PacketIo {
 public:
  TunQueue(int fd, bool vnet_hdr) : fd_(fd), vnet_hdr_(vnet_hdr) {}
  ~TunQueue() override;
  TunQueue(const TunQueue&) = delete;
  TunQueue& operator=(const TunQueue&) = delete;

  size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) override;
  size_t WriteBatch(std::span<const PacketBuf> bufs) override;
  int fd() const { return fd_; }
  const IoCounters& counters() const { return counters_; }

 private:
  const int fd_;
  const bool vnet_hdr_;
  IoCounters counters_;
};

struct TunOptions {
  std::string name = "natd0";
  uint32_t queues = 1;
  uint32_t mtu = 1500;
  bool offload = true;  // IFF_VNET_HDR with checksum and segmentation offloads
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
  bool vnet_hdr() const { return vnet_hdr_; }
  // The largest IP packet a read can return.
  uint32_t max_packet() const { return max_packet_; }
  uint64_t read_errors() const;
  uint64_t write_errors() const;

 private:
  std::string name_;
  std::string offloads_ = "none";
  bool vnet_hdr_ = false;
  uint32_t max_packet_ = 0;
  std::vector<std::unique_ptr<TunQueue>> queues_;
};

}  // namespace natd::tun

#endif  // NATD_TUN_TUN_DEVICE_H_
