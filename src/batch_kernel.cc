// SettleTotals and SettleLedger: per-member totals, and the ledger, of a
// batch by a columnar kernel where the policy keeps no state across orders,
// else by the engine.
//
// Why a kernel: the engine keeps every entry, its status and explanation,
// each order's rules for later refunds, and checks every id; a simulation
// sweep asks only "who earns what". Under a policy whose entries depend on
// nothing but the order, the buyer's ancestors and the static leader marks
// (levels, tiers, a nearest leader, order_total, hold_days), every order
// settles alone: one pass over the orders with the tree as flat arrays,
// adding to per-member sums and, for SettleLedger, writing ledger rows. The
// kernel runs only when it can prove that the engine would accept every row
// (ids distinct and well-formed, inviters and buyers joined first, amounts
// and refunds in range, as_of after the last event); otherwise the engine
// settles the batch and its totals are returned. Either way the result is
// the engine's, fen for fen (tests/cc/batch_kernel_test.cc).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "absl_compat.h"
#include "batch_steps.h"
#include "event_json.h"
#include "huge_pages.h"
#include "refpay/batch.h"
#include "refpay/money.h"
#include "refpay/policy.h"
#include "refpay/status.h"

namespace refpay {
namespace {

using internal::HugePageVector;

constexpr int64_t kMicrosPerDay = 86'400'000'000;  // hold_days, as the engine counts them
// An order's entries are counted in a byte: its levels and a leader.
constexpr size_t kMaxKernelLevels = 64;

// An AmountRule compiled for the order pass: what AmountRule::Compute
// pays, in int64 arithmetic while the product fits (bases up to
// kMaxFenForInt64Product, about 92 billion yuan; larger ones go to Compute
// itself). A whole-mode tier becomes the inclusive range of fen it
// contains, so that choosing one is two compares, and rounding is inline.
class KernelRule {
 public:
  KernelRule(const AmountRule& rule, RoundingMode rounding) : rule_(&rule), rounding_(rounding) {
    for (const Tier& tier : rule.tiers) {
      constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
      constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
      CompiledTier& t = tiers_.emplace_back();
      t.lower = tier.lower ? tier.lower->fen() : 0;
      t.upper = tier.upper ? tier.upper->fen() : kMax;
      // `above L` is `from L + 1` and `below U` is `upto U - 1`; such a
      // bound at the very end of int64 contains nothing.
      bool empty = false;
      t.first = tier.lower ? t.lower : kMin;
      if (tier.lower && !tier.lower_inclusive)
        empty |= __builtin_add_overflow(t.lower, 1, &t.first);
      t.last = t.upper;
      if (tier.upper && !tier.upper_inclusive) empty |= __builtin_sub_overflow(t.upper, 1, &t.last);
      if (empty) t.first = kMax, t.last = kMin;
      t.is_fixed = tier.fixed.has_value();
      t.value = tier.fixed ? tier.fixed->fen() : tier.rate->ppm();
    }
  }

  int64_t Pay(int64_t base) const {
    if (base > kMaxFenForInt64Product)
      return rule_->Compute(Money::FromFen(base), rounding_).amount.fen();
    switch (rule_->kind) {
      case AmountRule::Kind::kFixed:
        return rule_->fixed.fen();
      case AmountRule::Kind::kRate:
        return Round(base * rule_->rate.ppm());
      case AmountRule::Kind::kTiers:
        break;
    }
    if (rule_->mode == TierMode::kWhole) {
      for (const CompiledTier& tier : tiers_) {
        if (base < tier.first || base > tier.last) continue;
        return tier.is_fixed ? tier.value : Round(base * tier.value);
      }
      return 0;
    }
    // Marginal: the slices sum to at most base × 100%, so the sum fits too.
    int64_t exact = 0;
    for (const CompiledTier& tier : tiers_) {
      if (base <= tier.lower) break;
      exact += (std::min(tier.upper, base) - tier.lower) * tier.value;
    }
    return Round(exact);
  }

 private:
  struct CompiledTier {
    int64_t first, last;   // whole mode: the bases it contains, inclusive
    int64_t lower, upper;  // marginal mode: the slice (lower, upper]
    bool is_fixed;
    int64_t value;  // fen if is_fixed, else ppm
  };

  int64_t Round(int64_t fen_ppm) const { return RoundProduct(fen_ppm, rounding_).fen(); }

