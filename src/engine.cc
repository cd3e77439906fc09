#include "refpay/engine.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/types/span.h"
#include "absl_compat.h"
#include "batch_steps.h"
#include "boost/crc.hpp"
#include "bytes.h"
#include "event_json.h"
#include "huge_pages.h"
#include "id_index.h"
#include "json_util.h"
#include "refpay/checks.h"
#include "refpay/status.h"
#include "refpay/tree.h"

namespace refpay {
namespace {

constexpr int64_t kMicrosPerMinute = int64_t{60} * 1'000'000;
constexpr int64_t kMicrosPerHour = 60 * kMicrosPerMinute;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
constexpr int kMaxRoles = 64;

// What an entry pays for. Level entries carry their level number apart.
enum class Kind : uint8_t { kLevel, kLeader, kPeer, kRankBonus, kInviteReward };

// Which caps cut an entry, for its explanation.
enum CutBits : uint8_t {
  kCutOrderTotal = 1,
  kCutMemberMonth = 2,
  kCutBudget = 4,
  kCutMaxRewards = 8,
};

std::string KindName(Kind kind, int level) {
  switch (kind) {
    case Kind::kLevel:
      return absl::StrCat("level", level);
    case Kind::kLeader:
      return "leader";
    case Kind::kPeer:
      return "peer";
    case Kind::kRankBonus:
      return "rank_bonus";
    case Kind::kInviteReward:
      return "invite_reward";
  }
  return "unknown";
}

// Sort key of a kind inside one order: level1, level2, …, then the rest in
// SPEC §3.5 priority order.
int KindRank(Kind kind, int level) {
  return kind == Kind::kLevel ? level : 1000 + static_cast<int>(kind);
}

absl::Status Error(absl::StatusCode code, std::string_view reason, const std::string& message) {
  return MakeError(code, reason, message);
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string TimeText(int64_t micros, absl::TimeZone zone) {
  return FormatTimestamp(absl::FromUnixMicros(micros), zone);
}

}  // namespace

const char* EntryStatusName(EntryStatus status) {
  switch (status) {
    case EntryStatus::kPending:
      return "pending";
    case EntryStatus::kFrozen:
      return "frozen";
    case EntryStatus::kAvailable:
      return "available";
    case EntryStatus::kHeld:
      return "held";
  }
  return "pending";
}

const char* FlagKindName(FlagKind kind) {
  switch (kind) {
    case FlagKind::kSharedIdentity:
      return "shared_identity";
    case FlagKind::kSplitOrders:
      return "split_orders";
    case FlagKind::kVelocity:
      return "velocity";
    case FlagKind::kRefundRate:
      return "refund_rate";
    case FlagKind::kCapOrder:
      return "cap_order";
    case FlagKind::kCapMember:
      return "cap_member";
    case FlagKind::kBudgetExhausted:
      return "budget_exhausted";
    case FlagKind::kInvalidInvite:
      return "invalid_invite";
  }
  return "unknown";
}

class Engine::Impl {
  friend class Engine;                   // Snapshot and Restore reach Save and Load
  friend struct internal::EngineAccess;  // SettleBatch reaches ApplyBatch

 public:
  explicit Impl(Policy policy) : policy_(std::move(policy)) { Plan(); }

  absl::Status Apply(const Event& event) {
    std::string canonical;
    if (event.event_id) {
      canonical = EventToJson(event);
      REFPAY_RETURN_IF_ERROR(CheckEventId(*event.event_id, &canonical));
    }
    // ParseEventJson applies these limits; an Event built in code gets them here.
    REFPAY_RETURN_IF_ERROR(internal::CheckEventStrings(event));
    REFPAY_RETURN_IF_ERROR(Dispatch(event));
    if (event.event_id) event_ids_.emplace(*event.event_id, std::move(canonical));
    return absl::OkStatus();
  }

  absl::Status ApplyJson(std::string_view text) {
    absl::StatusOr<internal::Json> object = internal::ParseJsonText(text, "event");
    if (!object.ok()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "bad_event",
                       internal::AsStd(object.status().message()));
    }
    absl::StatusOr<Event> event = internal::EventFromJson(*object);
    if (!event.ok() && object->is_object()) {
      // A malformed copy of an applied event is a conflict, not a shape
      // error: the id is what the sender relies on.
      auto id = object->find("event_id");
      if (id != object->end() && id->is_string() && event_ids_.contains(id->get<std::string>())) {
        return Error(absl::StatusCode::kAlreadyExists, "conflicting_event",
                     absl::StrCat("event_id \"", id->get<std::string>(),
                                  "\" was applied with different content"));
      }
    }
    if (!event.ok() && ErrorCodeOf(event.status()) == "bad_amount") {
      // The amount is read last, so the time is valid: time order is
      // judged before field values (docs/decisions.md, validation order).
      absl::StatusOr<absl::Time> at = ParseTimestamp(object->at("at").get<std::string>());
      if (at.ok() && Micros(*at) < last_at_)
        return OutOfOrder(object->at("type").get<std::string>(), Micros(*at));
    }
    if (!event.ok()) return event.status();
    return Apply(*event);
  }

  absl::StatusOr<std::vector<LedgerRow>> Ledger(absl::Time as_of) const {
    REFPAY_RETURN_IF_ERROR(CheckAsOf(as_of));
    const int64_t now = Micros(as_of);
    std::vector<LedgerRow> rows;
    rows.reserve(entries_.size() + clawbacks_.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      LedgerRow row;
      if (e.order >= 0) row.order = order_ids_[e.order];
      row.member = member_ids_[e.member];
      row.kind = KindName(e.kind, e.level);
      row.amount = Money::FromFen(e.amount);
      row.status = StatusOf(e, now);
      if (e.action != 0) row.action = static_cast<Action>(e.action);
      row.at = absl::FromUnixMicros(EntryTime(static_cast<int32_t>(i)));
      row.explanation = ExplainEntry(static_cast<int32_t>(i));
      rows.push_back(std::move(row));
    }
    for (const Clawback& c : clawbacks_) {
      const Entry& e = entries_[c.entry];
      LedgerRow row;
      row.order = order_ids_[e.order];
      row.member = member_ids_[e.member];
      row.kind = KindName(e.kind, e.level);
      row.amount = Money::FromFen(-c.amount);
      row.status = EntryStatus::kAvailable;
      row.clawback = true;
      row.at = absl::FromUnixMicros(c.at);
      row.explanation = absl::StrCat("clawback of ", Money::FromFen(c.amount).ToString(),
                                     " after a refund of an available entry (追回)");
      rows.push_back(std::move(row));
    }
    return rows;
  }

