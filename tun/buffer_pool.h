// BufferPool: every packet buffer natd will ever use, allocated at start
// (each with kHeadroom bytes in front of it for a device header).
// Buffers travel between threads by index (PacketBuf), and come back through
// a lock-free free list, so nothing is allocated per packet. The pool is the
// bound on everything in flight: queues can never hold more packets than the
// pool has buffers.
#ifndef NATD_TUN_BUFFER_POOL_H_
#define NATD_TUN_BUFFER_POOL_H_

#include <cstdint>
#include <memory>

#include "concurrentqueue/concurrentqueue.h"
#include "tun/packet_io.h"

namespace natd::tun {

class BufferPool {
 public:
  BufferPool(uint32_t count, uint32_t buffer_size, bool prefault = false);

  // Takes up to n free buffers; returns how many.
  size_t Acquire(moodycamel::ConsumerToken& token, PacketBuf* out, size_t n);
  // Gives buffers back.
  void Release(moodycamel::ProducerToken& token, const PacketBuf* bufs, size_t n);
  // For threads that release rarely (no token of their own).
  void Release(const PacketBuf* bufs, size_t n);

  moodycamel::ConsumerToken MakeConsumerToken() { return moodycamel::ConsumerToken(free_); }
  moodycamel::ProducerToken MakeProducerToken() { return moodycamel::ProducerToken(free_); }

  // Buffer `id` as Acquire hands it out (for a thread that keeps the
  // buffers it freed instead of giving them back: see Pipeline's ReadStash).
  PacketBuf Fresh(uint32_t id) const {
    return PacketBuf{storage_.get() + size_t(id) * (kHeadroom + buffer_size_) + kHeadroom, 0, id, 0, 0};
  }
  uint32_t count() const { return count_; }
  uint32_t buffer_size() const { return buffer_size_; }
  // Exact once no thread is using the pool.
  size_t free_approx() const { return free_.size_approx(); }

 private:
  const uint32_t count_;
  const uint32_t buffer_size_;
  std::unique_ptr<uint8_t[]> storage_;
  moodycamel::ConcurrentQueue<uint32_t> free_;
};

}  // namespace natd::tun

#endif  // NATD_TUN_BUFFER_POOL_H_