  const AmountRule* rule_;
  RoundingMode rounding_;
  std::vector<CompiledTier> tiers_;
};

// Why the kernel cannot settle under `policy` ("" if it can): any rule
// whose amount depends on earlier events or on more than the leader marks.
std::string PolicyNeedsEngine(const Policy& policy) {
  if (!policy.by_category.empty()) return "the policy has by_category rule sets";
  if (policy.eligible_role) return "the policy has eligible_role";
  if (policy.cap_member_month) return "the policy has caps.member_month";
  if (policy.cap_budget) return "the policy has caps.budget";
  if (policy.invite_rewards) return "the policy has invite_rewards";
  if (!policy.promotions.empty()) return "the policy has promotions";
  if (!policy.rank_bonus.empty()) return "the policy has rank_bonus";
  if (policy.checks.split_orders) return "the policy has checks.split_orders";
  if (policy.checks.velocity) return "the policy has checks.velocity";
  if (policy.checks.refund_rate) return "the policy has checks.refund_rate";
  if (policy.rules.levels.size() > kMaxKernelLevels)
    return absl::StrCat("the policy pays more than ", kMaxKernelLevels, " levels");
  for (size_t i = 0; i < policy.rules.levels.size(); ++i) {
    if (!policy.rules.levels[i].by_rank.empty()) return absl::StrCat("levels[", i, "] has by_rank");
  }
  if (const auto& leader = policy.rules.leader) {
    if (leader->scheme != LeaderRule::Scheme::kNearest) return "the leader scheme is differential";
    if (leader->peer) return "the leader rule has a peer bonus";
  }
  return "";
}

// True if no two of `ids` are equal, by sorting 64-bit hashes in buckets
// (one scatter pass, then small sorts that stay in cache): far fewer cache
// misses than a hash set of 10 million strings. Equal hashes count as a
// repeat; the caller then lets the engine decide, which finds the exact
// duplicates (a true 64-bit collision only costs the fast path).
template <typename Column>
bool SurelyDistinct(const Column& ids) {
  using Id = std::decay_t<decltype(ids[0])>;  // int64_t or std::string_view
  constexpr int kBucketBits = 16;
  HugePageVector<uint64_t> hashes(ids.size());
  std::vector<uint32_t> starts((size_t{1} << kBucketBits) + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    hashes[i] = absl::Hash<Id>()(ids[i]);
    ++starts[(hashes[i] >> (64 - kBucketBits)) + 1];
  }
  std::partial_sum(starts.begin(), starts.end(), starts.begin());
  HugePageVector<uint64_t> sorted(ids.size());
  std::vector<uint32_t> next(starts.begin(), starts.end() - 1);
  for (uint64_t h : hashes) sorted[next[h >> (64 - kBucketBits)]++] = h;
  for (size_t b = 0; b + 1 < starts.size(); ++b) {
    auto first = sorted.begin() + starts[b];
    auto last = sorted.begin() + starts[b + 1];
    std::sort(first, last);
    if (std::adjacent_find(first, last) != last) return false;
  }
  return true;
}

// Integer ids as SurelyDistinct, with the common case of auto-increment
// keys (strictly increasing: distinct) in one pass.
bool IntsSurelyDistinct(absl::Span<const int64_t> ids) {
  if (std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end()) return true;
  return SurelyDistinct(ids);
}

bool TextsOk(const TextColumn& column, std::string_view field, bool is_id) {
  for (size_t row = 0; row < column.size(); ++row) {
    if (!internal::CheckEventText(field, column[row], is_id).ok()) return false;
  }
  return true;
}

bool AllEmpty(const TextColumn& column) {
  for (size_t row = 0; row < column.size(); ++row) {
    if (!column[row].empty()) return false;
  }
  return true;
}

int64_t ValueOr(absl::Span<const int64_t> column, size_t row, int64_t absent) {
  return column.empty() ? absent : column[row];
}

// The member tree in row space. Everything an order reads about its buyer
// sits in one 32-byte node, never split across cache lines: the first
// ancestors (the paid levels of any usual policy), the nearest leader above
// and how far up it is, the join time. One random load per order then
// serves the levels, the leader and the join check.
constexpr size_t kNodeAncestors = 3;
struct alignas(32) Node {
  std::array<int32_t, kNodeAncestors> up;  // inviter, its inviter, ...; -1 past the root
  int32_t nearest_leader;                  // closest strict ancestor leader, -1 for none
  int32_t leader_distance;                 // levels up to it: 1 for the inviter
  uint16_t depth;                          // ancestors, saturating
  uint8_t is_leader;
  int64_t joined_at;
};
static_assert(sizeof(Node) == 32, "a node is half a cache line");

struct RowTree {
  HugePageVector<Node> nodes;
  int64_t last_join = std::numeric_limits<int64_t>::min();
};

// Builds the tree if every member row would join (its inviter joined
// first: earlier in SettleBatch's stable time order) with at most the
// "leader" role; else why not.
std::string BuildRowTree(const BatchMembersView& members, RowTree& tree) {
  const auto m = static_cast<int32_t>(members.inviter.size());
  if (!members.ids.empty() &&
      (!TextsOk(members.ids, "member", true) || !SurelyDistinct(members.ids)))
    return "member ids are empty, too long or repeated";
  // An integer's decimal string is never empty, too long or unprintable.
  if (!IntsSurelyDistinct(members.int_ids)) return "member ids are repeated";
  for (const auto& [field, column] :
       {std::pair{"region", &members.region}, std::pair{"device", &members.device},
        std::pair{"phone", &members.phone}, std::pair{"payment", &members.payment}}) {
    if (!TextsOk(*column, field, false)) return absl::StrCat("a member ", field, " is too long");
  }
  if (!AllEmpty(members.rank)) return "members have ranks";
  tree.nodes.resize(m);  // zeros
  for (int32_t row = 0; row < static_cast<int32_t>(members.role.size()); ++row) {
    const std::string_view role = members.role[row];
    if (role.empty()) continue;
    if (role != "leader")
      return absl::StrCat("member row ", row, " has role \"", internal::AsAbsl(role), "\"");
    tree.nodes[row].is_leader = 1;
  }
  // Join order: stable by time, as SettleBatch merges the rows (row order
  // itself when the times are sorted, the usual case).
  const absl::Span<const int64_t> at = members.joined_at;
  const bool in_row_order = std::is_sorted(at.begin(), at.end());
  std::vector<int32_t> order;     // rows in join order, if not row order
  std::vector<int32_t> position;  // row → place in join order, if not row order
  if (!in_row_order) {
    order.resize(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return at[a] < at[b]; });
    position.resize(m);
    for (int32_t i = 0; i < m; ++i) position[order[i]] = i;
  }
  auto joins_before = [&](int32_t a, int32_t b) {
    return in_row_order ? a < b : position[a] < position[b];
  };
  // Links `row` under its inviter, whose node is complete: it joined first.
  auto link = [&](int32_t row) -> std::string {
    Node& node = tree.nodes[row];
    const int32_t p = members.inviter[row];
    node.up.fill(-1);
    node.up[0] = p;
    node.nearest_leader = -1;
    node.joined_at = at[row];
    tree.last_join = std::max(tree.last_join, at[row]);
    if (p < 0) return p == -1 ? "" : absl::StrCat("member row ", row, " has inviter row ", p);
    if (p >= m || !joins_before(p, row))
      return absl::StrCat("member row ", row, "'s inviter has not joined before it");
    const Node& parent = tree.nodes[p];
    std::copy(parent.up.begin(), parent.up.end() - 1, node.up.begin() + 1);
    if (parent.is_leader) {
      node.nearest_leader = p;
      node.leader_distance = 1;
    } else if (parent.nearest_leader >= 0) {
      node.nearest_leader = parent.nearest_leader;
      node.leader_distance = parent.leader_distance + 1;
    }
    if (parent.depth < std::numeric_limits<uint16_t>::max()) {
      node.depth = static_cast<uint16_t>(parent.depth + 1);
    } else {
      node.depth = parent.depth;
    }
    return "";
  };
  for (int32_t i = 0; i < m; ++i) {
    if (std::string why = link(in_row_order ? i : order[i]); !why.empty()) return why;
  }
  return "";
}

// Why the orders' ids or categories would be refused ("" if none). The
// rest of what the engine checks of an order row (its buyer, amount, times
// and refund) the order pass checks as it reads the row.
std::string OrderTextsNeedEngine(const BatchOrdersView& orders) {
  if (!orders.ids.empty() && (!TextsOk(orders.ids, "id", true) || !SurelyDistinct(orders.ids)))
    return "order ids are empty, too long or repeated";
  if (!IntsSurelyDistinct(orders.int_ids)) return "order ids are repeated";
  if (!TextsOk(orders.category, "category", false)) return "an order category is too long";
  return "";
}

// The team leader paid on an order of the member at `row` with `node`, -1
// for none: the buyer with include_self, else the nearest leader above
// within max_depth.
int32_t LeaderOf(const LeaderRule& leader, const Node& node, int32_t row) {
  if (leader.include_self && node.is_leader) return row;
  if (leader.max_depth && node.leader_distance > *leader.max_depth) return -1;
  return node.nearest_leader;
}

// Member totals per status, by member row: [pending, frozen, available,
// held].
using StatusSums = HugePageVector<std::array<int64_t, 4>>;

// Why the engine settles when a sink stopped on an overflow.
constexpr char kOverflowReason[] = "a member total overflows";

// One order as the kernel settled it, handed to a sink: its entries'
// members (the levels in order, then the leader), and per entry the rule's
// amount, what was paid at order time and what is kept after the refund.
struct SettledOrder {
  int32_t row;
  size_t count;
  size_t paid_levels;  // entries [0, paid_levels) are levels, then the leader
  const int32_t* who;
  const int64_t* raw;
  const int64_t* paid;
  const int64_t* kept;
  EntryStatus status;  // at `as_of`
  // The refund came once the entries were available: the engine keeps each
  // entry at `paid` and claws `paid - kept` back, instead of shrinking it.
  bool clawed_back;
  int64_t refunded_at;
};

// Adds each entry's kept amount to its member's sums under its status (a
// clawback of an available entry nets into available, where the entry
// is); false if a sum overflows.
bool AddToSums(const SettledOrder& order, StatusSums& sums) {
  for (size_t k = 0; k < order.count; ++k) {
    int64_t& slot = sums[order.who[k]][static_cast<int>(order.status)];
    if (__builtin_add_overflow(slot, order.kept[k], &slot)) return false;
  }
  return true;
}

// Order rows in placement order: by time, equal times in row order, as
// SettleBatch merges them (the engine numbers orders, and writes its
// ledger, in this order). Empty when that is row order, the usual case.
std::vector<int32_t> PlacementOrder(const BatchOrdersView& orders) {
  if (std::is_sorted(orders.at.begin(), orders.at.end())) return {};
  std::vector<int32_t> rows(orders.at.size());
  std::iota(rows.begin(), rows.end(), 0);
  std::stable_sort(rows.begin(), rows.end(),
                   [&](int32_t a, int32_t b) { return orders.at[a] < orders.at[b]; });
  return rows;
}

std::string Rejected(int32_t row) { return absl::StrCat("order row ", row, " would be rejected"); }

// Settles every order and hands it to `sink` (a callable taking a
// SettledOrder and returning false to stop: an overflow, which the engine
// then reports), in the order of `rows` (row order if empty). Returns ""
// if every order settled, else why the engine must settle instead: the
// first row, in that order, that the engine would reject or settle
// differently (its buyer, amount, times and refund are checked here, as
// the pass reads them), an overflow, or `now` before the last event.
// `sums` is only prefetched here, ahead of the sink adding to it.
//
// Orders go in chunks, in three stages, so that each stage's random loads
// overlap instead of queueing behind each other: the buyers' nodes are
// asked for; each order's beneficiaries are read from its buyer's node and
// their sums asked for; then the amounts. Per order, the work is the
// engine's: levels from the buyer's inviter (the buyer itself under
// self_purchase), then the leader, filled in that priority within
// order_total.
template <typename Sink>
std::string RunKernel(const Policy& policy, const RowTree& tree, const BatchOrdersView& orders,
                      const std::vector<int32_t>& rows, int64_t now, const StatusSums& sums,
                      Sink&& sink) {
  constexpr size_t kChunk = 64;
  const RoundingMode rounding = policy.rounding;
  const RuleSet& rules = policy.rules;
  const size_t levels = rules.levels.size();
  const size_t width = levels + 1;
  const int64_t hold = policy.hold_days * kMicrosPerDay;
  const std::optional<Rate>& cap = policy.cap_order_total;
  auto room_of = [&](int64_t base) {
    if (!cap) return std::numeric_limits<int64_t>::max();
    return base <= kMaxFenForInt64Product
               ? RoundProduct(base * cap->ppm(), RoundingMode::kDown).fen()
               : ApplyRate(Money::FromFen(base), *cap, RoundingMode::kDown).fen();
  };
  std::vector<KernelRule> level_rules;
  for (const LevelRule& level : rules.levels) level_rules.emplace_back(level.amount, rounding);
  std::optional<KernelRule> leader_rule;
  if (rules.leader) leader_rule.emplace(rules.leader->amount, rounding);
  auto rule_of = [&](size_t k, size_t paid_levels) -> const KernelRule& {
    return k < paid_levels ? level_rules[k] : *leader_rule;
  };
  const HugePageVector<Node>& nodes = tree.nodes;
  const auto m = static_cast<int32_t>(nodes.size());
  int64_t last = tree.last_join;
  // Scratch for one chunk: no allocation per order.
  std::vector<int32_t> who(kChunk * width);
  std::array<int32_t, kChunk> row{};
  std::array<int32_t, kChunk> buyer{};
  std::array<uint8_t, kChunk> paid_levels{};
  std::array<uint8_t, kChunk> count{};
  std::vector<int64_t> raw(width);
  std::vector<int64_t> paid(width);
  std::vector<int64_t> kept(width);
  const size_t n = rows.empty() ? orders.buyer.size() : rows.size();
  for (size_t begin = 0; begin < n; begin += kChunk) {
    size_t size = std::min(kChunk, n - begin);
    // A bad row ends the chunk; the rows before it are still checked
    // first, so the reason names the first bad row.
    std::string bad_row;
    for (size_t i = 0; i < size; ++i) {
      row[i] = rows.empty() ? static_cast<int32_t>(begin + i) : rows[begin + i];
      buyer[i] = orders.buyer[row[i]];
      if (buyer[i] < 0 || buyer[i] >= m) {
        bad_row = Rejected(row[i]);
        size = i;
        break;
      }
      __builtin_prefetch(&nodes[buyer[i]]);
    }
    for (size_t i = 0; i < size; ++i) {
      const Node& node = nodes[buyer[i]];
      if (node.joined_at > orders.at[row[i]]) {
        bad_row = Rejected(row[i]);
        size = i;
        break;
      }
      int32_t* beneficiaries = &who[i * width];
      size_t c = 0;
      if (policy.self_purchase && c < levels) beneficiaries[c++] = buyer[i];
      // The node holds the first ancestors; a deeper level walks on.
      for (size_t up = 0; c < levels; ++up) {
        const int32_t a = up < kNodeAncestors ? node.up[up] : nodes[beneficiaries[c - 1]].up[0];
        if (a < 0) break;
        beneficiaries[c++] = a;
      }
      paid_levels[i] = static_cast<uint8_t>(c);
      if (rules.leader) {
        const int32_t bonus = LeaderOf(*rules.leader, node, buyer[i]);
        if (bonus >= 0) beneficiaries[c++] = bonus;
      }
      count[i] = static_cast<uint8_t>(c);
      for (size_t k = 0; k < c; ++k) __builtin_prefetch(&sums[beneficiaries[k]], 1);
    }
    for (size_t i = 0; i < size; ++i) {
      const int32_t o = row[i];
      const int64_t amount = orders.amount[o];
      const int64_t at = orders.at[o];
      if (amount <= 0) return Rejected(o);
      last = std::max(last, at);
      const int64_t confirmed = ValueOr(orders.confirmed_at, o, kNoTime);
      if (confirmed != kNoTime) {
        if (confirmed < at)
          return absl::StrCat("order row ", o, " is confirmed before it is placed");
        last = std::max(last, confirmed);
      }
      const int64_t refund = ValueOr(orders.refund_amount, o, 0);
      // Read on every row, not only refunded ones: a sequential stream the
      // hardware prefetches, where a read every twentieth row misses.
      const int64_t refund_time = ValueOr(orders.refunded_at, o, kNoTime);
      const int64_t refunded_at = refund != 0 ? refund_time : kNoTime;
      if (refund != 0) {
        if (refund < 0 || refund > amount || refunded_at < at)
          return absl::StrCat("order row ", o, "'s refund would be rejected");
        last = std::max(last, refunded_at);
      }
      // The order_total fill at order time, then (SPEC §4) each entry is the
      // smaller of that and its fill on the base left after the refund.
      int64_t room = room_of(amount);
      for (size_t k = 0; k < count[i]; ++k) {
        raw[k] = rule_of(k, paid_levels[i]).Pay(amount);
        paid[k] = std::min(raw[k], room);
        kept[k] = paid[k];
        room -= paid[k];
      }
      if (refund != 0) {
        const int64_t base = amount - refund;
        room = room_of(base);
        for (size_t k = 0; k < count[i]; ++k) {
          const int64_t refill =
              std::min(base == 0 ? 0 : rule_of(k, paid_levels[i]).Pay(base), room);
          room -= refill;
          kept[k] = std::min(paid[k], refill);
        }
      }
      // Engine::Totals' status at `now`, and whether the entries were
      // available when the refund came (a confirmation at the refund's
      // instant comes first).
      auto available_at = [&](int64_t t) {
        return confirmed != kNoTime && confirmed <= t && t - confirmed >= hold;
      };
      const EntryStatus status = available_at(now) ? EntryStatus::kAvailable
                                 : confirmed != kNoTime && confirmed <= now ? EntryStatus::kFrozen
                                                                            : EntryStatus::kPending;
      const SettledOrder settled{.row = o,
                                 .count = count[i],
                                 .paid_levels = paid_levels[i],
                                 .who = &who[i * width],
                                 .raw = raw.data(),
                                 .paid = paid.data(),
                                 .kept = kept.data(),
                                 .status = status,
                                 .clawed_back = refund != 0 && available_at(refunded_at),
                                 .refunded_at = refunded_at};
      if (!sink(settled)) return kOverflowReason;
    }
    if (!bad_row.empty()) return bad_row;
  }
  if (now < last) return "as_of precedes the last event";
  return "";
}

// How many entries each order writes: one per level its buyer has an
// ancestor for (the buyer itself first under self_purchase), and one for a
// leader if it has one. Summed over the orders, the ledger's size before
// clawbacks, so its columns are reserved once and never move. A buyer
// that is no member row counts none: the order pass stops there.
size_t EntryCount(const Policy& policy, const RowTree& tree, const BatchOrdersView& orders) {
  const size_t levels = policy.rules.levels.size();
  const HugePageVector<Node>& nodes = tree.nodes;
  HugePageVector<uint8_t> per_member(nodes.size());
  for (size_t row = 0; row < per_member.size(); ++row) {
    const size_t reach = nodes[row].depth + (policy.self_purchase ? 1 : 0);
    const bool leader = policy.rules.leader &&
                        LeaderOf(*policy.rules.leader, nodes[row], static_cast<int32_t>(row)) >= 0;
    per_member[row] = static_cast<uint8_t>(std::min(levels, reach) + (leader ? 1 : 0));
  }
  size_t entries = 0;
  for (const int32_t buyer : orders.buyer) {
    if (buyer >= 0 && static_cast<size_t>(buyer) < per_member.size()) entries += per_member[buyer];
  }
  return entries;
}

// Writes the engine's LedgerTable rows, in row space: each order's entries
// as it is placed, and its clawbacks kept aside to follow all entries in
// refund order (then order row, then entry), as the engine records them.
class LedgerWriter {
 public:
  // `entries` is EntryCount's; `clawbacks` bounds the clawback rows.
  LedgerWriter(LedgerColumns& ledger, std::vector<BatchFlag>& flags, size_t levels, size_t entries,
               size_t clawbacks)
      : ledger_(ledger), flags_(flags), code_of_kind_(levels + 1, -1) {
    const size_t rows = entries + clawbacks;
    Reserve(ledger_.order, rows);
    Reserve(ledger_.member, rows);
    Reserve(ledger_.kind, rows);
    Reserve(ledger_.amount, rows);
    Reserve(ledger_.rule_amount, rows);
    Reserve(ledger_.status, rows);
    Reserve(ledger_.action, rows);
    Reserve(ledger_.clawback, rows);
  }