  absl::StatusOr<std::vector<NetRow>> NetLedger(absl::Time as_of) const {
    REFPAY_RETURN_IF_ERROR(CheckAsOf(as_of));
    const int64_t now = Micros(as_of);
    struct Key {
      int32_t order_rank;
      int32_t member;
      int kind_rank;
      EntryStatus status;
      int32_t entry;  // a representative entry, for names
    };
    absl::flat_hash_map<std::tuple<int32_t, int32_t, int, int>, int64_t> sums;
    std::vector<Key> keys;
    auto add = [&](int32_t entry_index, EntryStatus status, int64_t amount) -> absl::Status {
      const Entry& e = entries_[entry_index];
      const int32_t order_rank = e.order >= 0 ? e.order : std::numeric_limits<int32_t>::max();
      const int kind_rank = KindRank(e.kind, e.level);
      auto [it, inserted] = sums.try_emplace(
          std::make_tuple(order_rank, e.member, kind_rank, static_cast<int>(status)), 0);
      if (inserted) keys.push_back({order_rank, e.member, kind_rank, status, entry_index});
      if (__builtin_add_overflow(it->second, amount, &it->second)) {
        return Error(absl::StatusCode::kOutOfRange, "overflow", "ledger sum overflows");
      }
      return absl::OkStatus();
    };
    for (size_t i = 0; i < entries_.size(); ++i) {
      REFPAY_RETURN_IF_ERROR(
          add(static_cast<int32_t>(i), StatusOf(entries_[i], now), entries_[i].amount));
    }
    for (const Clawback& c : clawbacks_) {
      REFPAY_RETURN_IF_ERROR(add(c.entry, EntryStatus::kAvailable, -c.amount));
    }
    std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
      if (a.order_rank != b.order_rank) return a.order_rank < b.order_rank;
      if (a.member != b.member) return member_ids_[a.member] < member_ids_[b.member];
      if (a.kind_rank != b.kind_rank) return a.kind_rank < b.kind_rank;
      return a.status < b.status;
    });
    std::vector<NetRow> rows;
    for (const Key& key : keys) {
      const int64_t amount = sums.at(
          std::make_tuple(key.order_rank, key.member, key.kind_rank, static_cast<int>(key.status)));
      if (amount == 0) continue;
      const Entry& e = entries_[key.entry];
      NetRow row;
      if (e.order >= 0) row.order = order_ids_[e.order];
      row.member = member_ids_[e.member];
      row.kind = KindName(e.kind, e.level);
      row.amount = Money::FromFen(amount);
      row.status = key.status;
      rows.push_back(std::move(row));
    }
    return rows;
  }

  absl::StatusOr<std::vector<BalanceRow>> Balances(absl::Time as_of) const {
    REFPAY_ASSIGN_OR_RETURN(std::vector<NetRow> net, NetLedger(as_of));
    // Dense per-member sums, then members in id order.
    std::vector<std::array<int64_t, 4>> sums(member_ids_.size(), {0, 0, 0, 0});
    std::vector<int32_t> touched;
    for (const NetRow& row : net) {
      const int32_t m = *member_ids_.Find(row.member);
      if (sums[m] == std::array<int64_t, 4>{0, 0, 0, 0}) touched.push_back(m);
      int64_t& slot = sums[m][static_cast<int>(row.status)];
      if (__builtin_add_overflow(slot, row.amount.fen(), &slot)) {
        return Error(absl::StatusCode::kOutOfRange, "overflow", "balance overflows");
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    std::sort(touched.begin(), touched.end(),
              [&](int32_t a, int32_t b) { return member_ids_[a] < member_ids_[b]; });
    std::vector<BalanceRow> rows;
    for (int32_t m : touched) {
      for (int s = 0; s < 4; ++s) {
        if (sums[m][s] == 0) continue;
        rows.push_back({member_ids_[m], static_cast<EntryStatus>(s), Money::FromFen(sums[m][s])});
      }
    }
    return rows;
  }

  absl::StatusOr<MemberTotals> Totals(absl::Time as_of) const {
    REFPAY_RETURN_IF_ERROR(CheckAsOf(as_of));
    const int64_t now = Micros(as_of);
    MemberTotals totals;
    std::array<std::vector<int64_t>*, 4> columns = {&totals.pending, &totals.frozen,
                                                    &totals.available, &totals.held};
    for (auto* column : columns) column->assign(member_ids_.size(), 0);
    auto add = [&](int32_t member, EntryStatus status, int64_t amount) -> absl::Status {
      int64_t& slot = (*columns[static_cast<int>(status)])[member];
      if (__builtin_add_overflow(slot, amount, &slot)) {
        return Error(absl::StatusCode::kOutOfRange, "overflow", "a member total overflows");
      }
      return absl::OkStatus();
    };
    for (const Entry& e : entries_)
      REFPAY_RETURN_IF_ERROR(add(e.member, StatusOf(e, now), e.amount));
    for (const Clawback& c : clawbacks_) {
      REFPAY_RETURN_IF_ERROR(add(entries_[c.entry].member, EntryStatus::kAvailable, -c.amount));
    }
    return totals;
  }

  absl::StatusOr<LedgerColumns> LedgerTable(absl::Time as_of) const {
    REFPAY_RETURN_IF_ERROR(CheckAsOf(as_of));
    const int64_t now = Micros(as_of);
    LedgerColumns table;
    const size_t rows = entries_.size() + clawbacks_.size();
    table.order.reserve(rows);
    table.member.reserve(rows);
    table.kind.reserve(rows);
    table.amount.reserve(rows);
    table.rule_amount.reserve(rows);
    table.status.reserve(rows);
    table.action.reserve(rows);
    table.clawback.reserve(rows);
    // Kind codes: level n → n - 1 would leave gaps; number kinds as met.
    absl::flat_hash_map<int, uint8_t> kind_codes;
    auto kind_code = [&](const Entry& e) {
      auto [it, inserted] = kind_codes.try_emplace(KindRank(e.kind, e.level), 0);
      if (inserted) {
        it->second = static_cast<uint8_t>(table.kind_names.size());
        table.kind_names.push_back(KindName(e.kind, e.level));
      }
      return it->second;
    };
    auto push = [&](const Entry& e, int64_t amount, EntryStatus status, bool clawback) {
      table.order.push_back(e.order);
      table.member.push_back(e.member);
      table.kind.push_back(kind_code(e));
      table.amount.push_back(amount);
      table.rule_amount.push_back(clawback ? 0 : e.raw);
      table.status.push_back(static_cast<uint8_t>(status));
      table.action.push_back(e.action);
      table.clawback.push_back(clawback ? 1 : 0);
    };
    for (const Entry& e : entries_) push(e, e.amount, StatusOf(e, now), false);
    for (const Clawback& c : clawbacks_)
      push(entries_[c.entry], -c.amount, EntryStatus::kAvailable, true);
    return table;
  }

  absl::Span<const std::string> member_ids() const { return member_ids_.ids(); }
  absl::Span<const std::string> order_ids() const { return order_ids_.ids(); }

  std::vector<internal::IndexedFlag> FlagIndices() const {
    std::vector<internal::IndexedFlag> out;
    out.reserve(flags_.size());
    for (const FlagRecord& f : flags_) out.push_back({FlagKindName(f.kind), f.member, f.order});
    return out;
  }

  std::vector<Flag> Flags() const {
    std::vector<Flag> out;
    out.reserve(flags_.size());
    for (const FlagRecord& f : flags_) {
      Flag flag{std::string(FlagKindName(f.kind)), member_ids_[f.member], std::nullopt};
      if (f.order >= 0) flag.order = order_ids_[f.order];
      out.push_back(std::move(flag));
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> Explain(std::string_view order_id) const {
    const std::optional<int32_t> order = order_ids_.Find(order_id);
    if (!order) {
      return Error(absl::StatusCode::kNotFound, "unknown_order",
                   absl::StrCat("no order \"", std::string(order_id), "\""));
    }
    const OrderRecord& o = orders_[*order];
    std::vector<std::string> lines;
    for (int32_t i = o.first_entry; i < o.first_entry + o.entry_count; ++i) {
      lines.push_back(ExplainEntry(i));
    }
    return lines;
  }

  std::optional<absl::Time> last_event_time() const {
    if (last_at_ == kNever) return std::nullopt;
    return absl::FromUnixMicros(last_at_);
  }

  const Policy& policy() const { return policy_; }
  int32_t member_count() const { return tree_.size(); }
  int32_t order_count() const { return static_cast<int32_t>(orders_.size()); }

 private:
  // ---- Plan: the policy compiled to dense rule ids and role bits. --------

  struct LevelPlan {
    int32_t rule = -1;
    std::vector<std::pair<int, int32_t>> by_rank;  // role bit → rule
  };
  struct RuleSetPlan {
    std::vector<LevelPlan> levels;
    const LeaderRule* leader = nullptr;
    int32_t leader_rule = -1;                      // nearest scheme
    std::vector<int> rank_bits;                    // differential: role bit per rank
    std::vector<std::vector<int32_t>> diff_rules;  // [rank][previous rank + 1]
    int32_t peer_rule = -1;
  };

  int32_t AddRule(const AmountRule* rule) {
    rules_.push_back(rule);
    return static_cast<int32_t>(rules_.size() - 1);
  }

  int32_t AddSyntheticRate(Rate rate, std::string path) {
    AmountRule rule;
    rule.kind = AmountRule::Kind::kRate;
    rule.rate = rate;
    rule.path = std::move(path);
    synthetic_.push_back(std::move(rule));
    return AddRule(&synthetic_.back());
  }

  // Role names the policy mentions get bits first, so the leader mask is
  // complete before any event arrives.
  int RoleBit(const std::string& name) {
    auto it = role_bits_.find(name);
    if (it != role_bits_.end()) return it->second;
    if (role_names_.size() >= kMaxRoles) return -1;
    role_names_.push_back(name);
    const int bit = static_cast<int>(role_names_.size() - 1);
    role_bits_.emplace(name, bit);
    return bit;
  }

  RuleSetPlan PlanRuleSet(const RuleSet& rules) {
    RuleSetPlan plan;
    for (const LevelRule& level : rules.levels) {
      LevelPlan level_plan;
      level_plan.rule = AddRule(&level.amount);
      for (const auto& [rank, rule] : level.by_rank) {
        level_plan.by_rank.emplace_back(RoleBit(rank), AddRule(&rule));
      }
      plan.levels.push_back(std::move(level_plan));
    }
    if (!rules.leader) return plan;
    const LeaderRule& leader = *rules.leader;
    plan.leader = &leader;
    if (leader.scheme == LeaderRule::Scheme::kNearest) {
      plan.leader_rule = AddRule(&leader.amount);
    } else {
      const size_t n = leader.ranks.size();
      plan.diff_rules.assign(n, std::vector<int32_t>(n + 1, -1));
      for (size_t i = 0; i < n; ++i) {
        const int bit = RoleBit(leader.ranks[i].name);
        plan.rank_bits.push_back(bit);
        leader_mask_ |= uint64_t{1} << bit;
        for (size_t j = 0; j <= i; ++j) {
          // Rank i paid after the highest paid rank so far was j-1 (none if 0).
          const Rate below = j == 0 ? Rate() : leader.ranks[j - 1].rate;
          if (leader.ranks[i].rate <= below) continue;
          std::string path = absl::StrCat(leader.path, ".ranks[", i, "] ", leader.ranks[i].name);
          if (j > 0) absl::StrAppend(&path, " − ranks[", j - 1, "] ", leader.ranks[j - 1].name);
          plan.diff_rules[i][j] =
              AddSyntheticRate(*Rate::FromPpm(leader.ranks[i].rate.ppm() - below.ppm()), path);
        }
      }
    }
    if (leader.peer) plan.peer_rule = AddSyntheticRate(*leader.peer, leader.path + ".peer");
    return plan;
  }

  void Plan() {
    synthetic_.clear();
    leader_mask_ = uint64_t{1} << RoleBit("leader");
    if (policy_.eligible_role) eligible_bit_ = RoleBit(*policy_.eligible_role);
    for (const Promotion& p : policy_.promotions) promotion_bits_.push_back(RoleBit(p.grant));
    plans_.push_back(PlanRuleSet(policy_.rules));
    for (const auto& [name, rules] : policy_.by_category) {
      category_plan_.emplace(name, static_cast<int16_t>(plans_.size()));
      plans_.push_back(PlanRuleSet(rules));
    }
    for (const auto& [role, rule] : policy_.rank_bonus) {
      rank_bonus_.emplace_back(RoleBit(role), AddRule(&rule));
    }
    if (policy_.invite_rewards) {
      for (size_t i = 0; i < policy_.invite_rewards->steps.size(); ++i) {
        AmountRule rule;
        rule.kind = AmountRule::Kind::kFixed;
        rule.fixed = policy_.invite_rewards->steps[i].reward;
        rule.path = absl::StrCat("invite_rewards.steps[", i, "]");
        synthetic_.push_back(std::move(rule));
        invite_step_rules_.push_back(AddRule(&synthetic_.back()));
      }
    }
    hold_micros_ = policy_.hold_days * kMicrosPerDay;
    uses_.binding_time = policy_.binding == Policy::BindingMode::kProtected;
    uses_.buyer_orders = policy_.checks.split_orders.has_value() ||
                         (policy_.invite_rewards && policy_.invite_rewards->requires_purchase);
    uses_.referred_orders = !policy_.promotions.empty();
    for (const Promotion& p : policy_.promotions) uses_.own_spend |= p.own_spend.has_value();
    uses_.level1_stats = policy_.checks.refund_rate.has_value();
    uses_.invites = policy_.invite_rewards.has_value();
    uses_.arrivals = policy_.checks.velocity.has_value();
  }

  // Which optional per-member columns the policy reads.
  struct Uses {
    bool binding_time = false;     // bound_at_: protected binding
    bool buyer_orders = false;     // last_order_: split_orders, requires_purchase
    bool referred_orders = false;  // last_referred_, live counts: promotions
    bool own_spend = false;        // own_spend_: own_spend promotions
    bool level1_stats = false;     // level1_orders_/_refunded_: refund_rate
    bool invites = false;          // valid_invites_: invite rewards
    bool arrivals = false;         // velocity_hit_, last_arrival_: velocity
  };

  // ---- State. -------------------------------------------------------------

  struct OrderRecord {
    int64_t at = 0;
    int64_t confirmed_at = kNever;
    int64_t amount = 0;
    int64_t refunded = 0;
    int32_t buyer = -1;
    int32_t referrer = -1;  // buyer's inviter when the order was placed
    int32_t level1 = -1;    // the level-1 beneficiary, if any
    int32_t first_entry = 0;
    int32_t prev_by_buyer = -1;  // the buyer's previous order
    int32_t prev_referred = -1;  // the referrer's previous referred order
    int16_t entry_count = 0;
    int16_t rule_set = 0;
  };

  // One ledger entry; 48 bytes. `amount` shrinks on refunds before the
  // entry is available; later refunds are Clawback rows.
  struct Entry {
    int64_t raw = 0;     // the rule's amount at order time, before checks and caps
    int64_t paid = 0;    // what was paid at order time, after checks and caps
    int64_t amount = 0;  // current amount of the entry itself
    int32_t order = -1;  // -1 for invite rewards
    int32_t member = -1;
    int32_t rule = -1;
    Kind kind = Kind::kLevel;
    uint8_t level = 0;
    uint8_t action = 0;  // 0 or Action
    uint8_t cuts = 0;    // CutBits
    uint8_t checks = 0;  // bit per FlagKind of the checks that hit
  };

  struct Clawback {
    int32_t entry;
    int64_t amount;  // positive: what was taken back
    int64_t at;
  };

  struct FlagRecord {
    FlagKind kind;
    int32_t member;
    int32_t order;
  };

  // An entry being computed for the current order, before it is committed.
  struct Pending {
    int32_t member;
    int32_t rule;
    Kind kind;
    uint8_t level;
    int64_t raw;
    int64_t paid;
    uint8_t action;
    uint8_t cuts;
    uint8_t checks;
  };

  // ---- Events. ------------------------------------------------------------

  absl::Status CheckEventId(const std::string& id, const std::string* canonical) const {
    auto it = event_ids_.find(id);
    if (it == event_ids_.end()) return absl::OkStatus();
    if (it->second == *canonical) {
      return Error(absl::StatusCode::kAlreadyExists, "duplicate_event",
                   absl::StrCat("event_id \"", id, "\" was already applied"));
    }
    return Error(absl::StatusCode::kAlreadyExists, "conflicting_event",
                 absl::StrCat("event_id \"", id, "\" was applied with different content"));
  }

  absl::Status CheckAsOf(absl::Time as_of) const {
    if (last_at_ != kNever && Micros(as_of) < last_at_) {
      return Error(
          absl::StatusCode::kInvalidArgument, "bad_as_of",
          absl::StrCat("as_of ", FormatTimestamp(as_of, policy_.timezone),
                       " precedes the last event at ", TimeText(last_at_, policy_.timezone)));
    }
    return absl::OkStatus();
  }

  absl::Status OutOfOrder(std::string_view type, int64_t at) const {
    return Error(absl::StatusCode::kFailedPrecondition, "out_of_order",
                 absl::StrCat(std::string(type), " at ", TimeText(at, policy_.timezone),
                              " is earlier than the previous event at ",
                              TimeText(last_at_, policy_.timezone)));
  }

  absl::Status CheckTime(EventType type, int64_t at) const {
    return at < last_at_ ? OutOfOrder(EventTypeName(type), at) : absl::OkStatus();
  }

  absl::Status Dispatch(const Event& event) {
    const int64_t at = Micros(event.at);
    REFPAY_RETURN_IF_ERROR(CheckTime(event.type, at));
    absl::Status status;
    switch (event.type) {
      case EventType::kJoin:
        status = Join(event, at);
        break;
      case EventType::kRebind:
        status = Rebind(event, at);
        break;
      case EventType::kSetRole:
        status = SetRole(event, true);
        break;
      case EventType::kUnsetRole:
        status = SetRole(event, false);
        break;
      case EventType::kOrder:
        status = PlaceOrder(event, at);
        break;
      case EventType::kConfirm:
        status = Confirm(event, at);
        break;
      case EventType::kRefund:
        status = Refund(event, at);
        break;
    }
    if (status.ok()) last_at_ = at;
    return status;
  }

  absl::StatusOr<int32_t> FindMember(const internal::IdIndex::Key& key,
                                     std::string_view field) const {
    const std::optional<int32_t> m = member_ids_.Find(key);
    if (!m) {
      return Error(
          absl::StatusCode::kNotFound, "unknown_member",
          absl::StrCat(std::string(field), " \"", internal::AsAbsl(key.id), "\" has not joined"));
    }
    return *m;
  }
  absl::StatusOr<int32_t> FindMember(std::string_view id, std::string_view field) const {
    return FindMember(member_ids_.KeyOf(id), field);
  }

  absl::StatusOr<int32_t> FindOrder(const std::string& id) const {
    const std::optional<int32_t> order = order_ids_.Find(id);
    if (!order) {
      return Error(absl::StatusCode::kNotFound, "unknown_order",
                   absl::StrCat("order \"", id, "\" was never placed"));
    }
    return *order;
  }

  static int32_t Intern(absl::flat_hash_map<std::string, int32_t>& table, std::string_view value) {
    if (value.empty()) return 0;
    if (auto it = table.find(internal::AsAbsl(value)); it != table.end()) return it->second;
    const auto next = static_cast<int32_t>(table.size() + 1);
    table.emplace(std::string(value), next);
    return next;
  }

  static absl::Status DuplicateMember(std::string_view id) {
    return Error(absl::StatusCode::kAlreadyExists, "duplicate_member",
                 absl::StrCat("member \"", internal::AsAbsl(id), "\" has already joined"));
  }

  absl::Status Join(const Event& event, int64_t at) {
    // Both keys first, so their buckets load together (id_index.h).
    const internal::IdIndex::Key member_key = member_ids_.KeyOf(event.member);
    const std::optional<internal::IdIndex::Key> inviter_key =
        event.inviter ? std::optional(member_ids_.KeyOf(*event.inviter)) : std::nullopt;
    if (member_ids_.Contains(member_key)) return DuplicateMember(event.member);
    int32_t inviter = -1;
    if (inviter_key) {
      REFPAY_ASSIGN_OR_RETURN(inviter, FindMember(*inviter_key, "inviter"));
    }
    member_ids_.Add(member_key);
    const Identity& id = event.identity;
    JoinResolved(inviter, at, {id.region, id.device, id.phone, id.payment});
    return absl::OkStatus();
  }

  // Adds the member whose id was added last to member_ids_, under `inviter`
  // (-1 for none), which has joined: the part of a join shared by events and
  // batches. Cannot fail.
  int32_t JoinResolved(int32_t inviter, int64_t at,
                       const std::array<std::string_view, 4>& identity) {
    const int32_t m = tree_.Add(MemberIndex(inviter)).value();
    roles_.push_back(0);
    explicit_rank_.push_back(-1);
    region_.push_back(Intern(identity_values_[0], identity[0]));
    identity_.push_back({Intern(identity_values_[1], identity[1]),
                         Intern(identity_values_[2], identity[2]),
                         Intern(identity_values_[3], identity[3])});
    // Columns only some policies read are kept only for those policies.
    if (uses_.binding_time) bound_at_.push_back(at);
    if (uses_.buyer_orders) last_order_.push_back(-1);
    if (uses_.referred_orders) {
      last_referred_.push_back(-1);
      live_referred_orders_.push_back(0);
      live_referred_buyers_.push_back(0);
    }
    if (uses_.own_spend) own_spend_.push_back(0);
    if (uses_.level1_stats) {
      level1_orders_.push_back(0);
      level1_refunded_.push_back(0);
    }
    if (uses_.invites) valid_invites_.push_back(0);
    if (uses_.arrivals) {
      velocity_hit_.push_back(0);
      last_arrival_.push_back(-1);
    }
    if (inviter >= 0) {
      Arrive(inviter, at);
      if (policy_.invite_rewards && !policy_.invite_rewards->requires_purchase) {
        CountInvite(m, inviter, at);
      }
    }
    return m;
  }

  absl::Status Rebind(const Event& event, int64_t at) {
    REFPAY_ASSIGN_OR_RETURN(const int32_t m, FindMember(event.member, "member"));
    REFPAY_ASSIGN_OR_RETURN(const int32_t inviter, FindMember(*event.inviter, "inviter"));
    switch (policy_.binding) {
      case Policy::BindingMode::kPermanent:
        return Error(
            absl::StatusCode::kFailedPrecondition, "rebind_forbidden",
            absl::StrCat("binding.mode is permanent: \"", event.member, "\" cannot be rebound"));
      case Policy::BindingMode::kProtected: {
        const int64_t until = bound_at_[m] + policy_.protection_days * kMicrosPerDay;
        if (at < until) {
          return Error(absl::StatusCode::kFailedPrecondition, "rebind_forbidden",
                       absl::StrCat("the binding of \"", event.member, "\" is protected until ",
                                    TimeText(until, policy_.timezone)));
        }
        break;
      }
      case Policy::BindingMode::kFree:
        break;
    }
    if (tree_.Parent(MemberIndex(m)).value() == inviter) return absl::OkStatus();
    if (tree_.IsInSubtree(MemberIndex(inviter), MemberIndex(m))) {
      return Error(absl::StatusCode::kFailedPrecondition, "cycle",
                   absl::StrCat("binding \"", event.member, "\" under \"", *event.inviter,
                                "\" would make a cycle: \"", *event.inviter, "\" is ",
                                inviter == m ? "the member itself" : "its descendant"));
    }
    tree_.Move(MemberIndex(m), MemberIndex(inviter));
    if (uses_.binding_time) bound_at_[m] = at;
    Arrive(inviter, at);
    return absl::OkStatus();
  }

  absl::Status SetRole(const Event& event, bool grant) {
    REFPAY_ASSIGN_OR_RETURN(const int32_t m, FindMember(event.member, "member"));
    return SetRoleResolved(m, event.role, event.rank, grant);
  }

  absl::Status SetRoleResolved(int32_t m, const std::string& role,
                               const std::optional<std::string>& rank, bool grant) {
    auto known = role_bits_.find(role);
    if (!grant) {
      if (known == role_bits_.end()) return absl::OkStatus();
      roles_[m] &= ~(uint64_t{1} << known->second);
      if (role == "leader") explicit_rank_[m] = -1;
      tree_.SetLeader(MemberIndex(m), (roles_[m] & leader_mask_) != 0);
      return absl::OkStatus();
    }
    const int bit = RoleBit(role);
    const int rank_bit = rank ? RoleBit(*rank) : -1;
    if (bit < 0 || (rank && rank_bit < 0)) {
      return Error(absl::StatusCode::kResourceExhausted, "bad_event",
                   absl::StrCat("more than ", kMaxRoles, " distinct role names"));
    }
    roles_[m] |= uint64_t{1} << bit;
    if (rank) explicit_rank_[m] = static_cast<int8_t>(rank_bit);
    tree_.SetLeader(MemberIndex(m), (roles_[m] & leader_mask_) != 0);
    return absl::OkStatus();
  }

  bool Holds(int32_t m, int bit) const {
    return bit >= 0 && (((roles_[m] >> bit) & 1) != 0 || explicit_rank_[m] == bit);
  }

  // The rank index of a leader under a differential plan: its explicit rank
  // if listed, else the highest listed rank it holds as a role, else the
  // lowest rank.
  int RankIndex(int32_t m, const RuleSetPlan& plan) const {
    const int n = static_cast<int>(plan.rank_bits.size());
    if (explicit_rank_[m] >= 0) {
      for (int i = 0; i < n; ++i) {
        if (plan.rank_bits[i] == explicit_rank_[m]) return i;
      }
      return 0;
    }
    for (int i = n - 1; i >= 0; --i) {
      if (((roles_[m] >> plan.rank_bits[i]) & 1) != 0) return i;
    }
    return 0;
  }

  // Visits the leaders above `buyer` nearest first (the buyer itself first
  // with include_self), within max_depth ancestors; stops when `visit`
  // returns false.
  template <typename Visit>
  void ForEachLeaderUp(int32_t buyer, const LeaderRule& leader, Visit visit) const {
    if (leader.include_self && tree_.IsLeader(MemberIndex(buyer)) && !visit(buyer)) return;
    if (leader.max_depth) {
      MemberIndex m(buyer);
      for (int depth = 0; depth < *leader.max_depth; ++depth) {
        m = tree_.Parent(m);
        if (!m.valid()) return;
        if (tree_.IsLeader(m) && !visit(m.value())) return;
      }
      return;
    }
    for (MemberIndex m = tree_.NearestLeaderAbove(MemberIndex(buyer)); m.valid();
         m = tree_.NearestLeaderAbove(m)) {
      if (!visit(m.value())) return;
    }
  }

  // Fills pending_ with the beneficiaries and rule amounts of an order.
  void ComputeEntries(int32_t buyer, const RuleSetPlan& plan, Money base) {
    pending_.clear();
    const RoundingMode rounding = policy_.rounding;
    auto add = [&](int32_t member, int32_t rule, Kind kind, int level, int64_t raw) {
      pending_.push_back({member, rule, kind, static_cast<uint8_t>(level), raw, 0, 0, 0, 0});
    };
    // Levels (分销层级): walk up from the buyer's inviter, or the buyer
    // itself under self_purchase. The member after the cursor comes from
    // the buyer's own node while it can (tree.h), so the first two levels
    // cost one cache miss, not a chain of two.
    const MemberIndex parent = tree_.Parent(MemberIndex(buyer));
    MemberIndex cursor = policy_.self_purchase ? MemberIndex(buyer) : parent;
    std::optional<MemberIndex> known_next =  // the member after the cursor, while known
        policy_.self_purchase ? parent : tree_.Grandparent(MemberIndex(buyer));
    size_t level = 0;
    while (level < plan.levels.size() && cursor.valid()) {
      const int32_t m = cursor.value();
      if (eligible_bit_ < 0 || Holds(m, eligible_bit_)) {
        const LevelPlan& level_plan = plan.levels[level];
        int32_t rule = level_plan.rule;
        for (const auto& [bit, rank_rule] : level_plan.by_rank) {
          if (Holds(m, bit)) {
            rule = rank_rule;
            break;
          }
        }
        add(m, rule, Kind::kLevel, static_cast<int>(level + 1),
            rules_[rule]->Compute(base, rounding).amount.fen());
        ++level;
      } else if (!policy_.eligible_compress) {
        ++level;  // 不压缩: the level stays unpaid
      }
      // Only a level still to pay reads another node: a load nobody needs
      // still holds up the order while it misses.
      if (level == plan.levels.size()) break;
      cursor = known_next ? *known_next : tree_.Parent(cursor);
      known_next.reset();
    }
    // Team leader (队长奖) and peer (平级奖). The peer bonus goes to the
    // leader visited right after the first paid one.
    if (plan.leader != nullptr) {
      const LeaderRule& leader = *plan.leader;
      const bool differential = leader.scheme == LeaderRule::Scheme::kDifferential;
      const bool want_peer = plan.peer_rule >= 0;
      const int top = static_cast<int>(plan.rank_bits.size()) - 1;
      int first_paid = -1;  // index in pending_ of the first paid leader
      int highest = -1;     // highest rank index paid so far
      int32_t peer = -1;
      bool done_paying = false;
      ForEachLeaderUp(buyer, leader, [&](int32_t m) {
        if (first_paid >= 0 && want_peer && peer < 0) peer = m;
        if (!done_paying) {
          int32_t rule = plan.leader_rule;
          if (differential) {
            const int rank = RankIndex(m, plan);
            rule = rank > highest ? plan.diff_rules[rank][highest + 1] : -1;
            if (rule >= 0) highest = rank;
            done_paying = highest == top;
          } else {
            done_paying = true;
          }
          if (rule >= 0) {
            if (first_paid < 0) first_paid = static_cast<int>(pending_.size());
            add(m, rule, Kind::kLeader, 0, rules_[rule]->Compute(base, rounding).amount.fen());
          }
        }
        return !done_paying || (want_peer && first_paid >= 0 && peer < 0);
      });
      if (peer >= 0) {
        const Int128 exact =
            ExactProduct(Money::FromFen(pending_[first_paid].raw), rules_[plan.peer_rule]->rate);
        add(peer, plan.peer_rule, Kind::kPeer, 0, RoundProduct(exact, rounding).fen());
      }
    }
    // Rank bonus (感谢红包) to the level-1 beneficiary.
    if (!pending_.empty() && pending_[0].kind == Kind::kLevel && pending_[0].level == 1) {
      const int32_t beneficiary = pending_[0].member;
      for (const auto& [bit, rule] : rank_bonus_) {
        if (Holds(beneficiary, bit)) {
          add(beneficiary, rule, Kind::kRankBonus, 0,
              rules_[rule]->Compute(base, rounding).amount.fen());
          break;
        }
      }
    }
  }

  static void Hit(Pending& p, FlagKind kind, Action action) {
    p.checks |= static_cast<uint8_t>(1u << static_cast<int>(kind));
    p.action = static_cast<uint8_t>(Strongest(
        p.action == 0 ? std::nullopt : std::optional<Action>(static_cast<Action>(p.action)),
        action));
  }

  // Applies the checks to pending_ and records their flags in new_flags_.
  void ApplyChecks(int32_t buyer, int64_t at, int32_t order) {
    const Checks& checks = policy_.checks;
    bool split = false;
    if (checks.split_orders) {
      const int64_t since = at - checks.split_orders->window_minutes * kMicrosPerMinute;
      int64_t count = 0;
      for (int32_t o = last_order_[buyer]; o >= 0 && orders_[o].at >= since;
           o = orders_[o].prev_by_buyer) {
        if (++count >= checks.split_orders->max_orders) break;
      }
      split = count >= checks.split_orders->max_orders;
    }
    for (Pending& p : pending_) {
      if (checks.shared_identity && p.member != buyer &&
          SharesIdentity(identity_[buyer], identity_[p.member])) {
        Hit(p, FlagKind::kSharedIdentity, *checks.shared_identity);
      }
      if (split) Hit(p, FlagKind::kSplitOrders, checks.split_orders->action);
      if (checks.refund_rate && level1_orders_[p.member] >= checks.refund_rate->min_orders &&
          RefundShareExceeds(level1_refunded_[p.member], level1_orders_[p.member],
                             checks.refund_rate->max_share)) {
        Hit(p, FlagKind::kRefundRate, checks.refund_rate->action);
      }
      for (int k = 0; k < 8; ++k) {
        if ((p.checks >> k) & 1) AddFlag(static_cast<FlagKind>(k), p.member, order);
      }
    }
  }

  // Records a cap flag of the current event: one per entry a cap reduces
  // (SPEC §3.5), so two cut entries of one member on one order are two flags.
  void AddCapFlag(FlagKind kind, int32_t member, int32_t order) {
    new_flags_.push_back({kind, member, order});
  }

  // Records a check flag of the current event once per (check, member, order).
  void AddFlag(FlagKind kind, int32_t member, int32_t order) {
    for (const FlagRecord& f : new_flags_) {
      if (f.kind == kind && f.member == member && f.order == order) return;
    }
    new_flags_.push_back({kind, member, order});
  }

  int32_t MonthOf(int64_t at) {
    if (at >= month_start_ && at < month_end_) return month_index_;
    const absl::CivilMonth month(absl::ToCivilSecond(absl::FromUnixMicros(at), policy_.timezone));
    month_start_ = Micros(absl::FromCivil(absl::CivilSecond(month), policy_.timezone));
    month_end_ = Micros(absl::FromCivil(absl::CivilSecond(month + 1), policy_.timezone));
    month_index_ = static_cast<int32_t>(month.year() * 12 + month.month() - 1);
    return month_index_;
  }

  static uint64_t MonthKey(int32_t member, int32_t month) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(member)) << 32) |
           static_cast<uint32_t>(month);
  }

  // member_month and budget, shared by orders and invite rewards. `added`
  // holds what this event already took per member (not yet committed).
  void ApplyRunCaps(Pending& p, int64_t at, int32_t order,
                    std::vector<std::pair<int32_t, int64_t>>& added, int64_t& budget_added) {
    if (p.paid <= 0) return;
    if (policy_.cap_member_month) {
      int64_t used = 0;
      if (auto it = month_used_.find(MonthKey(p.member, MonthOf(at))); it != month_used_.end())
        used = it->second;
      for (const auto& [member, amount] : added) {
        if (member == p.member) used += amount;
      }
      const int64_t room = std::max<int64_t>(0, policy_.cap_member_month->fen() - used);
      if (p.paid > room) {
        p.paid = room;
        p.cuts |= kCutMemberMonth;
        AddCapFlag(FlagKind::kCapMember, p.member, order);
      }
    }
    if (policy_.cap_budget) {
      const int64_t room =
          std::max<int64_t>(0, policy_.cap_budget->fen() - budget_used_ - budget_added);
      if (p.paid > room) {
        p.paid = room;
        p.cuts |= kCutBudget;
        AddCapFlag(FlagKind::kBudgetExhausted, p.member, order);
      }
    }
    added.emplace_back(p.member, p.paid);
    budget_added += p.paid;
  }

  void CommitRunCaps(int32_t member, int64_t at, int64_t amount) {
    if (amount == 0) return;
    if (policy_.cap_member_month) month_used_[MonthKey(member, MonthOf(at))] += amount;
    // Bounded by the budget; without one the total is not needed (and could
    // exceed int64 where every balance still fits).
    if (policy_.cap_budget) budget_used_ += amount;
  }

  void ReleaseRunCaps(int32_t member, int64_t at, int64_t amount) {
    if (policy_.cap_member_month) month_used_[MonthKey(member, MonthOf(at))] -= amount;
    if (policy_.cap_budget) budget_used_ -= amount;
  }

  // Fills each pending entry's `paid` from its raw amount, within the
  // order_total cap of `base`, in priority order; denied entries take no room.
  void FillOrderTotal(Money base) {
    const std::optional<Rate>& cap = policy_.cap_order_total;
    int64_t room = cap ? ApplyRate(base, *cap, RoundingMode::kDown).fen()
                       : std::numeric_limits<int64_t>::max();
    for (Pending& p : pending_) {
      p.paid = p.action == static_cast<uint8_t>(Action::kDeny) ? 0 : p.raw;
      if (p.paid > room) {
        p.paid = room;
        p.cuts |= kCutOrderTotal;
      }
      room -= p.paid;
    }
  }

  static absl::Status DuplicateOrder(std::string_view id) {
    return Error(absl::StatusCode::kAlreadyExists, "duplicate_order",
                 absl::StrCat("order \"", internal::AsAbsl(id), "\" was already placed"));
  }

  // Field values before references (docs/decisions.md, validation order).
  static absl::Status CheckOrderAmount(std::string_view order_id, std::optional<Money> amount) {
    if (amount && amount->is_positive()) return absl::OkStatus();
    return Error(
        absl::StatusCode::kInvalidArgument, "bad_amount",
        absl::StrCat("order \"", internal::AsAbsl(order_id), "\" amount must be positive, got ",
                     amount ? amount->ToString() : "nothing"));
  }

  absl::Status PlaceOrder(const Event& event, int64_t at) {
    REFPAY_RETURN_IF_ERROR(CheckOrderAmount(event.order, event.amount));
    // Both keys first, so their buckets load together (id_index.h).
    const internal::IdIndex::Key order_key = order_ids_.KeyOf(event.order);
    const internal::IdIndex::Key buyer_key = member_ids_.KeyOf(event.buyer);
    if (order_ids_.Contains(order_key)) return DuplicateOrder(event.order);
    REFPAY_ASSIGN_OR_RETURN(const int32_t buyer, FindMember(buyer_key, "buyer"));
    REFPAY_RETURN_IF_ERROR(PlaceOrderResolved(
        buyer, *event.amount, at,
        event.category ? std::optional<std::string_view>(*event.category) : std::nullopt));
    order_ids_.Add(order_key);
    return absl::OkStatus();
  }

  // Places an order of a positive amount whose id is new and whose buyer
  // has joined: the part of an order shared by events and batches. The
  // caller records the id (as order number orders_.size() before the call)
  // once this succeeds. The category is only looked up, so a view serves
  // both paths without building a string per order.
  absl::Status PlaceOrderResolved(int32_t buyer, Money base, int64_t at,
                                  std::optional<std::string_view> category) {
    int64_t new_spend = 0;
    if (uses_.own_spend && __builtin_add_overflow(own_spend_[buyer], base.fen(), &new_spend)) {
      return Error(absl::StatusCode::kOutOfRange, "overflow", "the buyer's total spend overflows");
    }
    int16_t rule_set = 0;
    if (category && !category_plan_.empty()) {
      if (auto it = category_plan_.find(internal::AsAbsl(*category)); it != category_plan_.end())
        rule_set = it->second;
    }
    const auto order = static_cast<int32_t>(orders_.size());
    const RuleSetPlan& plan = plans_[rule_set];
    new_flags_.clear();
    ComputeEntries(buyer, plan, base);
    ApplyChecks(buyer, at, order);
    FillOrderTotal(base);
    for (const Pending& p : pending_) {
      if (p.cuts & kCutOrderTotal) AddCapFlag(FlagKind::kCapOrder, p.member, order);
    }
    month_added_.clear();
    int64_t budget_added = 0;
    for (Pending& p : pending_) ApplyRunCaps(p, at, order, month_added_, budget_added);

    // Commit: nothing below can fail.
    OrderRecord record;
    record.at = at;
    record.amount = base.fen();
    record.buyer = buyer;
    record.referrer = tree_.Parent(MemberIndex(buyer)).value();
    record.first_entry = static_cast<int32_t>(entries_.size());
    record.entry_count = static_cast<int16_t>(pending_.size());
    record.rule_set = rule_set;
    bool first_order = false;
    if (uses_.buyer_orders) {
      record.prev_by_buyer = last_order_[buyer];
      first_order = last_order_[buyer] < 0;
      last_order_[buyer] = order;
    }
    if (!pending_.empty() && pending_[0].kind == Kind::kLevel && pending_[0].level == 1) {
      record.level1 = pending_[0].member;
      if (uses_.level1_stats) ++level1_orders_[record.level1];
    }
    if (uses_.referred_orders && record.referrer >= 0) {
      record.prev_referred = last_referred_[record.referrer];
      last_referred_[record.referrer] = order;
    }
    orders_.push_back(record);
    if (uses_.own_spend) own_spend_[buyer] = new_spend;
    for (const Pending& p : pending_) {
      entries_.push_back({p.raw, p.paid, p.paid, order, p.member, p.rule, p.kind, p.level, p.action,
                          p.cuts, p.checks});
      CommitRunCaps(p.member, at, p.paid);
    }
    flags_.insert(flags_.end(), new_flags_.begin(), new_flags_.end());
    if (uses_.referred_orders && record.referrer >= 0) CountLiveReferred(order, +1);
    if (first_order && policy_.invite_rewards && policy_.invite_rewards->requires_purchase &&
        record.referrer >= 0) {
      CountInvite(buyer, record.referrer, at);
    }
    Promote(buyer, at);
    if (record.referrer >= 0) Promote(record.referrer, at);
    return absl::OkStatus();
  }

  // ---- Promotions (超级用户). -------------------------------------------

  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  // Keeps the all-time counts of live (not fully refunded) referred orders
  // and buyers; `delta` is +1 when an order is placed, -1 when it is fully
  // refunded.
  void CountLiveReferred(int32_t order, int delta) {
    const OrderRecord& o = orders_[order];
    live_referred_orders_[o.referrer] += delta;
    int32_t& per_buyer = live_orders_by_pair_[PairKey(o.referrer, o.buyer)];
    if ((delta > 0 && per_buyer == 0) || (delta < 0 && per_buyer == 1)) {
      live_referred_buyers_[o.referrer] += delta;
    }
    per_buyer += delta;
  }

  bool MeetsPromotion(int32_t m, const Promotion& p, int64_t now) {
    if (p.own_spend && own_spend_[m] < p.own_spend->fen()) return false;
    if (!p.referred_orders && !p.referred_buyers) return true;
    int64_t orders = live_referred_orders_[m];
    int64_t buyers = live_referred_buyers_[m];
    if (p.window_days) {
      const int64_t since = now - *p.window_days * kMicrosPerDay;
      scratch_buyers_.clear();
      orders = 0;
      for (int32_t o = last_referred_[m]; o >= 0 && orders_[o].at >= since;
           o = orders_[o].prev_referred) {
        if (orders_[o].refunded == orders_[o].amount) continue;
        ++orders;
        scratch_buyers_.push_back(orders_[o].buyer);
      }
      std::sort(scratch_buyers_.begin(), scratch_buyers_.end());
      buyers =
          std::unique(scratch_buyers_.begin(), scratch_buyers_.end()) - scratch_buyers_.begin();
    }
    return (!p.referred_orders || orders >= *p.referred_orders) &&
           (!p.referred_buyers || buyers >= *p.referred_buyers);
  }

  void Promote(int32_t m, int64_t now) {
    for (size_t i = 0; i < policy_.promotions.size(); ++i) {
      const int bit = promotion_bits_[i];
      if (bit < 0 || ((roles_[m] >> bit) & 1) != 0) continue;
      if (!MeetsPromotion(m, policy_.promotions[i], now)) continue;
      roles_[m] |= uint64_t{1} << bit;
      tree_.SetLeader(MemberIndex(m), (roles_[m] & leader_mask_) != 0);
    }
  }

  // ---- Invite rewards (裂变奖励) and velocity. ----------------------------

  struct Arrival {
    int64_t at;
    int32_t prev;
  };

  // Records that `inviter` gained a direct invitee and runs the velocity
  // check, which then covers the invite rewards from this moment on.
  void Arrive(int32_t inviter, int64_t at) {
    if (!uses_.arrivals) return;
    arrivals_.push_back({at, last_arrival_[inviter]});
    last_arrival_[inviter] = static_cast<int32_t>(arrivals_.size() - 1);
    const auto& velocity = policy_.checks.velocity;
    if (velocity_hit_[inviter]) return;
    const int64_t since = at - velocity->window_hours * kMicrosPerHour;
    int64_t count = 0;
    for (int32_t a = last_arrival_[inviter]; a >= 0 && arrivals_[a].at >= since;
         a = arrivals_[a].prev)
      ++count;
    if (count > velocity->max_invites) {
      velocity_hit_[inviter] = 1;
      flags_.push_back({FlagKind::kVelocity, inviter, -1});
    }
  }

  void AddRunFlag(FlagKind kind, int32_t member) {
    if (run_flags_seen_.insert(PairKey(static_cast<int32_t>(kind), member)).second) {
      flags_.push_back({kind, member, -1});
    }
  }

  void CountInvite(int32_t invitee, int32_t inviter, int64_t at) {
    const InviteRewards& rewards = *policy_.invite_rewards;
    const bool region_ok =
        !rewards.same_region || (region_[invitee] != 0 && region_[invitee] == region_[inviter]);
    const bool identity_ok = !(rewards.distinct_identity || policy_.checks.shared_identity) ||
                             !SharesIdentity(identity_[invitee], identity_[inviter]);
    if (!region_ok || !identity_ok) {
      AddRunFlag(FlagKind::kInvalidInvite, invitee);
      return;
    }
    const int32_t count = ++valid_invites_[inviter];
    for (size_t i = 0; i < rewards.steps.size(); ++i) {
      if (rewards.steps[i].at != count) continue;
      Pending p{inviter,
                invite_step_rules_[i],
                Kind::kInviteReward,
                0,
                rewards.steps[i].reward.fen(),
                0,
                0,
                0,
                0};
      if (uses_.arrivals && velocity_hit_[inviter])
        Hit(p, FlagKind::kVelocity, policy_.checks.velocity->action);
      p.paid = p.action == static_cast<uint8_t>(Action::kDeny) ? 0 : p.raw;
      new_flags_.clear();
      if (p.paid > 0 && rewards.max_rewards && rewards_paid_ >= *rewards.max_rewards) {
        p.paid = 0;
        p.cuts |= kCutMaxRewards;
        AddCapFlag(FlagKind::kBudgetExhausted, inviter, -1);
      }
      month_added_.clear();
      int64_t budget_added = 0;
      ApplyRunCaps(p, at, -1, month_added_, budget_added);
      flags_.insert(flags_.end(), new_flags_.begin(), new_flags_.end());
      if (p.paid > 0) ++rewards_paid_;
      const auto index = static_cast<int32_t>(entries_.size());
      entries_.push_back(
          {p.raw, p.paid, p.paid, -1, inviter, p.rule, p.kind, 0, p.action, p.cuts, p.checks});
      reward_time_.emplace(index, at);
      CommitRunCaps(inviter, at, p.paid);
    }
  }

  // ---- Batches (SettleBatch): rows applied by dense index. ---------------

  // Applies the merged rows of a batch. Each step runs the checks of its
  // event in the same order and with the same messages as Apply(); rows are
  // found by index instead of by id, except where a row was rejected and
  // the event path would find an earlier member or order of the same id.
  void ApplyBatch(const std::vector<internal::BatchStep>& steps, const BatchMembersView& members,
                  const BatchOrdersView& orders, std::vector<BatchError>& errors,
                  internal::BatchRowMap& rows) {
    const auto m = static_cast<int32_t>(members.inviter.size());
    const auto n = static_cast<int32_t>(orders.buyer.size());
    Reserve(m, n, /*populate=*/false);
    std::vector<int32_t>& member_of_row = rows.member_of_row;
    std::vector<int32_t>& order_of_row = rows.order_of_row;
    member_of_row.assign(m, -1);
    order_of_row.assign(n, -1);
    // Row-number ids given to an engine without ids of that kind cannot
    // repeat, so they skip the duplicate check and the hashing.
    const bool new_member_ids =
        members.ids.empty() && members.int_ids.empty() && member_ids_.size() == 0;
    const bool new_order_ids =
        orders.ids.empty() && orders.int_ids.empty() && order_ids_.size() == 0;
    // Integer ids, or else row numbers, are written as decimal strings into
    // a scratch string per table.
    std::string member_scratch;
    std::string order_scratch;
    auto id_of = [&](const TextColumn& ids, int32_t row) -> std::string_view {
      if (!ids.empty()) return ids[row];
      const bool of_members = &ids == &members.ids;
      const absl::Span<const int64_t> int_ids = of_members ? members.int_ids : orders.int_ids;
      std::string& scratch = of_members ? member_scratch : order_scratch;
      scratch = int_ids.empty() ? absl::StrCat(row) : absl::StrCat(int_ids[row]);
      return scratch;
    };
    auto member_at = [&](int32_t row, std::string_view field) -> absl::StatusOr<int32_t> {
      if (member_of_row[row] >= 0) return member_of_row[row];
      return FindMember(id_of(members.ids, row), field);
    };
    auto order_at = [&](int32_t row) -> absl::StatusOr<int32_t> {
      if (order_of_row[row] >= 0) return order_of_row[row];
      return FindOrder(std::string(id_of(orders.ids, row)));
    };
    auto text = [](const TextColumn& column, int32_t row) -> std::string_view {
      return column.empty() ? std::string_view() : column[row];
    };
    for (size_t i = 0; i < steps.size(); ++i) {
      TouchAhead(steps, i, orders, member_of_row);
      const internal::BatchStep& step = steps[i];
      const int32_t row = step.row;
      const bool member_row = step.type == EventType::kJoin;
      absl::Status status;
      switch (step.type) {
        case EventType::kJoin:
          status =
              JoinRow(step.at, row, new_member_ids, members, member_of_row, id_of, member_at, text);
          if (status.ok() || !HasRole(members, row)) break;
          // A rejected join still grants its role to a member of that id,
          // as the separate join and set_role events would.
          errors.push_back({"members", row, ErrorCodeOf(status), std::string(status.message())});
          status = RoleRow(step.at, row, members, member_at);
          break;
        case EventType::kOrder: {
          const int32_t buyer_row = orders.buyer[row];
          if (buyer_row < 0 || buyer_row >= m) {
            status = MakeError(absl::StatusCode::kNotFound, "unknown_member",
                               absl::StrCat("buyer row ", buyer_row, " is out of range"));
            break;
          }
          const std::string_view id = id_of(orders.ids, row);
          const Money amount = Money::FromFen(orders.amount[row]);
          status = internal::CheckEventText("id", id, true);
          if (status.ok() && !members.ids.empty() && member_of_row[buyer_row] < 0)
            status = internal::CheckEventText("buyer", members.ids[buyer_row], true);
          if (status.ok() && !orders.category.empty())
            status = internal::CheckEventText("category", orders.category[row], false);
          if (status.ok()) status = CheckTime(EventType::kOrder, step.at);
          if (status.ok()) status = CheckOrderAmount(id, amount);
          if (!status.ok()) break;
          // The id is taken before the buyer is looked up, as the event path
          // checks duplicate_order first, and given back if the order is
          // rejected.
          std::optional<int32_t> index;
          if (new_order_ids) {
            index = order_ids_.AddUnindexed(std::string(id));
          } else if (index = order_ids_.TryAdd(id); !index) {
            status = DuplicateOrder(id);
            break;
          }
          absl::StatusOr<int32_t> buyer = member_at(buyer_row, "buyer");
          const std::string_view category = text(orders.category, row);
          status = buyer.ok() ? PlaceOrderResolved(*buyer, amount, step.at,
                                                   category.empty()
                                                       ? std::nullopt
                                                       : std::optional<std::string_view>(category))
                              : buyer.status();
          if (status.ok()) {
            order_of_row[row] = *index;
          } else {
            order_ids_.RemoveLast();
          }
          break;
        }
        case EventType::kConfirm:
        case EventType::kRefund: {
          const std::optional<Money> refund =
              step.type == EventType::kRefund
                  ? std::optional<Money>(Money::FromFen(orders.refund_amount[row]))
                  : std::nullopt;
          status = orders.ids.empty() || order_of_row[row] >= 0
                       ? absl::OkStatus()
                       : internal::CheckEventText("order", orders.ids[row], true);
          if (status.ok()) status = CheckTime(step.type, step.at);
          if (status.ok()) status = CheckRefundAmount(id_of(orders.ids, row), refund);
          if (!status.ok()) break;
          absl::StatusOr<int32_t> order = order_at(row);
          if (!order.ok()) {
            status = order.status();
          } else if (step.type == EventType::kConfirm) {
            ConfirmResolved(*order, step.at);
          } else {
            status = RefundResolved(*order, refund, step.at);
          }
          break;
        }
        default:
          break;
      }
      if (status.ok()) {
        last_at_ = step.at;
      } else {
        errors.push_back({member_row ? "members" : "orders", row, ErrorCodeOf(status),
                          std::string(status.message())});
      }
    }
  }

  // An order's entries walk the buyer's ancestors: a chain of dependent
  // loads at random places in the member columns, each a cache (and TLB)
  // miss on a large tree. A batch knows its next orders, so it loads their
  // links a few steps ahead, one link per stage: the buyer's row, the
  // buyer, its inviter. The loads overlap instead of queueing.
  void TouchAhead(const std::vector<internal::BatchStep>& steps, size_t i,
                  const BatchOrdersView& orders, const std::vector<int32_t>& member_of_row) const {
    constexpr size_t kRow = 16;
    constexpr size_t kBuyer = 8;
    constexpr size_t kInviter = 4;
    auto buyer_row = [&](size_t ahead) -> int32_t {
      if (i + ahead >= steps.size() || steps[i + ahead].type != EventType::kOrder) return -1;
      const int32_t row = orders.buyer[steps[i + ahead].row];
      return row >= 0 && static_cast<size_t>(row) < member_of_row.size() ? row : -1;
    };
    if (const int32_t row = buyer_row(kRow); row >= 0) {
      asm volatile("" : : "r"(member_of_row[row]));
    }
    if (const int32_t row = buyer_row(kBuyer); row >= 0 && member_of_row[row] >= 0) {
      tree_.Touch(MemberIndex(member_of_row[row]));
    }
    if (const int32_t row = buyer_row(kInviter); row >= 0 && member_of_row[row] >= 0) {
      const MemberIndex inviter = tree_.Parent(MemberIndex(member_of_row[row]));
      if (inviter.valid()) tree_.Touch(inviter);
    }
  }

  static bool HasRole(const BatchMembersView& members, int32_t row) {
    return !members.role.empty() && !members.role[row].empty();
  }

  // The join of member `row` (and its role, if any) in a batch.
  template <typename IdOf, typename MemberAt, typename Text>
  absl::Status JoinRow(int64_t at, int32_t row, bool new_id, const BatchMembersView& members,
                       std::vector<int32_t>& member_of_row, IdOf& id_of, MemberAt& member_at,
                       Text& text) {
    const int32_t inviter_row = members.inviter[row];
    if (inviter_row < -1 || inviter_row >= static_cast<int64_t>(member_of_row.size())) {
      return MakeError(absl::StatusCode::kNotFound, "unknown_member",
                       absl::StrCat("inviter row ", inviter_row, " is out of range"));
    }
    // Shape (bad_event) before time, as for events.
    std::string id(id_of(members.ids, row));
    REFPAY_RETURN_IF_ERROR(internal::CheckEventText("member", id, true));
    for (const auto& [field, column] :
         {std::pair{"region", &members.region}, std::pair{"device", &members.device},
          std::pair{"phone", &members.phone}, std::pair{"payment", &members.payment}}) {
      REFPAY_RETURN_IF_ERROR(internal::CheckEventText(field, text(*column, row), false));
    }
    // A member that joined passed these checks with its id, so only the id
    // of a row that did not join is checked again where it is named.
    if (inviter_row >= 0 && !members.ids.empty() && member_of_row[inviter_row] < 0) {
      REFPAY_RETURN_IF_ERROR(internal::CheckEventText("inviter", members.ids[inviter_row], true));
    }
    REFPAY_RETURN_IF_ERROR(CheckTime(EventType::kJoin, at));
    if (!new_id && member_ids_.Contains(id)) return DuplicateMember(id);
    int32_t inviter = -1;
    if (inviter_row >= 0) {
      REFPAY_ASSIGN_OR_RETURN(inviter, member_at(inviter_row, "inviter"));
    }
    if (new_id) {
      member_ids_.AddUnindexed(std::move(id));
    } else {
      member_ids_.Add(std::move(id));
    }
    member_of_row[row] = JoinResolved(inviter, at,
                                      {text(members.region, row), text(members.device, row),
                                       text(members.phone, row), text(members.payment, row)});
    last_at_ = at;
    if (!HasRole(members, row)) return absl::OkStatus();
    return RoleRow(at, row, members, member_at);
  }

  // The role of member `row` in a batch: a set_role event at its join time.
  template <typename MemberAt>
  absl::Status RoleRow(int64_t at, int32_t row, const BatchMembersView& members,
                       MemberAt& member_at) {
    if (!members.ids.empty()) {
      REFPAY_RETURN_IF_ERROR(internal::CheckEventText("member", members.ids[row], true));
    }
    REFPAY_RETURN_IF_ERROR(internal::CheckEventText("role", members.role[row], true));
    std::optional<std::string> rank;
    if (!members.rank.empty() && !members.rank[row].empty()) {
      REFPAY_RETURN_IF_ERROR(internal::CheckEventText("rank", members.rank[row], true));
      rank = std::string(members.rank[row]);
    }
    REFPAY_RETURN_IF_ERROR(CheckTime(EventType::kSetRole, at));
    REFPAY_ASSIGN_OR_RETURN(const int32_t m, member_at(row, "member"));
    return SetRoleResolved(m, std::string(members.role[row]), rank, true);
  }

  // Sizes the columns for `members` more members and `orders` more orders,
  // the ledger for one entry per level and one for the leader of the
  // default rule set per order; `populate` also faults their pages in
  // (Engine::Reserve). The caller checked the totals fit an int32 index.
  void Reserve(int32_t members, int32_t orders, bool populate) {
    const auto size = [populate](size_t n, auto&... columns) {
      (columns.reserve(n), ...);
      if (populate) (internal::PopulateCapacity(columns), ...);
    };
    const int32_t total = member_ids_.size() + members;
    tree_.Reserve(total);
    member_ids_.Reserve(total, populate);
    size(total, roles_, explicit_rank_, region_, identity_);
    if (uses_.binding_time) size(total, bound_at_);
    if (uses_.buyer_orders) size(total, last_order_);
    if (uses_.referred_orders)
      size(total, last_referred_, live_referred_orders_, live_referred_buyers_);
    if (uses_.own_spend) size(total, own_spend_);
    if (uses_.level1_stats) size(total, level1_orders_, level1_refunded_);
    if (uses_.invites) size(total, valid_invites_);
    if (uses_.arrivals) size(total, velocity_hit_, last_arrival_);
    size(orders_.size() + orders, orders_);
    order_ids_.Reserve(order_ids_.size() + orders, populate);
    const size_t per_order = plans_[0].levels.size() + (plans_[0].leader != nullptr ? 1 : 0);
    size(entries_.size() + per_order * orders, entries_);
  }

  // ---- Settlement: confirm and refund. -----------------------------------

  absl::Status Confirm(const Event& event, int64_t at) {
    REFPAY_ASSIGN_OR_RETURN(const int32_t order, FindOrder(event.order));
    ConfirmResolved(order, at);
    return absl::OkStatus();
  }

  void ConfirmResolved(int32_t order, int64_t at) {
    if (orders_[order].confirmed_at == kNever) orders_[order].confirmed_at = at;
  }

  bool AvailableAt(const Entry& e, int64_t now) const {
    if (e.action == static_cast<uint8_t>(Action::kHold)) return false;
    if (e.order < 0) return true;
    const int64_t confirmed = orders_[e.order].confirmed_at;
    return confirmed != kNever && confirmed <= now && now - confirmed >= hold_micros_;
  }

  EntryStatus StatusOf(const Entry& e, int64_t now) const {
    if (e.action == static_cast<uint8_t>(Action::kHold)) return EntryStatus::kHeld;
    if (AvailableAt(e, now)) return EntryStatus::kAvailable;
    if (e.order < 0) return EntryStatus::kAvailable;
    const int64_t confirmed = orders_[e.order].confirmed_at;
    return confirmed != kNever && confirmed <= now ? EntryStatus::kFrozen : EntryStatus::kPending;
  }

  int64_t Clawed(int32_t entry) const {
    auto it = clawed_.find(entry);
    return it == clawed_.end() ? 0 : it->second;
  }

  // Recomputes an order's entries on `base` with the rules and roles of
  // order time: raw amounts, denials kept, order_total re-filled. A fully
  // refunded order pays nothing, fixed amounts included.
  void Recompute(const OrderRecord& o, Money base) {
    pending_.clear();
    for (int32_t i = o.first_entry; i < o.first_entry + o.entry_count; ++i) {
      const Entry& e = entries_[i];
      int64_t raw = 0;
      if (base.is_zero()) {
        raw = 0;
      } else if (e.kind == Kind::kPeer) {
        // Peer pays a rate of the first leader entry's recomputed amount.
        int64_t leader_raw = 0;
        for (const Pending& p : pending_) {
          if (p.kind == Kind::kLeader) {
            leader_raw = p.raw;
            break;
          }
        }
        raw = RoundProduct(ExactProduct(Money::FromFen(leader_raw), rules_[e.rule]->rate),
                           policy_.rounding)
                  .fen();
      } else {
        raw = rules_[e.rule]->Compute(base, policy_.rounding).amount.fen();
      }
      pending_.push_back({e.member, e.rule, e.kind, e.level, raw, 0, e.action, 0, 0});
    }
    FillOrderTotal(base);
  }

  // Field values before references (docs/decisions.md, validation order).
  static absl::Status CheckRefundAmount(std::string_view order_id, std::optional<Money> refund) {
    if (!refund || refund->is_positive()) return absl::OkStatus();
    return Error(absl::StatusCode::kInvalidArgument, "bad_amount",
                 absl::StrCat("refund of order \"", internal::AsAbsl(order_id),
                              "\": amount must be positive, got ", refund->ToString()));
  }

  absl::Status Refund(const Event& event, int64_t at) {
    REFPAY_RETURN_IF_ERROR(CheckRefundAmount(event.order, event.amount));
    REFPAY_ASSIGN_OR_RETURN(const int32_t order, FindOrder(event.order));
    return RefundResolved(order, event.amount, at);
  }

  // Refunds `refund` (all that is left if absent; positive) of a placed
  // order.
  absl::Status RefundResolved(int32_t order, std::optional<Money> refund, int64_t at) {
    OrderRecord& o = orders_[order];
    const int64_t left = o.amount - o.refunded;
    const int64_t amount = refund ? refund->fen() : left;
    if (left == 0 || amount > left) {
      return Error(
          absl::StatusCode::kFailedPrecondition, "over_refund",
          absl::StrCat("order \"", order_ids_[order], "\" has ", Money::FromFen(left).ToString(),
                       " left to refund; cannot refund ", Money::FromFen(amount).ToString()));
    }
    const bool first_refund = o.refunded == 0;
    o.refunded += amount;
    if (uses_.own_spend) own_spend_[o.buyer] -= amount;
    refunds_[order].emplace_back(at, amount);
    if (uses_.level1_stats && first_refund && o.level1 >= 0) ++level1_refunded_[o.level1];
    if (uses_.referred_orders && o.refunded == o.amount && o.referrer >= 0) {
      CountLiveReferred(order, -1);
    }
    Recompute(o, Money::FromFen(o.amount - o.refunded));
    for (int32_t k = 0; k < o.entry_count; ++k) {
      const int32_t index = o.first_entry + k;
      Entry& e = entries_[index];
      const int64_t net = e.amount - Clawed(index);
      const int64_t target = std::min(net, pending_[k].paid);
      if (target >= net) continue;
      const int64_t freed = net - target;
      if (AvailableAt(e, at)) {
        clawed_[index] += freed;
        clawbacks_.push_back({index, freed, at});
      } else {
        e.amount -= freed;
      }
      ReleaseRunCaps(e.member, o.at, freed);
    }
    return absl::OkStatus();
  }

  // ---- Snapshot (see Engine::Snapshot for the format). -------------------

  template <typename K, typename V, typename Put>
  static void PutSortedMap(internal::ByteWriter& w, const absl::flat_hash_map<K, V>& map, Put put) {
    std::vector<std::pair<K, V>> items(map.begin(), map.end());
    std::sort(items.begin(), items.end());  // never emit hash order
    w.Put<uint64_t>(items.size());
    for (const auto& item : items) put(item);
  }

  void Save(internal::ByteWriter& w) const {
    w.PutString(policy_.document);
    w.PutStrings(role_names_);
    // Members.
    w.PutStrings(member_ids_.ids());
    std::vector<int32_t> parents;
    std::vector<uint8_t> leaders;
    for (int32_t m = 0; m < tree_.size(); ++m) {
      parents.push_back(tree_.Parent(MemberIndex(m)).value());
      leaders.push_back(tree_.IsLeader(MemberIndex(m)) ? 1 : 0);
    }
    w.PutVector(parents);
    w.PutVector(leaders);
    w.PutVector(roles_);
    w.PutVector(explicit_rank_);
    w.PutVector(region_);
    for (const IdentityKey& key : identity_) {
      w.Put(key.device);
      w.Put(key.phone);
      w.Put(key.payment);
    }
    for (const auto& values : identity_values_) {
      PutSortedMap(w, values, [&](const auto& item) {
        w.PutString(item.first);
        w.Put(item.second);
      });
    }
    w.PutVector(bound_at_);
    w.PutVector(last_order_);
    w.PutVector(last_referred_);
    w.PutVector(own_spend_);
    w.PutVector(level1_orders_);
    w.PutVector(level1_refunded_);
    w.PutVector(valid_invites_);
    w.PutVector(velocity_hit_);
    w.PutVector(last_arrival_);
    w.Put<uint64_t>(arrivals_.size());
    for (const Arrival& a : arrivals_) {
      w.Put(a.at);
      w.Put(a.prev);
    }
    w.PutVector(live_referred_orders_);
    w.PutVector(live_referred_buyers_);
    PutSortedMap(w, live_orders_by_pair_, [&](const auto& item) {
      w.Put(item.first);
      w.Put(item.second);
    });
    // Orders and the ledger.
    w.PutStrings(order_ids_.ids());
    for (const OrderRecord& o : orders_) {
      for (int64_t v : {o.at, o.confirmed_at, o.amount, o.refunded}) w.Put(v);
      for (int32_t v :
           {o.buyer, o.referrer, o.level1, o.first_entry, o.prev_by_buyer, o.prev_referred}) {
        w.Put(v);
      }
      w.Put(o.entry_count);
      w.Put(o.rule_set);
    }
    w.Put<uint64_t>(entries_.size());
    for (const Entry& e : entries_) {
      for (int64_t v : {e.raw, e.paid, e.amount}) w.Put(v);
      for (int32_t v : {e.order, e.member, e.rule}) w.Put(v);
      for (uint8_t v : {static_cast<uint8_t>(e.kind), e.level, e.action, e.cuts, e.checks})
        w.Put(v);
    }
    w.Put<uint64_t>(clawbacks_.size());
    for (const Clawback& c : clawbacks_) {
      w.Put(c.entry);
      w.Put(c.amount);
      w.Put(c.at);
    }
    PutSortedMap(w, clawed_, [&](const auto& item) {
      w.Put(item.first);
      w.Put(item.second);
    });
    PutSortedMap(w, reward_time_, [&](const auto& item) {
      w.Put(item.first);
      w.Put(item.second);
    });
    PutSortedMap(w, refunds_, [&](const auto& item) {
      w.Put(item.first);
      w.Put<uint64_t>(item.second.size());
      for (const auto& [at, amount] : item.second) {
        w.Put(at);
        w.Put(amount);
      }
    });
    w.Put<uint64_t>(flags_.size());
    for (const FlagRecord& f : flags_) {
      w.Put(static_cast<uint8_t>(f.kind));
      w.Put(f.member);
      w.Put(f.order);
    }
    std::vector<uint64_t> seen(run_flags_seen_.begin(), run_flags_seen_.end());
    std::sort(seen.begin(), seen.end());
    w.PutVector(seen);
    // Caps and run state.
    PutSortedMap(w, month_used_, [&](const auto& item) {
      w.Put(item.first);
      w.Put(item.second);
    });
    w.Put(budget_used_);
    w.Put(rewards_paid_);
    PutSortedMap(w, event_ids_, [&](const auto& item) {
      w.PutString(item.first);
      w.PutString(item.second);
    });
    w.Put(last_at_);
  }

  // Reads what Save wrote into this freshly planned engine; any shortfall
  // or inconsistency is a bad_snapshot error and leaves nothing half-read
  // visible (the caller discards this engine).
  absl::Status Load(internal::ByteReader& r) {
    auto bad = [](std::string_view what) {
      return MakeError(absl::StatusCode::kDataLoss, "bad_snapshot",
                       absl::StrCat("snapshot is corrupt or truncated: ", std::string(what)));
    };
    std::vector<std::string> roles;
    if (!r.GetStrings(&roles)) return bad("role names");
    if (roles.size() < role_names_.size() || roles.size() > kMaxRoles ||
        !std::equal(role_names_.begin(), role_names_.end(), roles.begin())) {
      return bad("role names do not match the policy");
    }
    for (size_t i = role_names_.size(); i < roles.size(); ++i) RoleBit(roles[i]);

    std::vector<std::string> ids;
    std::vector<int32_t> parents;
    std::vector<uint8_t> leaders;
    if (!r.GetStrings(&ids) || !r.GetVector(&parents) || !r.GetVector(&leaders))
      return bad("members");
    const size_t n = ids.size();
    if (parents.size() != n || !MemberTree::FromParents(parents, leaders, &tree_)) {
      return bad("member tree");
    }
    for (std::string& id : ids) {
      if (member_ids_.Contains(id)) return bad("duplicate member id");
      member_ids_.Add(std::move(id));
    }
    if (!r.GetVector(&roles_) || !r.GetVector(&explicit_rank_) || !r.GetVector(&region_) ||
        roles_.size() != n || explicit_rank_.size() != n || region_.size() != n) {
      return bad("member roles");
    }
    identity_.resize(n);
    for (IdentityKey& key : identity_) {
      if (!r.Get(&key.device) || !r.Get(&key.phone) || !r.Get(&key.payment)) return bad("identity");
    }
    for (auto& values : identity_values_) {
      uint64_t count = 0;
      if (!r.GetCount(&count, 12)) return bad("identity values");
      for (uint64_t i = 0; i < count; ++i) {
        std::string value;
        int32_t code = 0;
        if (!r.GetString(&value) || !r.Get(&code)) return bad("identity values");
        values.emplace(std::move(value), code);
      }
    }
    auto column = [&](auto* values, bool used) {
      return r.GetVector(values) && values->size() == (used ? n : 0);
    };
    if (!column(&bound_at_, uses_.binding_time) || !column(&last_order_, uses_.buyer_orders) ||
        !column(&last_referred_, uses_.referred_orders) || !column(&own_spend_, uses_.own_spend) ||
        !column(&level1_orders_, uses_.level1_stats) ||
        !column(&level1_refunded_, uses_.level1_stats) || !column(&valid_invites_, uses_.invites) ||
        !column(&velocity_hit_, uses_.arrivals) || !column(&last_arrival_, uses_.arrivals)) {
      return bad("member columns");
    }
    uint64_t count = 0;
    if (!r.GetCount(&count, 12)) return bad("arrivals");
    arrivals_.resize(count);
    for (Arrival& a : arrivals_) {
      if (!r.Get(&a.at) || !r.Get(&a.prev)) return bad("arrivals");
    }
    if (!column(&live_referred_orders_, uses_.referred_orders) ||
        !column(&live_referred_buyers_, uses_.referred_orders) || !r.GetCount(&count, 12)) {
      return bad("referred counts");
    }
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t key = 0;
      int32_t value = 0;
      if (!r.Get(&key) || !r.Get(&value)) return bad("referred counts");
      live_orders_by_pair_.emplace(key, value);
    }

    std::vector<std::string> order_ids;
    if (!r.GetStrings(&order_ids)) return bad("orders");
    orders_.resize(order_ids.size());
    for (std::string& id : order_ids) {
      if (order_ids_.Contains(id)) return bad("duplicate order id");
      order_ids_.Add(std::move(id));
    }
    for (OrderRecord& o : orders_) {
      if (!r.Get(&o.at) || !r.Get(&o.confirmed_at) || !r.Get(&o.amount) || !r.Get(&o.refunded) ||
          !r.Get(&o.buyer) || !r.Get(&o.referrer) || !r.Get(&o.level1) || !r.Get(&o.first_entry) ||
          !r.Get(&o.prev_by_buyer) || !r.Get(&o.prev_referred) || !r.Get(&o.entry_count) ||
          !r.Get(&o.rule_set)) {
        return bad("order records");
      }
      if (o.buyer < 0 || o.buyer >= static_cast<int64_t>(n) || o.rule_set < 0 ||
          o.rule_set >= static_cast<int64_t>(plans_.size()) || o.refunded < 0 ||
          o.refunded > o.amount) {
        return bad("order record out of range");
      }
    }
    if (!r.GetCount(&count, 41)) return bad("entries");
    entries_.resize(count);
    for (Entry& e : entries_) {
      uint8_t kind = 0;
      if (!r.Get(&e.raw) || !r.Get(&e.paid) || !r.Get(&e.amount) || !r.Get(&e.order) ||
          !r.Get(&e.member) || !r.Get(&e.rule) || !r.Get(&kind) || !r.Get(&e.level) ||
          !r.Get(&e.action) || !r.Get(&e.cuts) || !r.Get(&e.checks)) {
        return bad("entries");
      }
      e.kind = static_cast<Kind>(kind);
      if (kind > static_cast<uint8_t>(Kind::kInviteReward) || e.member < 0 ||
          e.member >= static_cast<int64_t>(n) || e.order < -1 ||
          e.order >= static_cast<int64_t>(orders_.size()) || e.rule < 0 ||
          e.rule >= static_cast<int64_t>(rules_.size()) || e.action > 3) {
        return bad("entry out of range");
      }
    }
    for (const OrderRecord& o : orders_) {
      if (o.first_entry < 0 || o.entry_count < 0 ||
          static_cast<uint64_t>(o.first_entry) + o.entry_count > entries_.size()) {
        return bad("order entries out of range");
      }
    }
    if (!r.GetCount(&count, 20)) return bad("clawbacks");
    clawbacks_.resize(count);
    for (Clawback& c : clawbacks_) {
      if (!r.Get(&c.entry) || !r.Get(&c.amount) || !r.Get(&c.at) || c.entry < 0 ||
          c.entry >= static_cast<int64_t>(entries_.size()) || entries_[c.entry].order < 0) {
        return bad("clawbacks");
      }
    }
    auto read_map = [&](auto* map, std::string_view what) -> absl::Status {
      uint64_t items = 0;
      if (!r.GetCount(&items, 12)) return bad(what);
      for (uint64_t i = 0; i < items; ++i) {
        typename std::decay_t<decltype(*map)>::key_type key{};
        typename std::decay_t<decltype(*map)>::mapped_type value{};
        if (!r.Get(&key) || !r.Get(&value)) return bad(what);
        map->emplace(key, value);
      }
      return absl::OkStatus();
    };
    REFPAY_RETURN_IF_ERROR(read_map(&clawed_, "clawed amounts"));
    REFPAY_RETURN_IF_ERROR(read_map(&reward_time_, "reward times"));
    for (int32_t i = 0; i < static_cast<int32_t>(entries_.size()); ++i) {
      if (entries_[i].order < 0 && !reward_time_.contains(i))
        return bad("invite reward without a time");
    }
    if (!r.GetCount(&count, 12)) return bad("refunds");
    for (uint64_t i = 0; i < count; ++i) {
      int32_t order = 0;
      uint64_t items = 0;
      if (!r.Get(&order) || order < 0 || order >= static_cast<int64_t>(orders_.size()) ||
          !r.GetCount(&items, 16)) {
        return bad("refunds");
      }
      auto& list = refunds_[order];
      list.resize(items);
      for (auto& [at, amount] : list) {
        if (!r.Get(&at) || !r.Get(&amount)) return bad("refunds");
      }
    }
    if (!r.GetCount(&count, 9)) return bad("flags");
    flags_.resize(count);
    for (FlagRecord& f : flags_) {
      uint8_t kind = 0;
      if (!r.Get(&kind) || !r.Get(&f.member) || !r.Get(&f.order) ||
          kind > static_cast<uint8_t>(FlagKind::kInvalidInvite) || f.member < 0 ||
          f.member >= static_cast<int64_t>(n) || f.order < -1 ||
          f.order >= static_cast<int64_t>(orders_.size())) {
        return bad("flags");
      }
      f.kind = static_cast<FlagKind>(kind);
    }
    std::vector<uint64_t> seen;
    if (!r.GetVector(&seen)) return bad("flag keys");
    run_flags_seen_.insert(seen.begin(), seen.end());
    REFPAY_RETURN_IF_ERROR(read_map(&month_used_, "month caps"));
    if (!r.Get(&budget_used_) || !r.Get(&rewards_paid_) || !r.GetCount(&count, 16)) {
      return bad("caps");
    }
    for (uint64_t i = 0; i < count; ++i) {
      std::string id;
      std::string content;
      if (!r.GetString(&id) || !r.GetString(&content)) return bad("event ids");
      event_ids_.emplace(std::move(id), std::move(content));
    }
    if (!r.Get(&last_at_)) return bad("last event time");
    if (!r.empty()) return bad("trailing bytes");
    return absl::OkStatus();
  }

  // ---- Explanations. ------------------------------------------------------

  int64_t EntryTime(int32_t index) const {
    const Entry& e = entries_[index];
    return e.order >= 0 ? orders_[e.order].at : reward_time_.at(index);
  }

  std::string ExplainEntry(int32_t index) const {
    const Entry& e = entries_[index];
    const AmountRule& rule = *rules_[e.rule];
    std::string text = absl::StrCat(KindName(e.kind, e.level), " to ", member_ids_[e.member], ": ");
    if (e.kind == Kind::kPeer) {
      int64_t leader_raw = 0;
      const OrderRecord& o = orders_[e.order];
      for (int32_t i = o.first_entry; i < o.first_entry + o.entry_count; ++i) {
        if (entries_[i].kind == Kind::kLeader) {
          leader_raw = entries_[i].raw;
          break;
        }
      }
      const Int128 exact = ExactProduct(Money::FromFen(leader_raw), rule.rate);
      absl::StrAppend(&text, rule.path, " ", rule.rate.ToString(), " × leader bonus ",
                      Money::FromFen(leader_raw).ToString(), " = ", FormatExact(exact), " → ",
                      Money::FromFen(e.raw).ToString(), " ", RoundingModeName(policy_.rounding));
    } else {
      const Money base = e.order >= 0 ? Money::FromFen(orders_[e.order].amount) : Money();
      absl::StrAppend(&text, rule.Explain(base, policy_.rounding));
    }
    if (e.checks != 0) {
      std::vector<const char*> names;
      for (int k = 0; k < 8; ++k) {
        if ((e.checks >> k) & 1) names.push_back(FlagKindName(static_cast<FlagKind>(k)));
      }
      absl::StrAppend(&text, "; ", ActionName(static_cast<Action>(e.action)), " by ",
                      absl::StrJoin(names, ", "));
    }
    if (e.cuts != 0) {
      std::vector<std::string> caps;
      if (e.cuts & kCutOrderTotal) {
        caps.push_back(absl::StrCat("caps.order_total ", policy_.cap_order_total->ToString()));
      }
      if (e.cuts & kCutMemberMonth) {
        caps.push_back(absl::StrCat("caps.member_month ", policy_.cap_member_month->ToString()));
      }
      if (e.cuts & kCutBudget)
        caps.push_back(absl::StrCat("caps.budget ", policy_.cap_budget->ToString()));
      if (e.cuts & kCutMaxRewards) caps.emplace_back("invite_rewards.max_rewards");
      absl::StrAppend(&text, "; cut to ", Money::FromFen(e.paid).ToString(), " by ",
                      absl::StrJoin(caps, ", "));
    }
    if (e.order >= 0) {
      if (auto it = refunds_.find(e.order); it != refunds_.end()) {
        int64_t refunded = 0;
        for (const auto& [at, amount] : it->second) refunded += amount;
        absl::StrAppend(&text, "; after refunds of ", Money::FromFen(refunded).ToString(),
                        " (base ", Money::FromFen(orders_[e.order].amount - refunded).ToString(),
                        ") ",
                        rule.kind == AmountRule::Kind::kFixed || e.kind == Kind::kPeer
                            ? std::string("recomputed")
                            : rule.Explain(Money::FromFen(orders_[e.order].amount - refunded),
                                           policy_.rounding),
                        ": entry ", Money::FromFen(e.amount).ToString());
        if (const int64_t clawed = Clawed(index); clawed != 0) {
          absl::StrAppend(&text, ", clawed back ", Money::FromFen(clawed).ToString());
        }
      }
    }
    return text;
  }

  Policy policy_;

  // Compiled policy.
  std::vector<const AmountRule*> rules_;
  std::deque<AmountRule> synthetic_;  // deque: addresses stay valid
  std::vector<RuleSetPlan> plans_;
  absl::flat_hash_map<std::string, int16_t> category_plan_;
  std::vector<std::pair<int, int32_t>> rank_bonus_;
  std::vector<int32_t> invite_step_rules_;
  std::vector<int> promotion_bits_;
  absl::flat_hash_map<std::string, int> role_bits_;
  std::vector<std::string> role_names_;
  uint64_t leader_mask_ = 0;
  int eligible_bit_ = -1;
  int64_t hold_micros_ = 0;
  Uses uses_;

  // Members, in dense columns.
  MemberTree tree_;
  internal::IdIndex member_ids_;
  std::vector<uint64_t> roles_;
  std::vector<int8_t> explicit_rank_;
  std::vector<int64_t> bound_at_;
  std::vector<int32_t> region_;
  std::vector<IdentityKey> identity_;
  std::array<absl::flat_hash_map<std::string, int32_t>, 4> identity_values_;
  std::vector<int32_t> last_order_;
  std::vector<int32_t> last_referred_;
  std::vector<int64_t> own_spend_;
  std::vector<int32_t> level1_orders_;
  std::vector<int32_t> level1_refunded_;
  std::vector<int32_t> valid_invites_;
  std::vector<uint8_t> velocity_hit_;
  std::vector<int32_t> last_arrival_;
  std::vector<Arrival> arrivals_;
  std::vector<int32_t> live_referred_orders_;
  std::vector<int32_t> live_referred_buyers_;
  absl::flat_hash_map<uint64_t, int32_t> live_orders_by_pair_;

  // Orders and the ledger: appended to by every order, so in huge pages,
  // where a page fault comes once in thousands of orders, not once in tens
  // (huge_pages.h).
  internal::HugePageVector<OrderRecord> orders_;
  internal::IdIndex order_ids_;
  internal::HugePageVector<Entry> entries_;
  std::vector<Clawback> clawbacks_;
  absl::flat_hash_map<int32_t, int64_t> clawed_;
  absl::flat_hash_map<int32_t, int64_t> reward_time_;
  absl::flat_hash_map<int32_t, std::vector<std::pair<int64_t, int64_t>>> refunds_;
  std::vector<FlagRecord> flags_;
  absl::flat_hash_set<uint64_t> run_flags_seen_;

  // Caps.
  absl::flat_hash_map<uint64_t, int64_t> month_used_;
  int64_t budget_used_ = 0;
  int64_t rewards_paid_ = 0;
  int64_t month_start_ = 0, month_end_ = 0;
  int32_t month_index_ = 0;

  // Run state.
  absl::flat_hash_map<std::string, std::string> event_ids_;
  int64_t last_at_ = kNever;

  // Scratch, kept between events so the hot path does not allocate.
  std::vector<Pending> pending_;
  std::vector<FlagRecord> new_flags_;
  std::vector<std::pair<int32_t, int64_t>> month_added_;
  std::vector<int32_t> scratch_buyers_;
};

