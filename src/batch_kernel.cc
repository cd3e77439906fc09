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

// What AmountRule::Compute pays, in int64 arithmetic while the product
// fits (bases up to kMaxFenForInt64Product, about 92 billion yuan), else
// by Compute itself.
int64_t Pay(const AmountRule& rule, int64_t base, RoundingMode rounding) {
  if (base > kMaxFenForInt64Product)
    return rule.Compute(Money::FromFen(base), rounding).amount.fen();
  switch (rule.kind) {
    case AmountRule::Kind::kFixed:
      return rule.fixed.fen();
    case AmountRule::Kind::kRate:
      return RoundProduct(base * rule.rate.ppm(), rounding).fen();
    case AmountRule::Kind::kTiers:
      break;
  }
  if (rule.mode == TierMode::kWhole) {
    for (const Tier& tier : rule.tiers) {
      if (!tier.Contains(Money::FromFen(base))) continue;
      if (tier.fixed) return tier.fixed->fen();
      return RoundProduct(base * tier.rate->ppm(), rounding).fen();
    }
    return 0;
  }
  // Marginal: the slices sum to at most base × 100%, so the sum fits too.
  int64_t exact = 0;
  for (const Tier& tier : rule.tiers) {
    const int64_t lower = tier.lower ? tier.lower->fen() : 0;
    if (base <= lower) break;
    const int64_t top = tier.upper && tier.upper->fen() < base ? tier.upper->fen() : base;
    exact += (top - lower) * tier.rate->ppm();
  }
  return RoundProduct(exact, rounding).fen();
}

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
template <typename Id>
bool SurelyDistinct(const std::vector<Id>& ids) {
  constexpr int kBucketBits = 16;
  HugePageVector<uint64_t> hashes(ids.size());
  std::vector<uint32_t> starts((size_t{1} << kBucketBits) + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    if constexpr (std::is_same_v<Id, std::string>) {
      hashes[i] = absl::Hash<std::string_view>()(ids[i]);
    } else {
      hashes[i] = absl::Hash<Id>()(ids[i]);
    }
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
bool IntsSurelyDistinct(const std::vector<int64_t>& ids) {
  if (std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end()) return true;
  return SurelyDistinct(ids);
}

bool TextsOk(const std::vector<std::string>& column, std::string_view field, bool is_id) {
  return std::all_of(column.begin(), column.end(), [&](const std::string& value) {
    return internal::CheckEventText(field, value, is_id).ok();
  });
}

bool AllEmpty(const std::vector<std::string>& column) {
  return std::all_of(column.begin(), column.end(), [](const std::string& v) { return v.empty(); });
}

int64_t ValueOr(const std::vector<int64_t>& column, size_t row, int64_t absent) {
  return column.empty() ? absent : column[row];
}

// The member tree in row space, with each member's nearest leader above
// and join time: the columns the order pass reads at random rows.
struct RowTree {
  // A member's inviter and nearest leader side by side: an order reads
  // both for its buyer, and one cache miss then serves the two.
  struct Node {
    int32_t parent;          // inviter row, -1 for none
    int32_t nearest_leader;  // closest strict ancestor leader, -1
  };
  HugePageVector<Node> nodes;
  HugePageVector<uint8_t> is_leader;
  HugePageVector<uint8_t> depth;  // ancestors, up to 255
  HugePageVector<int64_t> joined_at;
};

// Builds the tree if every member row would join (its inviter joined
// first: earlier in SettleBatch's stable time order) with at most the
// "leader" role; else why not.
std::string BuildRowTree(const BatchMembers& members, RowTree& tree) {
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
  tree.is_leader.assign(m, 0);
  for (int32_t row = 0; row < static_cast<int32_t>(members.role.size()); ++row) {
    const std::string& role = members.role[row];
    if (role.empty()) continue;
    if (role != "leader") return absl::StrCat("member row ", row, " has role \"", role, "\"");
    tree.is_leader[row] = 1;
  }
  // Join order: stable by time, as SettleBatch merges the rows (row order
  // itself when the times are sorted, the usual case).
  std::vector<int32_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  const std::vector<int64_t>& at = members.joined_at;
  const bool in_row_order = std::is_sorted(at.begin(), at.end());
  std::vector<int32_t> position;  // row → place in join order, if not row order
  if (!in_row_order) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return at[a] < at[b]; });
    position.resize(m);
    for (int32_t i = 0; i < m; ++i) position[order[i]] = i;
  }
  auto joins_before = [&](int32_t a, int32_t b) {
    return in_row_order ? a < b : position[a] < position[b];
  };
  tree.nodes.resize(m);
  for (int32_t row = 0; row < m; ++row) tree.nodes[row] = {members.inviter[row], -1};
  tree.joined_at.assign(at.begin(), at.end());
  tree.depth.assign(m, 0);
  for (const int32_t row : order) {
    const int32_t p = tree.nodes[row].parent;
    if (p < 0) {
      if (p != -1) return absl::StrCat("member row ", row, " has inviter row ", p);
      continue;
    }
    if (p >= m || !joins_before(p, row))
      return absl::StrCat("member row ", row, "'s inviter has not joined before it");
    tree.nodes[row].nearest_leader = tree.is_leader[p] ? p : tree.nodes[p].nearest_leader;
    tree.depth[row] = tree.depth[p] == 255 ? 255 : tree.depth[p] + 1;
  }
  return "";
}

