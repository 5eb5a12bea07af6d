// TunDevice: a Linux TUN interface opened with IFF_TUN | IFF_NO_PI |
// IFF_MULTI_QUEUE, one file descriptor per queue (TUNSETIFF on the same name
// once per queue, Documentation/networking/tuntap.rst §3.3). Each queue is a
// PacketIo; the kernel spreads flows over the queues by hash.
#ifndef NATD_TUN_TUN_DEVICE_H_
#define NATD_TUN_TUN_DEVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tun/packet_io.h"

namespace natd::tun {

class TunQueue final : public PacketIo {
 public:
  explicit TunQueue(int fd) : fd_(fd) {}
  ~TunQueue() override;
  TunQueue(const TunQueue&) = delete;
  TunQueue& operator=(const TunQueue&) = delete;

  size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) override;
  size_t WriteBatch(std::span<const PacketBuf> bufs) override;
  int fd() const { return fd_; }
  const IoCounters& counters() const { return counters_; }

 private:
  const int fd_;
  IoCounters counters_;
};

class TunDevice {
 public:
  // Creates (or attaches to) `name` with `queues` queues, sets its MTU and
  // brings it up. Errors name the step that failed and why.
  static absl::StatusOr<std::unique_ptr<TunDevice>> Open(const std::string& name, uint32_t queues, uint32_t mtu);

  const std::string& name() const { return name_; }
  std::vector<PacketIo*> queues() const;
  TunQueue& queue(size_t i) { return *queues_[i]; }
  uint64_t read_errors() const;
  uint64_t write_errors() const;

 private:
  std::string name_;
  std::vector<std::unique_ptr<TunQueue>> queues_;
};

}  // namespace natd::tun

#endif  // NATD_TUN_TUN_DEVICE_H_