  void Add(const SettledOrder& order) {
    for (size_t k = 0; k < order.count; ++k) {
      // Kind codes as the engine numbers them: in the order first met.
      const size_t kind = k < order.paid_levels ? k : code_of_kind_.size() - 1;
      if (code_of_kind_[kind] < 0) {
        code_of_kind_[kind] = static_cast<int>(ledger_.kind_names.size());
        ledger_.kind_names.push_back(kind + 1 < code_of_kind_.size()
                                         ? absl::StrCat("level", kind + 1)
                                         : std::string("leader"));
      }
      // The engine's cap flag, once per entry order_total cut (the only
      // flag a kernel policy can raise: its checks never hit).
      if (order.paid[k] < order.raw[k]) flags_.push_back({"cap_order", order.who[k], order.row});
      const auto code = static_cast<uint8_t>(code_of_kind_[kind]);
      if (order.clawed_back && order.kept[k] < order.paid[k]) {
        clawbacks_.push_back({order.refunded_at, order.row, ledger_.amount.size() + pending_.rows,
                              order.who[k], code, order.paid[k] - order.kept[k]});
      }
      pending_.Add(order.row, order.who[k], code, order.clawed_back ? order.paid[k] : order.kept[k],
                   order.raw[k], order.status);
    }
    // Room for the next order's entries: at most kMaxKernelLevels + 1.
    if (pending_.rows > Pending::kRows - kMaxKernelLevels - 1) Flush();
  }