Engine::Engine(Policy policy) : impl_(std::make_unique<Impl>(std::move(policy))) {}

namespace internal {

struct EngineAccess {
  static void ApplyBatch(Engine& engine, const std::vector<BatchStep>& steps,
                         const BatchMembersView& members, const BatchOrdersView& orders,
                         std::vector<BatchError>& errors, BatchRowMap& rows) {
    engine.impl_->ApplyBatch(steps, members, orders, errors, rows);
  }
  static std::vector<IndexedFlag> FlagIndices(const Engine& engine) {
    return engine.impl_->FlagIndices();
  }
};

void ApplyBatchSteps(Engine& engine, const std::vector<BatchStep>& steps,
                     const BatchMembersView& members, const BatchOrdersView& orders,
                     std::vector<BatchError>& errors, BatchRowMap& rows) {
  EngineAccess::ApplyBatch(engine, steps, members, orders, errors, rows);
}

std::vector<IndexedFlag> FlagIndices(const Engine& engine) {
  return EngineAccess::FlagIndices(engine);
}

}  // namespace internal

namespace {
constexpr std::string_view kSnapshotMagic = "REFPAYSN";
constexpr size_t kMagicBytes = kSnapshotMagic.size();
constexpr uint32_t kSnapshotVersion = 1;

uint32_t Crc32(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}
}  // namespace

