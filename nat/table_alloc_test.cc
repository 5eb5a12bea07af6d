#include "nat/table_alloc.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace natd {
namespace {

// Pages of [p, p + bytes) that are resident, by mincore(2), the kernel's own
// account (an independent check of what the allocator did).
size_t ResidentPages(const void* p, size_t bytes, size_t* total) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = uintptr_t(p) & ~(page - 1);
  const uintptr_t end = (uintptr_t(p) + bytes + page - 1) & ~(page - 1);
  std::vector<unsigned char> vec((end - begin) / page);
  EXPECT_EQ(mincore(reinterpret_cast<void*>(begin), end - begin, vec.data()), 0);
  *total = vec.size();
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

TEST(TableAllocator, PrefaultMakesEveryPageResident) {
  // 1 MiB: std::allocator's path; 32 MiB: the huge-page path.
  for (size_t n : {size_t(1) << 20, size_t(32) << 20}) {
    TableAllocator<char> a(true);
    char* p = a.allocate(n);
    size_t total = 0;
    const size_t resident = ResidentPages(p, n, &total);
    EXPECT_GT(total, 0u);
    EXPECT_EQ(resident, total) << n << " bytes";
    a.deallocate(p, n);
  }
}

TEST(TableAllocator, WithoutPrefaultFreshPagesAreNotTouched) {
  // A fresh mapping of 32 MiB, never written: the kernel has not made it
  // resident (at most a few huge pages the allocator's bookkeeping touched).
  TableAllocator<char> a(false);
  const size_t n = size_t(32) << 20;
  char* p = a.allocate(n);
  size_t total = 0;
  const size_t resident = ResidentPages(p, n, &total);
  EXPECT_GT(total, 0u);
  EXPECT_LT(resident, total / 2);
  a.deallocate(p, n);
}

TEST(TableAllocator, FlagSurvivesRebindAndMoveAssignment) {
  using Map = absl::flat_hash_map<uint64_t, uint32_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                                  TableAllocator<std::pair<const uint64_t, uint32_t>>>;
  Map m;
  EXPECT_FALSE(m.get_allocator().prefault());
  m = Map(0, Map::hasher(), Map::key_equal(), Map::allocator_type(true));
  EXPECT_TRUE(m.get_allocator().prefault());
  m.reserve(1 << 16);
  for (uint64_t i = 0; i < 1000; ++i) m[i] = uint32_t(i);
  EXPECT_TRUE(m.get_allocator().prefault());
  EXPECT_EQ(m.size(), 1000u);
  EXPECT_EQ(m[999], 999u);
  TableAllocator<int> rebound(m.get_allocator());
  EXPECT_TRUE(rebound.prefault());
}

}  // namespace
}  // namespace natd
