#include "tun/fake_io.h"

#include <chrono>
#include <cstring>
#include <utility>

namespace natd::tun {

void FakeIo::Inject(Bytes packet, uint8_t flags) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    input_.emplace_back(std::move(packet), flags);
  }
  cv_.notify_all();
}

std::vector<FakeIo::Bytes> FakeIo::TakeWritten() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(written_, {});
}

size_t FakeIo::written_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_.size();
}

size_t FakeIo::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return input_.size();
}

void FakeIo::FailWrites(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_writes_ = fail;
}

size_t FakeIo::ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) {
  std::unique_lock<std::mutex> lock(mu_);
  // Like a TUN queue: wait up to 100 ms for the first packet.
  for (int i = 0; i < 5 && input_.empty(); ++i) {
    if (stop.load()) return 0;
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  if (input_.empty()) return 0;
  size_t n = 0;
  while (n < bufs.size() && !input_.empty()) {
    Bytes& p = input_.front().first;
    // Like a TUN read into a short buffer: the excess is cut off.
    uint32_t len = p.size() < capacity ? uint32_t(p.size()) : capacity;
    // Like a device with a per-packet header, use the headroom too.
    std::memset(bufs[n].data - kHeadroom, 0xEE, kHeadroom);
    std::memcpy(bufs[n].data, p.data(), len);
    bufs[n].len = len;
    bufs[n].flags = input_.front().second;
    ids_read_.insert(bufs[n].id);
    input_.pop_front();
    ++n;
  }
  return n;
}

size_t FakeIo::distinct_buffers_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ids_read_.size();
}

size_t FakeIo::WriteBatch(std::span<const PacketBuf> bufs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fail_writes_) return 0;
  for (const PacketBuf& b : bufs) written_.emplace_back(b.data, b.data + b.len);
  return bufs.size();
}

}  // namespace natd::tun
