// FakeIo: an in-memory PacketIo for tests. Inject() queues packets that
// ReadBatch returns; WriteBatch records what was written. Thread-safe.
#ifndef NATD_TUN_FAKE_IO_H_
#define NATD_TUN_FAKE_IO_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <vector>

#include "tun/packet_io.h"

namespace natd::tun {

class FakeIo final : public PacketIo {
 public:
  using Bytes = std::vector<uint8_t>;

  void Inject(Bytes packet, uint8_t flags = 0);
  std::vector<Bytes> TakeWritten();
  size_t written_count() const;
  size_t pending() const;
  // How many different buffers (by pool id) reads have filled.
  size_t distinct_buffers_read() const;
  // Makes WriteBatch refuse every packet (to test write failures).
  void FailWrites(bool fail);

  size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t capacity, const std::atomic<bool>& stop) override;
  size_t WriteBatch(std::span<const PacketBuf> bufs) override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Bytes, uint8_t>> input_;
  std::vector<Bytes> written_;
  std::set<uint32_t> ids_read_;
  bool fail_writes_ = false;
};

}  // namespace natd::tun

#endif  // NATD_TUN_FAKE_IO_H_
