// BufferPool: every buffer distinct and whole, every one handed out once.
#include "tun/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace natd::tun {
namespace {

TEST(BufferPoolTest, HandsOutEveryBufferOnceAndTheyDoNotOverlap) {
  constexpr uint32_t kCount = 300, kSize = 1000;  // buffers that straddle pages and cache lines
  BufferPool pool(kCount, kSize, /*prefault=*/true);
  auto in = pool.MakeConsumerToken();
  std::vector<PacketBuf> bufs(kCount + 10);
  ASSERT_EQ(pool.Acquire(in, bufs.data(), bufs.size()), kCount);
  std::set<uint32_t> ids;
  std::set<const uint8_t*> starts;
  for (uint32_t i = 0; i < kCount; ++i) {
    ids.insert(bufs[i].id);
    starts.insert(bufs[i].data);
    // Headroom and the whole buffer are writable (ASan would catch a short allocation).
    std::memset(bufs[i].data - kHeadroom, int(i), kHeadroom + kSize);
  }
  EXPECT_EQ(ids.size(), kCount);
  EXPECT_EQ(starts.size(), kCount);
  // Each buffer kept its own bytes: none overlaps the next.
  for (uint32_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(bufs[i].data[0], uint8_t(i));
    EXPECT_EQ(bufs[i].data[kSize - 1], uint8_t(i));
    EXPECT_EQ(bufs[i].data[-int(kHeadroom)], uint8_t(i));
  }
  auto out = pool.MakeProducerToken();
  pool.Release(out, bufs.data(), kCount);
  EXPECT_EQ(pool.free_approx(), kCount);
}

}  // namespace
}  // namespace natd::tun