  // Appends the clawbacks, once every order is in.
  void Finish() {
    Flush();
    std::sort(clawbacks_.begin(), clawbacks_.end());
    for (const Clawback& c : clawbacks_) {
      ledger_.order.push_back(c.row);
      ledger_.member.push_back(c.member);
      ledger_.kind.push_back(c.kind);
      ledger_.amount.push_back(-c.amount);
      ledger_.rule_amount.push_back(0);
      ledger_.status.push_back(static_cast<uint8_t>(EntryStatus::kAvailable));
      ledger_.action.push_back(0);
      ledger_.clawback.push_back(1);
    }
  }

 private:
  struct Clawback {
    int64_t at;
    int32_t row;
    size_t entry;  // its entry's row in the ledger
    int32_t member;
    uint8_t kind;
    int64_t amount;
    friend bool operator<(const Clawback& a, const Clawback& b) {
      return std::tie(a.at, a.row, a.entry) < std::tie(b.at, b.row, b.entry);
    }
  };

  // Room for the entries and the clawbacks, so that no append moves a
  // column, with its pages faulted in by one call each rather than one
  // fault per page as the pass writes. Appends, not a resize: a resize
  // would zero 800 MB that the pass then writes again.
  template <typename T>
  static void Reserve(std::vector<T>& column, size_t rows) {
    // Plain pages: huge pages for these columns measured faster on
    // average but bimodal (first touch sometimes 1.5 s slower for 800 MB,
    // when the kernel had to assemble 2 MiB pages); 4 KiB pages are steady.
    column.reserve(rows);
    internal::PopulateCapacity(column);
  }

