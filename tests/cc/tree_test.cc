#include "refpay/tree.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace refpay {
namespace {

// The parent's parent by two lookups: what the grandparent cache must equal.
MemberIndex NaiveGrandparent(const MemberTree& tree, MemberIndex m) {
  const MemberIndex parent = tree.Parent(m);
  return parent.valid() ? tree.Parent(parent) : MemberIndex::None();
}

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

TEST(MemberTreeTest, GrandparentFollowsAddsAndMoves) {
  MemberTree tree;
  const MemberIndex a = tree.Add(MemberIndex::None());
  const MemberIndex b = tree.Add(a);
  const MemberIndex c = tree.Add(b);
  const MemberIndex d = tree.Add(c);
  EXPECT_FALSE(tree.Grandparent(a).valid());
  EXPECT_FALSE(tree.Grandparent(b).valid());
  EXPECT_EQ(tree.Grandparent(c), a);
  EXPECT_EQ(tree.Grandparent(d), b);
  // Moving c changes its own grandparent and its children's, not deeper ones.
  const MemberIndex e = tree.Add(MemberIndex::None());
  const MemberIndex f = tree.Add(e);
  const MemberIndex g = tree.Add(d);
  tree.Move(c, f);
  EXPECT_EQ(tree.Grandparent(c), e);
  EXPECT_EQ(tree.Grandparent(d), f);
  EXPECT_EQ(tree.Grandparent(g), c);
  tree.Move(c, MemberIndex::None());
  EXPECT_FALSE(tree.Grandparent(c).valid());
  EXPECT_FALSE(tree.Grandparent(d).valid());
}

TEST(MemberTreeTest, FromParentsFillsTheCaches) {
  // 0 <- 1 <- 2 <- 3, 0 <- 4, and a second root 5 <- 6; 1 and 5 lead.
  const std::vector<int32_t> parents = {-1, 0, 1, 2, 0, -1, 5};
  const std::vector<uint8_t> leaders = {0, 1, 0, 0, 0, 1, 0};
  MemberTree tree;
  ASSERT_TRUE(MemberTree::FromParents(parents, leaders, &tree));
  ASSERT_EQ(tree.size(), 7);
  for (int32_t i = 0; i < tree.size(); ++i) {
    const MemberIndex m(i);
    EXPECT_EQ(tree.Parent(m), MemberIndex(parents[i])) << i;
    EXPECT_EQ(tree.Grandparent(m), NaiveGrandparent(tree, m)) << i;
    EXPECT_EQ(tree.NearestLeaderAbove(m), NaiveNearestLeader(tree, m)) << i;
  }
  MemberTree cyclic;
  EXPECT_FALSE(MemberTree::FromParents({1, 0}, {0, 0}, &cyclic));
  EXPECT_FALSE(MemberTree::FromParents({5}, {0}, &cyclic));
}

TEST(MemberTreeTest, CachesMatchAWalkUnderRandomChanges) {
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
        ASSERT_EQ(tree.Grandparent(MemberIndex(i)), NaiveGrandparent(tree, MemberIndex(i)))
            << "member " << i << " at step " << step;
      }
    }
  }
}

}  // namespace
}  // namespace refpay
