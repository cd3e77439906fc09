// refpay/tree.h — the referral tree (推荐关系) on dense member indices.
//
// Members are numbered 0, 1, 2, … in join order; the tree keeps parents and
// children in flat arrays (children as an intrusive sibling list, so a
// rebind is O(1)) and caches every member's grandparent and nearest leader
// ancestor beside its parent, so an order finds its first two levels and its
// team leader in one cache line instead of walking a chain. The caches are
// repaired locally when a leader is set or unset or a subtree moves.
//
//   refpay::MemberTree tree;
//   refpay::MemberIndex a = tree.Add(refpay::MemberIndex::None());
//   refpay::MemberIndex b = tree.Add(a);
//   tree.SetLeader(a, true);
//   tree.NearestLeaderAbove(b);  // == a
//   tree.Grandparent(tree.Add(b));  // == a
#ifndef REFPAY_TREE_H_
#define REFPAY_TREE_H_

#include <compare>
#include <cstdint>
#include <vector>

namespace refpay {

// refpay::DenseIndex is a strong 32-bit index: a MemberIndex cannot be
// passed where an OrderIndex is expected.
template <typename Tag>
class DenseIndex {
 public:
  constexpr DenseIndex() = default;
  constexpr explicit DenseIndex(int32_t value) : value_(value) {}
  static constexpr DenseIndex None() { return DenseIndex(); }
  constexpr int32_t value() const { return value_; }
  constexpr bool valid() const { return value_ >= 0; }
  friend constexpr auto operator<=>(DenseIndex, DenseIndex) = default;

 private:
  int32_t value_ = -1;
};

using MemberIndex = DenseIndex<struct MemberTag>;
using OrderIndex = DenseIndex<struct OrderTag>;

// refpay::MemberTree is a forest of members with a nearest-leader cache.
class MemberTree {
 public:
  // refpay::MemberTree::Add() appends a member under `parent` (None for a
  // root) and returns its index.
  MemberIndex Add(MemberIndex parent);

  // refpay::MemberTree::Move() re-parents `member` (with its subtree) under
  // `parent`. The caller has checked IsInSubtree() to avoid cycles.
  void Move(MemberIndex member, MemberIndex parent);

  // refpay::MemberTree::SetLeader() marks or unmarks a leader and repairs
  // the nearest-leader cache of the subtree it heads.
  void SetLeader(MemberIndex member, bool is_leader);

  // refpay::MemberTree::IsInSubtree() says whether `node` is `root` or one
  // of its descendants (walks up from `node`).
  bool IsInSubtree(MemberIndex node, MemberIndex root) const;

  // Parent(), Grandparent(), NearestLeaderAbove() and IsLeader() read one
  // 16-byte node: asking all four of one member costs one cache miss.
  MemberIndex Parent(MemberIndex m) const { return MemberIndex(nodes_[m.value()].parent); }
  // The parent's parent, or None.
  MemberIndex Grandparent(MemberIndex m) const {
    return MemberIndex(nodes_[m.value()].grandparent);
  }
  bool IsLeader(MemberIndex m) const { return nodes_[m.value()].is_leader != 0; }

  // refpay::MemberTree::NearestLeaderAbove() is the closest strict ancestor
  // that is a leader, or None.
  MemberIndex NearestLeaderAbove(MemberIndex m) const {
    return MemberIndex(nodes_[m.value()].nearest_leader);
  }

  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }

  // refpay::MemberTree::Touch() loads the node of `m` and discards it, so
  // that a caller who knows which members come next (a batch) overlaps
  // their cache and TLB misses. A load, not a prefetch instruction: on the
  // KVM machines we measured, prefetches that miss the TLB were dropped
  // (docs/performance.md).
  void Touch(MemberIndex m) const {
    const int32_t loaded = nodes_[m.value()].parent;
    asm volatile("" : : "r"(loaded));
  }

  // refpay::MemberTree::FromParents() builds a whole tree at once from each
  // member's parent (-1 for a root) and leader mark, in O(n). Fails (returns
  // false) if a parent is out of range or the parents form a cycle.
  static bool FromParents(const std::vector<int32_t>& parents, const std::vector<uint8_t>& leaders,
                          MemberTree* tree);

  // refpay::MemberTree::Reserve() pre-sizes the arrays for `members` and
  // faults their pages in, so that the Add()s filling them neither copy an
  // array nor take a page fault.
  void Reserve(int32_t members);

 private:
  // What an order reads of a member, aligned so that it never straddles
  // two cache lines.
  struct alignas(16) Node {
    int32_t parent = -1;
    int32_t grandparent = -1;
    int32_t nearest_leader = -1;
    int32_t is_leader = 0;
  };

  // Puts unlinked member `m` first among `parent`'s children (None: a
  // root) and fills its node from the parent's.
  void LinkUnder(int32_t m, MemberIndex parent);

  // Sets the cached nearest leader of `member`'s descendants down to (and
  // including) the next leaders, which shield their own subtrees.
  void RepairBelow(MemberIndex member, int32_t leader_for_descendants);

  std::vector<Node> nodes_;
  std::vector<int32_t> first_child_;
  std::vector<int32_t> next_sibling_;
  std::vector<int32_t> prev_sibling_;
  std::vector<int32_t> stack_;  // scratch for RepairBelow, kept to avoid allocation
};

}  // namespace refpay

#endif  // REFPAY_TREE_H_
