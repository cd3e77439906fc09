#include "huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace refpay::internal {
namespace {

// How many pages of [begin, end) are resident, by mincore(2).
size_t ResidentPages(const void* begin, const void* end) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(begin) & ~(page - 1);
  const uintptr_t last = reinterpret_cast<uintptr_t>(end);
  std::vector<unsigned char> resident((last - first + page - 1) / page);
  EXPECT_EQ(mincore(reinterpret_cast<void*>(first), last - first, resident.data()), 0);
  size_t count = 0;
  for (unsigned char r : resident) count += r & 1;
  return count;
}

TEST(HugePagesTest, LargeArraysAreMappedOnHugePageBoundaries) {
  HugePageVector<int64_t> column;
  column.reserve(3 << 20);  // 24 MiB: mmap'd, not malloc'd
  EXPECT_EQ(reinterpret_cast<uintptr_t>(column.data()) % HugePageAllocator<int64_t>::kHugePage, 0u);
}

TEST(HugePagesTest, PopulateCapacityFaultsInTheSpareCapacityAndKeepsTheElements) {
  for (size_t capacity : {size_t{1000}, size_t{3} << 20}) {  // malloc'd, then mmap'd
    HugePageVector<int64_t> column = {7, 8, 9};
    column.reserve(capacity);
    const int64_t* end = column.data() + column.capacity();
    if (!PopulateCapacity(column)) GTEST_SKIP() << "this kernel cannot populate (Linux < 5.14)";
    const size_t pages = (column.capacity() * sizeof(int64_t) + sysconf(_SC_PAGESIZE) - 1) /
                         static_cast<size_t>(sysconf(_SC_PAGESIZE));
    EXPECT_GE(ResidentPages(column.data(), end), pages) << capacity;
    EXPECT_EQ(column, (HugePageVector<int64_t>{7, 8, 9}));
  }
}

TEST(HugePagesTest, PopulateCapacityOfAFullColumnDoesNothing) {
  std::vector<int32_t> column = {1, 2};
  column.shrink_to_fit();
  EXPECT_TRUE(PopulateCapacity(column));
  EXPECT_EQ(column, (std::vector<int32_t>{1, 2}));
}

}  // namespace
}  // namespace refpay::internal