// Why some order row would be rejected or settle differently from the
// kernel's reading ("" if none): the engine's checks of order, confirm and
// refund rows, and as_of not before the last event.
std::string OrdersNeedEngine(const RowTree& tree, const BatchOrders& orders, int64_t as_of) {
  const auto m = static_cast<int32_t>(tree.nodes.size());
  if (!orders.ids.empty() && (!TextsOk(orders.ids, "id", true) || !SurelyDistinct(orders.ids)))
    return "order ids are empty, too long or repeated";
  if (!IntsSurelyDistinct(orders.int_ids)) return "order ids are repeated";
  if (!TextsOk(orders.category, "category", false)) return "an order category is too long";
  int64_t last = std::numeric_limits<int64_t>::min();
  for (const int64_t t : tree.joined_at) last = std::max(last, t);
  // The buyer's join time is a random load per order; asking for it a few
  // orders ahead overlaps those misses instead of waiting on each in turn.
  constexpr size_t kPrefetchAhead = 16;
  const size_t n = orders.buyer.size();
  for (size_t o = 0; o < n; ++o) {
    if (o + kPrefetchAhead < n) {
      const int32_t ahead = orders.buyer[o + kPrefetchAhead];
      if (ahead >= 0 && ahead < m) __builtin_prefetch(&tree.joined_at[ahead]);
    }
    const int32_t buyer = orders.buyer[o];
    const int64_t at = orders.at[o];
    if (buyer < 0 || buyer >= m || tree.joined_at[buyer] > at || orders.amount[o] <= 0)
      return absl::StrCat("order row ", o, " would be rejected");
    last = std::max(last, at);
    const int64_t confirmed = ValueOr(orders.confirmed_at, o, kNoTime);
    if (confirmed != kNoTime) {
      if (confirmed < at) return absl::StrCat("order row ", o, " is confirmed before it is placed");
      last = std::max(last, confirmed);
    }
    const int64_t refund = ValueOr(orders.refund_amount, o, 0);
    if (refund != 0) {
      if (refund < 0 || refund > orders.amount[o] || orders.refunded_at[o] < at)
        return absl::StrCat("order row ", o, "'s refund would be rejected");
      last = std::max(last, orders.refunded_at[o]);
    }
  }
  if (as_of < last) return "as_of precedes the last event";
  return "";
}