  // Entries gathered in a few KiB that stay in L1, then appended to the
  // columns a block at a time: a row costs six stores into the block
  // rather than eight appends, each checking and moving its column's end.
  struct Pending {
    static constexpr size_t kRows = 512;
    void Add(int32_t row, int32_t member, uint8_t kind, int64_t amount, int64_t rule_amount,
             EntryStatus status) {
      order[rows] = row;
      this->member[rows] = member;
      this->kind[rows] = kind;
      this->amount[rows] = amount;
      this->rule_amount[rows] = rule_amount;
      this->status[rows] = static_cast<uint8_t>(status);
      ++rows;
    }
    size_t rows = 0;
    std::array<int32_t, kRows> order;
    std::array<int32_t, kRows> member;
    std::array<uint8_t, kRows> kind;
    std::array<int64_t, kRows> amount;
    std::array<int64_t, kRows> rule_amount;
    std::array<uint8_t, kRows> status;
  };

  void Flush() {
    const size_t n = pending_.rows;
    auto append = [n](auto& column, const auto& block) {
      column.insert(column.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(n));
    };
    append(ledger_.order, pending_.order);
    append(ledger_.member, pending_.member);
    append(ledger_.kind, pending_.kind);
    append(ledger_.amount, pending_.amount);
    append(ledger_.rule_amount, pending_.rule_amount);
    append(ledger_.status, pending_.status);
    // An entry has no check action and is no clawback: zeros.
    ledger_.action.resize(ledger_.action.size() + n);
    ledger_.clawback.resize(ledger_.clawback.size() + n);
    pending_.rows = 0;
  }