std::string Engine::Snapshot() const {
  internal::ByteWriter payload;
  impl_->Save(payload);
  internal::ByteWriter out;
  out.bytes().append(kSnapshotMagic);
  out.Put(kSnapshotVersion);
  out.Put<uint64_t>(payload.bytes().size());
  out.bytes().append(payload.bytes());
  out.Put(Crc32(payload.bytes()));
  return std::move(out.bytes());
}

absl::StatusOr<Engine> Engine::Restore(std::string_view snapshot) {
  auto bad = [](std::string_view why) {
    return MakeError(absl::StatusCode::kDataLoss, "bad_snapshot",
                     absl::StrCat("not a usable refpay snapshot: ", std::string(why)));
  };
  constexpr size_t kHeader = kMagicBytes + sizeof(uint32_t) + sizeof(uint64_t);
  if (snapshot.size() < kHeader + sizeof(uint32_t) ||
      snapshot.substr(0, kMagicBytes) != kSnapshotMagic) {
    return bad("missing header");
  }
  internal::ByteReader header(snapshot.substr(kMagicBytes));
  uint32_t version = 0;
  uint64_t length = 0;
  header.Get(&version);
  header.Get(&length);
  if (version != kSnapshotVersion) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "snapshot_version",
                     absl::StrCat("snapshot format version ", version,
                                  " is not supported (this build reads ", kSnapshotVersion, ")"));
  }
  if (length != snapshot.size() - kHeader - sizeof(uint32_t)) return bad("truncated or padded");
  const std::string_view payload = snapshot.substr(kHeader, length);
  internal::ByteReader trailer(snapshot.substr(kHeader + length));
  uint32_t crc = 0;
  trailer.Get(&crc);
  if (crc != Crc32(payload)) return bad("checksum mismatch");
  internal::ByteReader reader(payload);
  std::string document;
  if (!reader.GetString(&document)) return bad("policy");
  absl::StatusOr<Policy> policy = Policy::FromJson(document);
  if (!policy.ok()) return bad(absl::StrCat("policy: ", policy.status().message()));
  Engine engine(*std::move(policy));
  REFPAY_RETURN_IF_ERROR(engine.impl_->Load(reader));
  return engine;
}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

