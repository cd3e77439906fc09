#include "refpay/tree.h"

#include <utility>
#include <vector>

#include "huge_pages.h"

namespace refpay {

void MemberTree::Reserve(int32_t members) {
  nodes_.reserve(members);
  internal::PopulateCapacity(nodes_);
  for (auto* column : {&first_child_, &next_sibling_, &prev_sibling_}) {
    column->reserve(members);
    internal::PopulateCapacity(*column);
  }
}

MemberIndex MemberTree::Add(MemberIndex parent) {
  const int32_t m = size();
  nodes_.push_back(Node{});
  first_child_.push_back(-1);
  next_sibling_.push_back(-1);
  prev_sibling_.push_back(-1);
  LinkUnder(m, parent);
  return MemberIndex(m);
}

void MemberTree::LinkUnder(int32_t m, MemberIndex parent) {
  Node& node = nodes_[m];
  node.parent = parent.value();
  node.grandparent = -1;
  node.nearest_leader = -1;
  if (!parent.valid()) return;
  const int32_t p = parent.value();
  next_sibling_[m] = first_child_[p];
  if (first_child_[p] >= 0) prev_sibling_[first_child_[p]] = m;
  first_child_[p] = m;
  node.grandparent = nodes_[p].parent;
  node.nearest_leader = nodes_[p].is_leader ? p : nodes_[p].nearest_leader;
}

void MemberTree::Move(MemberIndex member, MemberIndex parent) {
  const int32_t m = member.value();
  // Unlink from the old parent's child list.
  if (prev_sibling_[m] >= 0) {
    next_sibling_[prev_sibling_[m]] = next_sibling_[m];
  } else if (nodes_[m].parent >= 0) {
    first_child_[nodes_[m].parent] = next_sibling_[m];
  }
  if (next_sibling_[m] >= 0) prev_sibling_[next_sibling_[m]] = prev_sibling_[m];
  prev_sibling_[m] = -1;
  next_sibling_[m] = -1;
  LinkUnder(m, parent);
  const Node& node = nodes_[m];
  // The children's grandparent is the new parent; deeper descendants keep theirs.
  for (int32_t c = first_child_[m]; c >= 0; c = next_sibling_[c])
    nodes_[c].grandparent = node.parent;
  if (!node.is_leader) RepairBelow(member, node.nearest_leader);
}

void MemberTree::SetLeader(MemberIndex member, bool is_leader) {
  const int32_t m = member.value();
  if ((nodes_[m].is_leader != 0) == is_leader) return;
  nodes_[m].is_leader = is_leader ? 1 : 0;
  RepairBelow(member, is_leader ? m : nodes_[m].nearest_leader);
}

void MemberTree::RepairBelow(MemberIndex member, int32_t leader_for_descendants) {
  stack_.clear();
  for (int32_t c = first_child_[member.value()]; c >= 0; c = next_sibling_[c]) stack_.push_back(c);
  while (!stack_.empty()) {
    const int32_t node = stack_.back();
    stack_.pop_back();
    nodes_[node].nearest_leader = leader_for_descendants;
    if (nodes_[node].is_leader) continue;  // its descendants see it first
    for (int32_t c = first_child_[node]; c >= 0; c = next_sibling_[c]) stack_.push_back(c);
  }
}

bool MemberTree::FromParents(const std::vector<int32_t>& parents,
                             const std::vector<uint8_t>& leaders, MemberTree* tree) {
  const auto n = static_cast<int32_t>(parents.size());
  if (leaders.size() != parents.size()) return false;
  MemberTree built;
  built.nodes_.resize(n);
  built.first_child_.assign(n, -1);
  built.next_sibling_.assign(n, -1);
  built.prev_sibling_.assign(n, -1);
  for (int32_t m = n - 1; m >= 0; --m) {
    const int32_t p = parents[m];
    if (p < -1 || p >= n || p == m) return false;
    built.nodes_[m].parent = p;
    built.nodes_[m].is_leader = leaders[m] != 0 ? 1 : 0;
    if (p < 0) continue;
    built.nodes_[m].grandparent = parents[p];
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
        const Node& parent = built.nodes_[node];
        built.nodes_[c].nearest_leader = parent.is_leader ? node : parent.nearest_leader;
        stack.push_back(c);
      }
    }
  }
  if (reached != n) return false;
  *tree = std::move(built);
  return true;
}

bool MemberTree::IsInSubtree(MemberIndex node, MemberIndex root) const {
  for (int32_t m = node.value(); m >= 0; m = nodes_[m].parent) {
    if (m == root.value()) return true;
  }
  return false;
}

}  // namespace refpay
