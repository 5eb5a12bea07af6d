#include "tun/buffer_pool.h"

#include <sys/mman.h>

#include <cstring>
#include <new>
#include <vector>

namespace natd::tun {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

// The pool's bytes, rounded up to whole huge pages (the kernel can back
// only whole, aligned ones: an anonymous mapping this size is aligned by
// the kernel's THP placement, and its tail page would otherwise stay small).
size_t StorageBytes(uint32_t count, uint32_t buffer_size) {
  const size_t bytes = size_t(count) * (kHeadroom + buffer_size);
  return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

uint8_t* MapStorage(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

void BufferPool::Unmap::operator()(uint8_t* p) const { munmap(p, bytes); }

BufferPool::BufferPool(uint32_t count, uint32_t buffer_size, bool prefault)
    : count_(count),
      buffer_size_(buffer_size),
      storage_(MapStorage(StorageBytes(count, buffer_size)), Unmap{StorageBytes(count, buffer_size)}),
      // Room for every buffer in the initial blocks, for up to 64 explicit producers.
      free_(size_t(count) * 2, 64, 16) {
  // A hint: without THP (or with it "never") the pool has small pages.
  huge_pages_advised_ = madvise(storage_.get(), storage_.get_deleter().bytes, MADV_HUGEPAGE) == 0;
  std::vector<uint32_t> ids(count);
  for (uint32_t i = 0; i < count; ++i) ids[i] = i;
  free_.enqueue_bulk(ids.data(), ids.size());
  // After the advice, so that the first touch of each 2 MiB faults in a huge page.
  if (prefault) std::memset(storage_.get(), 0, storage_.get_deleter().bytes);
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
