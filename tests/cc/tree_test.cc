#include "refpay/tree.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace refpay {
namespace {

// The nearest leader by walking parents: what the cache must always equal.
MemberIndex NaiveNearestLeader(const MemberTree& tree, MemberIndex m) {
  for (MemberIndex a = tree.Parent(m); a.valid(); a = tree.Parent(a)) {
    if (tree.IsLeader(a)) return a;
  }
  return MemberIndex::None();
}

TEST(MemberTreeTest, NearestLeaderFollowsRolesAndMoves) {
  MemberTree tree;
  const MemberIndex a = tree.Add(MemberIndex::None());
  const MemberIndex b = tree.Add(a);
  const MemberIndex c = tree.Add(b);
  const MemberIndex d = tree.Add(c);
  EXPECT_FALSE(tree.NearestLeaderAbove(d).valid());
  tree.SetLeader(a, true);
  EXPECT_EQ(tree.NearestLeaderAbove(d), a);
  tree.SetLeader(c, true);
  EXPECT_EQ(tree.NearestLeaderAbove(d), c);
  EXPECT_EQ(tree.NearestLeaderAbove(c), a);
  tree.SetLeader(c, false);
  EXPECT_EQ(tree.NearestLeaderAbove(d), a);
  const MemberIndex e = tree.Add(MemberIndex::None());
  tree.Move(c, e);
  EXPECT_FALSE(tree.NearestLeaderAbove(d).valid());
  EXPECT_EQ(tree.Parent(c), e);
  EXPECT_TRUE(tree.IsInSubtree(d, e));
  EXPECT_FALSE(tree.IsInSubtree(d, a));
  EXPECT_TRUE(tree.IsInSubtree(c, c));
}

TEST(MemberTreeTest, CacheMatchesAWalkUnderRandomChanges) {
  std::mt19937 random(42);
  MemberTree tree;
  for (int step = 0; step < 20000; ++step) {
    const int n = tree.size();
    const int action = n < 10 ? 0 : static_cast<int>(random() % 10);
    if (action < 5) {
      tree.Add(n == 0 || random() % 20 == 0 ? MemberIndex::None()
                                            : MemberIndex(static_cast<int32_t>(random() % n)));
    } else if (action < 8) {
      const MemberIndex m(static_cast<int32_t>(random() % n));
      tree.SetLeader(m, !tree.IsLeader(m));
    } else {
      const MemberIndex m(static_cast<int32_t>(random() % n));
      const MemberIndex p(static_cast<int32_t>(random() % n));
      if (!tree.IsInSubtree(p, m)) tree.Move(m, p);
    }
    if (step % 500 == 0 || step == 19999) {
      for (int32_t i = 0; i < tree.size(); ++i) {
        ASSERT_EQ(tree.NearestLeaderAbove(MemberIndex(i)), NaiveNearestLeader(tree, MemberIndex(i)))
            << "member " << i << " at step " << step;
      }
    }
  }
}

}  // namespace
}  // namespace refpay
