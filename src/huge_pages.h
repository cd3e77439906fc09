// Internal: vectors whose storage asks the kernel for transparent huge
// pages. A columnar pass touches per-member arrays at random rows; with
// 4 KiB pages every touch of a large array misses the TLB, and on the
// virtual machines we measured a nested page walk costs more than the
// cache miss itself (docs/performance.md). 2 MiB pages keep a
// 1,000,000-member column in a handful of TLB entries.
#ifndef REFPAY_SRC_HUGE_PAGES_H_
#define REFPAY_SRC_HUGE_PAGES_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace refpay::internal {

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;

  HugePageAllocator() = default;
  template <typename U>
  explicit HugePageAllocator(const HugePageAllocator<U>& /*other*/) {}

  T* allocate(size_t n) {
    if (n > (SIZE_MAX - 2 * kHugePage) / sizeof(T)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) {
      // Small arrays fit the TLB anyway: keep malloc's packing (aligned
      // for a type that asks for more, such as a cache-line bucket).
      void* p = alignof(T) <= alignof(std::max_align_t)
                    ? std::malloc(bytes == 0 ? 1 : bytes)
                    : std::aligned_alloc(alignof(T), bytes == 0 ? alignof(T) : bytes);
      if (p == nullptr) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    // Straight from the kernel, not from malloc: the advice then covers
    // this array alone (madvise on a heap region would make later small
    // allocations there fault 2 MiB at a time), and freeing it unmaps it.
    const size_t rounded = Rounded(bytes);
    void* p = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    // Trim to a 2 MiB boundary, so that every page of the array can be huge.
    const auto start = reinterpret_cast<uintptr_t>(p);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
    if (aligned > start) munmap(p, aligned - start);
    // Offsets from the mapping, not integers cast back to pointers.
    char* array = static_cast<char*>(p) + (aligned - start);
    if (const size_t tail = kHugePage - (aligned - start); tail > 0) munmap(array + rounded, tail);
    madvise(array, rounded, MADV_HUGEPAGE);  // advice only: failure keeps 4 KiB pages
    return static_cast<T*>(static_cast<void*>(array));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) {
      std::free(p);
    } else {
      munmap(p, Rounded(bytes));
    }
  }

  static size_t Rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

  template <typename U>
  bool operator==(const HugePageAllocator<U>& /*other*/) const {
    return true;
  }
};

template <typename T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

// Faults in the pages of `column`'s spare capacity now, so that the appends
// which later fill it take no page fault on the event path. Whole pages
// are populated, those the capacity shares with live elements included:
// MADV_POPULATE_WRITE maps them writable without changing a byte. Advice
// only: returns false (and the pages fault on first touch, as before) on a
// kernel older than 5.14 or one that cannot populate them.
template <typename T, typename A>
bool PopulateCapacity(const std::vector<T, A>& column) {
  if (column.capacity() == column.size()) return true;
#ifdef MADV_POPULATE_WRITE
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // Whole pages from the one holding the first spare element to the one
  // holding the last; the start is an offset back from that element, not
  // an integer cast to a pointer.
  auto* spare = reinterpret_cast<char*>(const_cast<T*>(column.data() + column.size()));
  const auto spare_at = reinterpret_cast<uintptr_t>(spare);
  const uintptr_t begin_at = spare_at & ~(page - 1);
  const auto end = reinterpret_cast<uintptr_t>(column.data() + column.capacity());
  const uintptr_t rounded_end = (end + page - 1) & ~(page - 1);
  return madvise(spare - (spare_at - begin_at), rounded_end - begin_at, MADV_POPULATE_WRITE) == 0;
#else
  return false;
#endif
}

}  // namespace refpay::internal

#endif  // REFPAY_SRC_HUGE_PAGES_H_
