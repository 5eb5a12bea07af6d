// TableAllocator: the allocator of the mapping tables' hash maps, which are
// reserve()d for the configured capacity at start and never grow after.
//
// Two things it does that std::allocator does not:
// - Prefault (when asked, natd's `--prefault`, on by default): it writes one
//   byte in every page it hands out. A hash map's slots are left
//   uninitialised by reserve(), so without this each page of slots becomes
//   resident the first time a session lands in it: natd's resident memory
//   would creep up for as long as new sessions land on untouched pages
//   (bench/soak.sh saw it), and those first touches are page faults on the
//   packet path. With it, natd's resident memory is what its limits imply
//   from the first second and stays there.
// - Huge pages: an array of 16 MiB or more (a table of about half a million
//   sessions and up) is allocated 2 MiB-aligned and offered to the kernel as
//   transparent huge pages (madvise MADV_HUGEPAGE, which Linux's default THP
//   mode "madvise" honours; elsewhere it is an ordinary allocation). A packet
//   reads a few random slots of arrays of tens of megabytes, and with 4 KiB
//   pages each read also misses the TLB. Smaller arrays are std::allocator's;
//   from 4 MiB (a mapping array of 64512, or a hash set of a million
//   sessions, whose slots are 4 bytes) the 2 MiB-aligned part of one is
//   offered as huge pages too, which costs no memory beyond what is asked.
//
// Allocators compare equal whatever their prefault flag: memory from one is
// freed by any other the same way. The flag travels with a moved-into map
// (propagate_on_container_move_assignment), so a map built with it keeps it.
#ifndef NATD_NAT_TABLE_ALLOC_H_
#define NATD_NAT_TABLE_ALLOC_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

namespace natd {

inline constexpr size_t kHugePage = size_t(2) << 20;
inline constexpr size_t kHugePagesFrom = size_t(16) << 20;
inline constexpr size_t kHugePagesInsideFrom = size_t(4) << 20;

// Offers the kernel huge pages for the 2 MiB-aligned part of [p, p + bytes)
// (a hint: failing is harmless).
inline void AdviseHugePagesInside(void* p, size_t bytes) {
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHugePage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// Makes `bytes` at `p` resident by writing each page once (the contents are
// uninitialised storage, so what is written does not matter).
inline void PrefaultPages(void* p, size_t bytes) {
  constexpr size_t kPage = 4096;
  volatile char* c = static_cast<volatile char*>(p);
  for (size_t off = 0; off < bytes; off += kPage) c[off] = 0;
  if (bytes) c[bytes - 1] = 0;
}

template <typename T>
class TableAllocator {
 public:
  using value_type = T;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  TableAllocator() = default;
  explicit TableAllocator(bool prefault) : prefault_(prefault) {}
  template <typename U>
  TableAllocator(const TableAllocator<U>& o) : prefault_(o.prefault()) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    if (n > size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    const size_t bytes = n * sizeof(T);
    T* p;
    if (bytes < kHugePagesFrom) {
      p = std::allocator<T>().allocate(n);
      if (bytes >= kHugePagesInsideFrom) AdviseHugePagesInside(p, bytes);
    } else {
      // Through malloc (aligned), so that the heap's statistics count it.
      void* v = std::aligned_alloc(kHugePage, Rounded(bytes));
      if (v == nullptr) throw std::bad_alloc();
      madvise(v, Rounded(bytes), MADV_HUGEPAGE);  // a hint: failing is harmless
      p = static_cast<T*>(v);
    }
    if (prefault_) PrefaultPages(p, bytes);
    return p;
  }

  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kHugePagesFrom) {
      std::allocator<T>().deallocate(p, n);
    } else {
      std::free(p);
    }
  }

  bool prefault() const { return prefault_; }

  template <typename U>
  friend bool operator==(const TableAllocator&, const TableAllocator<U>&) {
    return true;
  }

 private:
  static size_t Rounded(size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }

  bool prefault_ = false;
};

}  // namespace natd

#endif  // NATD_NAT_TABLE_ALLOC_H_
