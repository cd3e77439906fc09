// Internal: vectors whose storage asks the kernel for transparent huge
// pages. A columnar pass touches per-member arrays at random rows; with
// 4 KiB pages every touch of a large array misses the TLB, and on the
// virtual machines we measured a nested page walk costs more than the
// cache miss itself (docs/performance.md). 2 MiB pages keep a
// 1,000,000-member column in a handful of TLB entries.
#ifndef REFPAY_SRC_HUGE_PAGES_H_
#define REFPAY_SRC_HUGE_PAGES_H_

#include <sys/mman.h>

#include <cstddef>
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
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure keeps 4 KiB pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t /*n*/) { std::free(p); }

  template <typename U>
  bool operator==(const HugePageAllocator<U>& /*other*/) const {
    return true;
  }
};

template <typename T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace refpay::internal

#endif  // REFPAY_SRC_HUGE_PAGES_H_
