// The engine's internal id table (src/id_index.h), against a std::map
// reference: it is hand-rolled for latency, so it gets its own tests.
#include "id_index.h"

#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace refpay::internal {
namespace {

TEST(IdIndexTest, FindsWhatWasAddedAndNothingElse) {
  IdIndex index;
  EXPECT_FALSE(index.Find("a").has_value());
  EXPECT_EQ(index.Add(std::string("a")), 0);
  EXPECT_EQ(index.Add(index.KeyOf("b")), 1);
  EXPECT_EQ(index.Find("a"), 0);
  EXPECT_EQ(index.Find(index.KeyOf("b")), 1);
  EXPECT_FALSE(index.Contains("c"));
  EXPECT_EQ(index[1], "b");
  EXPECT_EQ(index.size(), 2);
}

TEST(IdIndexTest, TryAddRefusesDuplicatesAndChangesNothing) {
  IdIndex index;
  EXPECT_EQ(index.TryAdd("m1"), 0);
  EXPECT_EQ(index.TryAdd("m2"), 1);
  EXPECT_FALSE(index.TryAdd("m1").has_value());
  EXPECT_EQ(index.size(), 2);
  EXPECT_EQ(index.Find("m2"), 1);
}

TEST(IdIndexTest, RemoveLastTakesBackIndexedAndUnindexedIds) {
  IdIndex index;
  index.Add(std::string("a"));
  index.Add(std::string("b"));
  index.RemoveLast();  // indexed
  EXPECT_FALSE(index.Contains("b"));
  EXPECT_EQ(index.size(), 1);
  index.AddUnindexed("c");
  index.RemoveLast();  // never indexed
  EXPECT_FALSE(index.Contains("c"));
  EXPECT_EQ(index.Add(std::string("b")), 1);  // the slot is reusable
  EXPECT_EQ(index.Find("b"), 1);
  EXPECT_EQ(index.Find("a"), 0);
}

TEST(IdIndexTest, UnindexedIdsAreFoundOnTheNextLookup) {
  IdIndex index;
  for (int i = 0; i < 1000; ++i) index.AddUnindexed(absl::StrCat(i));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(index.Find(absl::StrCat(i)), i);
  EXPECT_FALSE(index.Contains("1000"));
}

// Random adds, removals and lookups through growth (and through Reserve),
// compared with a reference map after every step.
TEST(IdIndexTest, MatchesAReferenceUnderRandomOperations) {
  std::mt19937 random(7);
  for (const bool reserve : {false, true}) {
    IdIndex index;
    if (reserve) index.Reserve(5000);
    std::map<std::string, int32_t> reference;
    std::vector<std::string> order;  // ids in index order
    for (int step = 0; step < 40000; ++step) {
      // Ids from a small space, so that duplicates and re-adds happen.
      const std::string id = absl::StrCat("id", random() % 30000);
      const int action = static_cast<int>(random() % 10);
      if (action < 6) {
        const std::optional<int32_t> added = index.TryAdd(id);
        if (reference.contains(id)) {
          ASSERT_FALSE(added.has_value()) << id;
        } else {
          ASSERT_EQ(added, static_cast<int32_t>(order.size())) << id;
          reference.emplace(id, *added);
          order.push_back(id);
        }
      } else if (action < 7 && !order.empty()) {
        index.RemoveLast();
        reference.erase(order.back());
        order.pop_back();
      } else {
        const auto it = reference.find(id);
        const std::optional<int32_t> found = index.Find(id);
        if (it == reference.end()) {
          ASSERT_FALSE(found.has_value()) << id;
        } else {
          ASSERT_EQ(found, it->second) << id;
        }
      }
      ASSERT_EQ(index.size(), static_cast<int32_t>(order.size()));
    }
    for (size_t i = 0; i < order.size(); ++i) {
      ASSERT_EQ(index.Find(order[i]), static_cast<int32_t>(i));
      ASSERT_EQ(index[static_cast<int32_t>(i)], order[i]);
    }
  }
}

}  // namespace
}  // namespace refpay::internal