// The team leader paid on an order of `buyer`, -1 for none: the buyer with
// include_self, else the nearest leader above within max_depth.
int32_t LeaderOf(const LeaderRule& leader, const RowTree& tree, int32_t buyer) {
  if (leader.include_self && tree.is_leader[buyer]) return buyer;
  if (!leader.max_depth) return tree.nodes[buyer].nearest_leader;
  int32_t m = buyer;
  for (int depth = 0; depth < *leader.max_depth; ++depth) {
    m = tree.nodes[m].parent;
    if (m < 0) return -1;
    if (tree.is_leader[m]) return m;
  }
  return -1;
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
// ledger, in this order).
std::vector<int32_t> PlacementOrder(const BatchOrders& orders) {
  std::vector<int32_t> rows(orders.at.size());
  std::iota(rows.begin(), rows.end(), 0);
  if (!std::is_sorted(orders.at.begin(), orders.at.end())) {
    std::stable_sort(rows.begin(), rows.end(),
                     [&](int32_t a, int32_t b) { return orders.at[a] < orders.at[b]; });
  }
  return rows;
}

// Settles every order and hands it to `sink` (a callable taking a
// SettledOrder and returning false to stop: an overflow, which the engine
// then reports), in the order of `rows`; false if the sink stopped. `sums`
// is only prefetched here, ahead of the sink adding to it.
//
// Orders go in chunks, in two stages: first every order's beneficiaries
// (one tree level at a time across the chunk, so its random loads overlap
// instead of queueing behind each other, then a prefetch of their sums),
// then the amounts. Per order, the work is the engine's: levels from the
// buyer's inviter (the buyer itself under self_purchase), then the leader,
// filled in that priority within order_total.
template <typename Sink>
bool RunKernel(const Policy& policy, const RowTree& tree, const BatchOrders& orders,
               const std::vector<int32_t>& rows, int64_t now, const StatusSums& sums, Sink&& sink) {
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
  auto rule_of = [&](size_t k, size_t paid_levels) -> const AmountRule& {
    return k < paid_levels ? rules.levels[k].amount : rules.leader->amount;
  };
  // Scratch for one chunk: no allocation per order.
  std::vector<int32_t> who(kChunk * width);
  std::array<int32_t, kChunk> buyer{};
  std::array<int32_t, kChunk> cursor{};
  std::array<uint8_t, kChunk> paid_levels{};
  std::array<uint8_t, kChunk> count{};
  std::vector<int64_t> raw(width);
  std::vector<int64_t> paid(width);
  std::vector<int64_t> kept(width);
  const size_t n = rows.size();
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t size = std::min(kChunk, n - begin);
    for (size_t i = 0; i < size; ++i) {
      buyer[i] = orders.buyer[rows[begin + i]];
      cursor[i] = policy.self_purchase ? buyer[i] : tree.nodes[buyer[i]].parent;
      count[i] = 0;
    }
    for (size_t level = 0; level < levels; ++level) {
      for (size_t i = 0; i < size; ++i) {
        if (cursor[i] < 0) continue;
        who[i * width + count[i]++] = cursor[i];
        cursor[i] = tree.nodes[cursor[i]].parent;
      }
    }
    for (size_t i = 0; i < size; ++i) {
      paid_levels[i] = count[i];
      if (rules.leader) {
        const int32_t bonus = LeaderOf(*rules.leader, tree, buyer[i]);
        if (bonus >= 0) who[i * width + count[i]++] = bonus;
      }
      for (size_t k = 0; k < count[i]; ++k) __builtin_prefetch(&sums[who[i * width + k]], 1);
    }
    for (size_t i = 0; i < size; ++i) {
      const int32_t o = rows[begin + i];
      // The order_total fill at order time, then (SPEC §4) each entry is the
      // smaller of that and its fill on the base left after the refund.
      const int64_t amount = orders.amount[o];
      int64_t room = room_of(amount);
      for (size_t k = 0; k < count[i]; ++k) {
        raw[k] = Pay(rule_of(k, paid_levels[i]), amount, rounding);
        paid[k] = std::min(raw[k], room);
        kept[k] = paid[k];
        room -= paid[k];
      }
      const int64_t refund = ValueOr(orders.refund_amount, o, 0);
      const int64_t confirmed = ValueOr(orders.confirmed_at, o, kNoTime);
      const int64_t refunded_at = refund != 0 ? orders.refunded_at[o] : kNoTime;
      if (refund != 0) {
        const int64_t base = amount - refund;
        room = room_of(base);
        for (size_t k = 0; k < count[i]; ++k) {
          const int64_t refill =
              std::min(base == 0 ? 0 : Pay(rule_of(k, paid_levels[i]), base, rounding), room);
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
      if (!sink(settled)) return false;
    }
  }
  return true;
}

// How many entries each order writes: one per level its buyer has an
// ancestor for (the buyer itself first under self_purchase), and one for a
// leader if it has one. Summed over the orders, the ledger's size before
// clawbacks, so its columns are sized once and written in place.
size_t EntryCount(const Policy& policy, const RowTree& tree, const BatchOrders& orders) {
  const size_t levels = policy.rules.levels.size();
  HugePageVector<uint8_t> per_member(tree.nodes.size());
  for (size_t row = 0; row < per_member.size(); ++row) {
    const size_t reach = tree.depth[row] + (policy.self_purchase ? 1 : 0);
    const bool leader =
        policy.rules.leader && LeaderOf(*policy.rules.leader, tree, static_cast<int32_t>(row)) >= 0;
    per_member[row] = static_cast<uint8_t>(std::min(levels, reach) + (leader ? 1 : 0));
  }
  size_t entries = 0;
  for (const int32_t buyer : orders.buyer) entries += per_member[buyer];
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
    Size(ledger_.order, entries, clawbacks);
    Size(ledger_.member, entries, clawbacks);
    Size(ledger_.kind, entries, clawbacks);
    Size(ledger_.amount, entries, clawbacks);
    Size(ledger_.rule_amount, entries, clawbacks);
    Size(ledger_.status, entries, clawbacks);
    Size(ledger_.action, entries, clawbacks);
    Size(ledger_.clawback, entries, clawbacks);
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
      if (order.clawed_back && order.kept[k] < order.paid[k]) {
        clawbacks_.push_back({order.refunded_at, order.row, next_, order.paid[k] - order.kept[k]});
      }
      const size_t i = next_++;
      ledger_.order[i] = order.row;
      ledger_.member[i] = order.who[k];
      ledger_.kind[i] = static_cast<uint8_t>(code_of_kind_[kind]);
      ledger_.amount[i] = order.clawed_back ? order.paid[k] : order.kept[k];
      ledger_.rule_amount[i] = order.raw[k];
      ledger_.status[i] = static_cast<uint8_t>(order.status);
    }
  }

  // Appends the clawbacks, once every order is in.
  void Finish() {
    std::sort(clawbacks_.begin(), clawbacks_.end());
    for (const Clawback& c : clawbacks_) {
      ledger_.order.push_back(c.row);
      ledger_.member.push_back(ledger_.member[c.entry]);
      ledger_.kind.push_back(ledger_.kind[c.entry]);
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
    int64_t amount;
    friend bool operator<(const Clawback& a, const Clawback& b) {
      return std::tie(a.at, a.row, a.entry) < std::tie(b.at, b.row, b.entry);
    }
  };

  // Sized for the entries (zeros: action and clawback stay 0), with room
  // for the clawbacks so that appending them never moves the column.
  template <typename T>
  static void Size(std::vector<T>& column, size_t entries, size_t clawbacks) {
    // Plain pages: huge pages for these columns measured faster on
    // average but bimodal (first touch sometimes 1.5 s slower for 800 MB,
    // when the kernel had to assemble 2 MiB pages); 4 KiB pages are steady.
    column.reserve(entries + clawbacks);
    column.resize(entries);
  }

  LedgerColumns& ledger_;
  std::vector<BatchFlag>& flags_;
  std::vector<int> code_of_kind_;  // level k at k, the leader last; -1 = not met yet
  std::vector<Clawback> clawbacks_;
  size_t next_ = 0;  // the next entry's row
};

// The kernel's preconditions on `policy` and the batch: "" if it may
// settle them (then `tree` is built), else why not.
std::string KernelCannotSettle(const Policy& policy, const BatchMembers& members,
                               const BatchOrders& orders, int64_t now, RowTree& tree) {
  std::string reason = PolicyNeedsEngine(policy);
  if (reason.empty() && policy.checks.shared_identity &&
      !(AllEmpty(members.device) && AllEmpty(members.phone) && AllEmpty(members.payment))) {
    reason = "checks.shared_identity is on and members have identities";
  }
  if (reason.empty()) reason = BuildRowTree(members, tree);
  if (reason.empty()) reason = OrdersNeedEngine(tree, orders, now);
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

absl::StatusOr<EngineRun> RunEngine(const Policy& policy, const BatchMembers& members,
                                    const BatchOrders& orders) {
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

absl::StatusOr<BatchTotals> SettleTotals(const Policy& policy, const BatchMembers& members,
                                         const BatchOrders& orders, absl::Time as_of) {
  REFPAY_RETURN_IF_ERROR(internal::CheckBatchColumns(members, orders));
  const int64_t now = absl::ToUnixMicros(as_of);
  RowTree tree;
  std::string reason = KernelCannotSettle(policy, members, orders, now, tree);
  if (reason.empty()) {
    // The totals do not depend on the order of the orders: row order.
    std::vector<int32_t> rows(orders.buyer.size());
    std::iota(rows.begin(), rows.end(), 0);
    StatusSums sums(members.inviter.size());  // zeros
    if (RunKernel(policy, tree, orders, rows, now, sums,
                  [&](const SettledOrder& order) { return AddToSums(order, sums); })) {
      return BatchTotals{TotalsOf(sums), {}, ""};
    }
    reason = kOverflowReason;
  }
  REFPAY_ASSIGN_OR_RETURN(EngineRun run, RunEngine(policy, members, orders));
  REFPAY_ASSIGN_OR_RETURN(MemberTotals by_row, TotalsByRow(run, as_of));
  return BatchTotals{std::move(by_row), std::move(run.settled.errors), std::move(reason)};
}

absl::StatusOr<BatchLedger> SettleLedger(const Policy& policy, const BatchMembers& members,
                                         const BatchOrders& orders, absl::Time as_of) {
  REFPAY_RETURN_IF_ERROR(internal::CheckBatchColumns(members, orders));
  const int64_t now = absl::ToUnixMicros(as_of);
  RowTree tree;
  std::string reason = KernelCannotSettle(policy, members, orders, now, tree);
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
    if (RunKernel(policy, tree, orders, rows, now, sums, [&](const SettledOrder& order) {
          writer.Add(order);
          return AddToSums(order, sums);
        })) {
      writer.Finish();
      result.by_row = TotalsOf(sums);
      return result;
    }
    reason = kOverflowReason;
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
