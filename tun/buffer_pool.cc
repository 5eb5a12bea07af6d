#include "tun/buffer_pool.h"

#include <cstring>
#include <vector>

namespace natd::tun {

BufferPool::BufferPool(uint32_t count, uint32_t buffer_size, bool prefault)
    : count_(count),
      buffer_size_(buffer_size),
      storage_(new uint8_t[size_t(count) * (kHeadroom + buffer_size)]),
      // Room for every buffer in the initial blocks, for up to 64 explicit producers.
      free_(size_t(count) * 2, 64, 16) {
  std::vector<uint32_t> ids(count);
  for (uint32_t i = 0; i < count; ++i) ids[i] = i;
  free_.enqueue_bulk(ids.data(), ids.size());
  if (prefault) std::memset(storage_.get(), 0, size_t(count) * (kHeadroom + buffer_size));
}

size_t BufferPool::Acquire(moodycamel::ConsumerToken& token, PacketBuf* out, size_t n) {
  uint32_t ids[256];
  size_t total = 0;
  while (total < n) {
    size_t want = n - total < 256 ? n - total : 256;
    size_t got = free_.try_dequeue_bulk(token, ids, want);
    for (size_t i = 0; i < got; ++i) {
      out[total + i] = Fresh(ids[i]);
    }
    total += got;
    if (got < want) break;
  }
  return total;
}

void BufferPool::Release(moodycamel::ProducerToken& token, const PacketBuf* bufs, size_t n) {
  uint32_t ids[256];
  while (n > 0) {
    size_t k = n < 256 ? n : 256;
    for (size_t i = 0; i < k; ++i) ids[i] = bufs[i].id;
    // Never fails for want of memory: the free list was sized for every buffer.
    free_.enqueue_bulk(token, ids, k);
    bufs += k;
    n -= k;
  }
}

void BufferPool::Release(const PacketBuf* bufs, size_t n) {
  for (size_t i = 0; i < n; ++i) free_.enqueue(bufs[i].id);
}

}  // namespace natd::tun