  LedgerColumns& ledger_;
  std::vector<BatchFlag>& flags_;
  std::vector<int> code_of_kind_;  // level k at k, the leader last; -1 = not met yet
  std::vector<Clawback> clawbacks_;
  Pending pending_;
};

// The kernel's preconditions on `policy` and the batch that hold before
// the order pass: "" if it may start (then `tree` is built), else why not.
std::string KernelCannotSettle(const Policy& policy, const BatchMembersView& members,
                               const BatchOrdersView& orders, RowTree& tree) {
  std::string reason = PolicyNeedsEngine(policy);
  if (reason.empty() && policy.checks.shared_identity &&
      !(AllEmpty(members.device) && AllEmpty(members.phone) && AllEmpty(members.payment))) {
    reason = "checks.shared_identity is on and members have identities";
  }
  if (reason.empty()) reason = BuildRowTree(members, tree);
  if (reason.empty()) reason = OrderTextsNeedEngine(orders);
  return reason;
}

MemberTotals TotalsOf(const StatusSums& sums) {
  MemberTotals totals;
  for (auto* column : {&totals.pending, &totals.frozen, &totals.available, &totals.held}) {
    column->resize(sums.size());
  }
  for (size_t row = 0; row < sums.size(); ++row) {
    totals.pending[row] = sums[row][static_cast<int>(EntryStatus::kPending)];
    totals.frozen[row] = sums[row][static_cast<int>(EntryStatus::kFrozen)];
    totals.available[row] = sums[row][static_cast<int>(EntryStatus::kAvailable)];
    totals.held[row] = sums[row][static_cast<int>(EntryStatus::kHeld)];
  }
  return totals;
}

// The engine's settlement of the batch, with each row's engine index.
struct EngineRun {
  BatchResult settled;
  internal::BatchRowMap rows;
};

absl::StatusOr<EngineRun> RunEngine(const Policy& policy, const BatchMembersView& members,
                                    const BatchOrdersView& orders) {
  internal::BatchRowMap rows;
  REFPAY_ASSIGN_OR_RETURN(BatchResult settled,
                          internal::SettleBatchRows(policy, members, orders, rows));
  return EngineRun{std::move(settled), std::move(rows)};
}

// The engine's totals at `as_of`, by member row.
absl::StatusOr<MemberTotals> TotalsByRow(const EngineRun& run, absl::Time as_of) {
  REFPAY_ASSIGN_OR_RETURN(const MemberTotals totals, run.settled.engine.Totals(as_of));
  const std::vector<int32_t>& member_of_row = run.rows.member_of_row;
  MemberTotals by_row;
  const std::array<std::pair<std::vector<int64_t>*, const std::vector<int64_t>*>, 4> columns = {
      {{&by_row.pending, &totals.pending},
       {&by_row.frozen, &totals.frozen},
       {&by_row.available, &totals.available},
       {&by_row.held, &totals.held}}};
  for (const auto& [out, in] : columns) {
    out->assign(member_of_row.size(), 0);
    for (size_t row = 0; row < member_of_row.size(); ++row) {
      if (member_of_row[row] >= 0) (*out)[row] = (*in)[member_of_row[row]];
    }
  }
  return by_row;
}

// Inverts a row → index map: index → row.
std::vector<int32_t> RowOfIndex(const std::vector<int32_t>& index_of_row) {
  std::vector<int32_t> row_of_index(index_of_row.size(), -1);
  for (size_t row = 0; row < index_of_row.size(); ++row) {
    if (index_of_row[row] >= 0) row_of_index[index_of_row[row]] = static_cast<int32_t>(row);
  }
  return row_of_index;
}

}  // namespace

