#include "tun/tun_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

// Linux 6.2 added UDP segmentation offload for TUN; Debian 12's headers predate it.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

namespace natd::tun {
namespace {

int64_t MonotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// struct virtio_net_hdr of linux/virtio_net.h (which C++ cannot include: a
// struct there has a member named `class`). Little-endian, as TUN's default.
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint32_t kVnetHdrLen = sizeof(VnetHdr);
static_assert(kVnetHdrLen == 10);
static_assert(kVnetHdrLen <= kHeadroom, "the virtio_net_hdr lives in the buffer's headroom");

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

TunQueue::~TunQueue() { close(fd_); }

size_t TunQueue::ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) {
  return read_ring_ ? ReadRing(bufs, capacity, stop) : ReadEach(bufs, capacity, stop);
}

size_t TunQueue::WriteBatch(std::span<const PacketBuf> bufs) {
  return write_ring_ ? WriteRing(bufs) : WriteEach(bufs);
}

void TunQueue::Accept(PacketBuf& b, uint32_t r) const {
  const uint32_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  b.len = r - hdr;
  b.flags = 0;
  if (vnet_hdr_) {
    VnetHdr h;
    std::memcpy(&h, b.data - hdr, sizeof h);
    if (h.flags & kVnetNeedsCsum) b.flags |= kPartialChecksum;
  }
}

// A packet natd built in the buffer (a reply) is neither GSO nor partial:
// its virtio_net_hdr, written before it, must say nothing.
void TunQueue::ClearHeaderIfRebuilt(const PacketBuf& b) const {
  if (vnet_hdr_ && (b.flags & kRebuilt)) std::memset(b.data - kVnetHdrLen, 0, kVnetHdrLen);
}

// Nothing ready: waits up to 100 ms, then lets the caller look around
// (`stop`, and in run-to-completion mode its timers and tasks). True if the
// device became readable. With busy polling, it first looks without
// sleeping (poll with no timeout) until busy_poll_ns_ have passed.
bool TunQueue::WaitReadable(const std::atomic<bool>& stop) {
  if (stop.load(std::memory_order_relaxed)) return false;
  pollfd p{fd_, POLLIN, 0};
  if (busy_poll_ns_ > 0) {
    const int64_t until = MonotonicNs() + busy_poll_ns_;
    do {
      if (poll(&p, 1, 0) > 0) return true;
      if (stop.load(std::memory_order_relaxed)) return false;
    } while (MonotonicNs() < until);
  }
  return poll(&p, 1, 100) > 0;
}

size_t TunQueue::ReadEach(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) {
  size_t n = 0;
  const uint32_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  while (n < bufs.size()) {
    ssize_t r = read(fd_, bufs[n].data - hdr, capacity + hdr);
    if (r > ssize_t(hdr)) {
      Accept(bufs[n++], uint32_t(r));
      continue;
    }
    if (r >= 0 && r <= ssize_t(hdr)) {  // nothing but a header: not a packet
      counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) {
      if (n > 0 || !WaitReadable(stop)) break;
      continue;
    }
    counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
    break;
  }
  return n;
}

size_t TunQueue::ReadRing(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) {
  const uint32_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  iovec iov[Uring::kDepth];
  int32_t res[Uring::kDepth];
  for (;;) {
    // About twice what the last batch got: a lone packet costs one empty
    // read, a full batch asks for the whole batch.
    const size_t want = std::min<size_t>({bufs.size(), Uring::kDepth, std::max<size_t>(2, size_t(last_read_) * 2)});
    for (size_t i = 0; i < want; ++i) iov[i] = iovec{bufs[i].data - hdr, size_t(capacity) + hdr};
    read_ring_->ReadEach(fd_, std::span<const iovec>(iov, want), res);
    if (read_ring_->failed()) {  // read() still works
      std::fprintf(stderr, "natd: io_uring reads failed (%s); using read()\n", strerror(-res[0]));
      counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
      read_ring_.reset();
      return ReadEach(bufs, capacity, stop);
    }
    size_t n = 0;
    bool empty = false, failed = false;
    for (size_t i = 0; i < want; ++i) {
      const int32_t r = res[i];
      if (r > int32_t(hdr)) {
        Accept(bufs[i], uint32_t(r));
        // A read may find a packet after one found none: keep the packets
        // first, in the order read (the descriptors are free buffers).
        if (i != n) std::swap(bufs[i], bufs[n]);
        ++n;
      } else if (r == -EAGAIN) {
        empty = true;
      } else if (r != -EINTR) {  // a header alone, or an error
        counters_.read_errors.fetch_add(1, std::memory_order_relaxed);
        failed |= r < 0;
      }
    }
    last_read_ = uint32_t(n);
    if (n > 0 || failed || !empty) return n;
    if (!WaitReadable(stop)) return 0;
  }
}

size_t TunQueue::WriteEach(std::span<const PacketBuf> bufs) {
  size_t ok = 0;
  const uint32_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  for (const PacketBuf& b : bufs) {
    ClearHeaderIfRebuilt(b);
    ssize_t w;
    do {
      w = write(fd_, b.data - hdr, b.len + hdr);
    } while (w < 0 && errno == EINTR);
    if (w == ssize_t(b.len + hdr)) {
      ++ok;
    } else {
      counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return ok;
}

size_t TunQueue::WriteRing(std::span<const PacketBuf> bufs) {
  size_t ok = 0;
  const uint32_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  iovec iov[Uring::kDepth];
  int32_t res[Uring::kDepth];
  while (!bufs.empty()) {
    const size_t n = std::min<size_t>(bufs.size(), Uring::kDepth);
    for (size_t i = 0; i < n; ++i) {
      const PacketBuf& b = bufs[i];
      ClearHeaderIfRebuilt(b);
      iov[i] = iovec{b.data - hdr, size_t(b.len) + hdr};
    }
    write_ring_->WriteEach(fd_, std::span<const iovec>(iov, n), res);
    if (write_ring_->failed()) {  // write() still works
      std::fprintf(stderr, "natd: io_uring writes failed (%s); using write()\n", strerror(-res[0]));
      write_ring_.reset();
      return ok + WriteEach(bufs);
    }
    for (size_t i = 0; i < n; ++i) {
      if (res[i] == int32_t(iov[i].iov_len)) {
        ++ok;
      } else {
        counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
    bufs = bufs.subspan(n);
  }
  return ok;
}

absl::StatusOr<std::unique_ptr<TunDevice>> TunDevice::Open(const TunOptions& o) {
  const std::string& name = o.name;
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("device name '", name, "' must be 1..", IFNAMSIZ - 1, " chars"));
  }
  if (o.queues < 1 || o.queues > 64) return absl::InvalidArgumentError("queues must be 1..64");
  auto dev = std::unique_ptr<TunDevice>(new TunDevice());
  dev->name_ = name;
  dev->vnet_hdr_ = o.offload;
  for (uint32_t q = 0; q < o.queues; ++q) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return Errno("open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | (o.offload ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      absl::Status s = Errno(absl::StrCat("TUNSETIFF ", name, " (queue ", q, ")"));
      close(fd);
      return s;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
      absl::Status s = Errno("fcntl O_NONBLOCK");
      close(fd);
      return s;
    }
    // The device is not up yet, so nothing can arrive: the probe's read
    // finds nothing (tun/uring.h).
    std::unique_ptr<Uring> rings[2];
    if (o.io_uring) {
      for (auto& r : rings) {
        auto u = Uring::Create();
        if (!u.ok()) {
          dev->io_mode_ = absl::StrCat("read/write (", u.status().message(), ")");
          break;
        }
        r = *std::move(u);
      }
      if (rings[1] == nullptr) {
        rings[0].reset();
      } else if (auto at_once = rings[0]->ReadsCompleteAtOnce(fd); !at_once.ok() || !*at_once) {
        rings[0].reset();
        dev->io_mode_ = "io_uring writes, read() (this kernel's TUN does not take RWF_NOWAIT reads)";
      } else {
        dev->io_mode_ = "io_uring";
      }
    }
    dev->queues_.push_back(std::make_unique<TunQueue>(fd, o.offload, std::move(rings[0]), std::move(rings[1])));
    dev->queues_.back()->set_busy_poll_us(o.busy_poll_us);
  }
  if (o.offload) {
    // Ask for the most the kernel takes: UDP segmentation is newer (6.2).
    struct Try {
      unsigned flags;
      const char* names;
    };
    const Try tries[] = {
        {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6, "csum tso4 tso6 uso4 uso6"},
        {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, "csum tso4 tso6"},
        {TUN_F_CSUM, "csum"},
    };
    for (const Try& t : tries) {
      if (ioctl(dev->queues_[0]->fd(), TUNSETOFFLOAD, t.flags) == 0) {
        dev->offloads_ = t.names;
        break;
      }
    }
  }
  dev->max_packet_ = dev->offloads_.find("tso") != std::string::npos ? kMaxOffloadPacket : o.mtu;
  // No IPv6 link-local address on the TUN, so the kernel sends no MLD reports
  // or router solicitations into natd (best effort: IPv6 may be disabled).
  if (FILE* f = fopen(absl::StrCat("/proc/sys/net/ipv6/conf/", name, "/addr_gen_mode").c_str(), "w")) {
    fputs("1", f);
    fclose(f);
  }
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Errno("socket for interface ioctls");
  ifreq ifr{};
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_mtu = int(o.mtu);
  if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) {
    absl::Status s = Errno(absl::StrCat("set MTU ", o.mtu, " on ", name));
    close(sock);
    return s;
  }
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)) {
    absl::Status s = Errno(absl::StrCat("bring ", name, " up"));
    close(sock);
    return s;
  }
  close(sock);
  return dev;
}

std::vector<PacketIo*> TunDevice::queues() const {
  std::vector<PacketIo*> out;
  for (const auto& q : queues_) out.push_back(q.get());
  return out;
}

uint64_t TunDevice::read_errors() const {
  uint64_t n = 0;
  for (const auto& q : queues_) n += q->counters().read_errors.load();
  return n;
}

uint64_t TunDevice::write_errors() const {
  uint64_t n = 0;
  for (const auto& q : queues_) n += q->counters().write_errors.load();
  return n;
}

}  // namespace natd::tun
