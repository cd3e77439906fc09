#include "refpay/tree.h"

#include <utility>
#include <vector>

namespace refpay {

void MemberTree::Reserve(int32_t members) {
  for (auto* column : {&parent_, &first_child_, &next_sibling_, &prev_sibling_, &nearest_leader_}) {
    column->reserve(members);
  }
  is_leader_.reserve(members);
}

MemberIndex MemberTree::Add(MemberIndex parent) {
  const int32_t m = size();
  parent_.push_back(parent.value());
  first_child_.push_back(-1);
  next_sibling_.push_back(-1);
  prev_sibling_.push_back(-1);
  is_leader_.push_back(0);
  nearest_leader_.push_back(-1);
  if (parent.valid()) {
    const int32_t p = parent.value();
    next_sibling_[m] = first_child_[p];
    if (first_child_[p] >= 0) prev_sibling_[first_child_[p]] = m;
    first_child_[p] = m;
    nearest_leader_[m] = is_leader_[p] ? p : nearest_leader_[p];
  }
  return MemberIndex(m);
}

void MemberTree::Move(MemberIndex member, MemberIndex parent) {
  const int32_t m = member.value();
  // Unlink from the old parent's child list.
  if (prev_sibling_[m] >= 0) {
    next_sibling_[prev_sibling_[m]] = next_sibling_[m];
  } else if (parent_[m] >= 0) {
    first_child_[parent_[m]] = next_sibling_[m];
  }
  if (next_sibling_[m] >= 0) prev_sibling_[next_sibling_[m]] = prev_sibling_[m];
  prev_sibling_[m] = -1;
  next_sibling_[m] = -1;
  // Link under the new parent.
  parent_[m] = parent.value();
  int32_t nearest = -1;
  if (parent.valid()) {
    const int32_t p = parent.value();
    next_sibling_[m] = first_child_[p];
    if (first_child_[p] >= 0) prev_sibling_[first_child_[p]] = m;
    first_child_[p] = m;
    nearest = is_leader_[p] ? p : nearest_leader_[p];
  }
  nearest_leader_[m] = nearest;
  if (!is_leader_[m]) RepairBelow(member, nearest);
}

void MemberTree::SetLeader(MemberIndex member, bool is_leader) {
  const int32_t m = member.value();
  if ((is_leader_[m] != 0) == is_leader) return;
  is_leader_[m] = is_leader ? 1 : 0;
  RepairBelow(member, is_leader ? m : nearest_leader_[m]);
}

void MemberTree::RepairBelow(MemberIndex member, int32_t leader_for_descendants) {
  stack_.clear();
  for (int32_t c = first_child_[member.value()]; c >= 0; c = next_sibling_[c]) stack_.push_back(c);
  while (!stack_.empty()) {
    const int32_t node = stack_.back();
    stack_.pop_back();
    nearest_leader_[node] = leader_for_descendants;
    if (is_leader_[node]) continue;  // its descendants see it first
    for (int32_t c = first_child_[node]; c >= 0; c = next_sibling_[c]) stack_.push_back(c);
  }
}

bool MemberTree::FromParents(const std::vector<int32_t>& parents,
                             const std::vector<uint8_t>& leaders, MemberTree* tree) {
  const auto n = static_cast<int32_t>(parents.size());
  if (leaders.size() != parents.size()) return false;
  MemberTree built;
  built.parent_ = parents;
  built.first_child_.assign(n, -1);
  built.next_sibling_.assign(n, -1);
  built.prev_sibling_.assign(n, -1);
  built.nearest_leader_.assign(n, -1);
  built.is_leader_.resize(n);
  for (int32_t m = n - 1; m >= 0; --m) {
    const int32_t p = parents[m];
    if (p < -1 || p >= n || p == m) return false;
    built.is_leader_[m] = leaders[m] != 0 ? 1 : 0;
    if (p < 0) continue;
    built.next_sibling_[m] = built.first_child_[p];
    if (built.first_child_[p] >= 0) built.prev_sibling_[built.first_child_[p]] = m;
    built.first_child_[p] = m;
  }
  // Fill the nearest-leader cache top-down from the roots; a member never
  // reached sits on a cycle.
  int32_t reached = 0;
  std::vector<int32_t> stack;
  for (int32_t root = 0; root < n; ++root) {
    if (parents[root] >= 0) continue;
    stack.push_back(root);
    while (!stack.empty()) {
      const int32_t node = stack.back();
      stack.pop_back();
      ++reached;
      for (int32_t c = built.first_child_[node]; c >= 0; c = built.next_sibling_[c]) {
        built.nearest_leader_[c] = built.is_leader_[node] ? node : built.nearest_leader_[node];
        stack.push_back(c);
      }
    }
  }
  if (reached != n) return false;
  *tree = std::move(built);
  return true;
}

bool MemberTree::IsInSubtree(MemberIndex node, MemberIndex root) const {
  for (int32_t m = node.value(); m >= 0; m = parent_[m]) {
    if (m == root.value()) return true;
  }
  return false;
}

}  // namespace refpay