absl::StatusOr<BatchTotals> SettleTotals(const Policy& policy, const BatchMembersView& members,
                                         const BatchOrdersView& orders, absl::Time as_of) {
  REFPAY_RETURN_IF_ERROR(internal::CheckBatchColumns(members, orders));
  const int64_t now = absl::ToUnixMicros(as_of);
  RowTree tree;
  std::string reason = KernelCannotSettle(policy, members, orders, tree);
  if (reason.empty()) {
    StatusSums sums(members.inviter.size());  // zeros
    // The totals do not depend on the order of the orders: row order.
    reason = RunKernel(policy, tree, orders, /*rows=*/{}, now, sums,
                       [&](const SettledOrder& order) { return AddToSums(order, sums); });
    if (reason.empty()) return BatchTotals{TotalsOf(sums), {}, ""};
  }
  REFPAY_ASSIGN_OR_RETURN(EngineRun run, RunEngine(policy, members, orders));
  REFPAY_ASSIGN_OR_RETURN(MemberTotals by_row, TotalsByRow(run, as_of));
  return BatchTotals{std::move(by_row), std::move(run.settled.errors), std::move(reason)};
}

absl::StatusOr<BatchLedger> SettleLedger(const Policy& policy, const BatchMembersView& members,
                                         const BatchOrdersView& orders, absl::Time as_of) {
  REFPAY_RETURN_IF_ERROR(internal::CheckBatchColumns(members, orders));
  const int64_t now = absl::ToUnixMicros(as_of);
  RowTree tree;
  std::string reason = KernelCannotSettle(policy, members, orders, tree);
  if (reason.empty()) {
    const std::vector<int32_t> rows = PlacementOrder(orders);
    StatusSums sums(members.inviter.size());  // zeros
    BatchLedger result;
    // A clawback is at most one per entry of a refunded order.
    const size_t refunded = orders.refund_amount.size() -
                            std::count(orders.refund_amount.begin(), orders.refund_amount.end(), 0);
    LedgerWriter writer(result.ledger, result.flags, policy.rules.levels.size(),
                        EntryCount(policy, tree, orders),
                        refunded * (policy.rules.levels.size() + 1));
    reason = RunKernel(policy, tree, orders, rows, now, sums, [&](const SettledOrder& order) {
      writer.Add(order);
      return AddToSums(order, sums);
    });
    if (reason.empty()) {
      writer.Finish();
      result.by_row = TotalsOf(sums);
      return result;
    }
  }
  REFPAY_ASSIGN_OR_RETURN(EngineRun run, RunEngine(policy, members, orders));
  REFPAY_ASSIGN_OR_RETURN(MemberTotals by_row, TotalsByRow(run, as_of));
  REFPAY_ASSIGN_OR_RETURN(LedgerColumns ledger, run.settled.engine.LedgerTable(as_of));
  const std::vector<int32_t> member_row = RowOfIndex(run.rows.member_of_row);
  const std::vector<int32_t> order_row = RowOfIndex(run.rows.order_of_row);
  for (int32_t& m : ledger.member) m = member_row[m];
  for (int32_t& o : ledger.order) o = o < 0 ? -1 : order_row[o];
  std::vector<BatchFlag> flags;
  for (const internal::IndexedFlag& f : internal::FlagIndices(run.settled.engine))
    flags.push_back({f.check, member_row[f.member], f.order < 0 ? -1 : order_row[f.order]});
  return BatchLedger{std::move(ledger), std::move(by_row), std::move(flags),
                     std::move(run.settled.errors), std::move(reason)};
}

}  // namespace refpay