absl::Status Engine::Apply(const Event& event) { return impl_->Apply(event); }
absl::Status Engine::Reserve(int64_t members, int64_t orders) {
  constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();
  for (const auto& [name, count, held] : {std::tuple("members", members, member_count()),
                                          std::tuple("orders", orders, order_count())}) {
    if (count < 0 || count > kMaxIndex - held) {
      return MakeError(absl::StatusCode::kInvalidArgument, "bad_value",
                       absl::StrCat("Reserve: ", name, " must be in [0, ", kMaxIndex - held,
                                    "] for an engine holding ", held, ", got ", count));
    }
  }
  try {
    impl_->Reserve(static_cast<int32_t>(members), static_cast<int32_t>(orders),
                   /*populate=*/true);
  } catch (const std::bad_alloc&) {
    // Only capacity changed: the engine's contents are as they were.
    return MakeError(absl::StatusCode::kResourceExhausted, "out_of_memory",
                     absl::StrCat("Reserve: no memory for ", members, " more members and ", orders,
                                  " more orders"));
  }
  return absl::OkStatus();
}
absl::Status Engine::ApplyJson(std::string_view json) { return impl_->ApplyJson(json); }
absl::StatusOr<std::vector<LedgerRow>> Engine::Ledger(absl::Time as_of) const {
  return impl_->Ledger(as_of);
}
absl::StatusOr<std::vector<NetRow>> Engine::NetLedger(absl::Time as_of) const {
  return impl_->NetLedger(as_of);
}
absl::StatusOr<std::vector<BalanceRow>> Engine::Balances(absl::Time as_of) const {
  return impl_->Balances(as_of);
}
std::vector<Flag> Engine::Flags() const { return impl_->Flags(); }
absl::StatusOr<MemberTotals> Engine::Totals(absl::Time as_of) const { return impl_->Totals(as_of); }
absl::StatusOr<LedgerColumns> Engine::LedgerTable(absl::Time as_of) const {
  return impl_->LedgerTable(as_of);
}
absl::Span<const std::string> Engine::member_ids() const { return impl_->member_ids(); }
absl::Span<const std::string> Engine::order_ids() const { return impl_->order_ids(); }
absl::StatusOr<std::vector<std::string>> Engine::Explain(std::string_view order_id) const {
  return impl_->Explain(order_id);
}
std::optional<absl::Time> Engine::last_event_time() const { return impl_->last_event_time(); }
const Policy& Engine::policy() const { return impl_->policy(); }
int32_t Engine::member_count() const { return impl_->member_count(); }
int32_t Engine::order_count() const { return impl_->order_count(); }

}  // namespace refpay
