// refpay/policy.h — a typed, validated payout policy (SPEC §3).
//
// A policy is read from JSON or TOML (the same data model). Every key is
// checked: an unknown key, a float amount or a tier gap fails with a message
// naming its path, e.g. `levels[1].rat: unknown key`.
//
//   absl::StatusOr<refpay::Policy> policy =
//       refpay::Policy::FromFile("examples/policies/haier_maker.toml");
//   if (!policy.ok()) { std::cerr << policy.status().message(); return 1; }
//   refpay::Money paid = policy->rules.levels[0].amount
//                            .Compute(*refpay::Money::Parse("4999.99"),
//                                     policy->rounding).amount;  // 250.00
//
// To see every problem at once (and the §7 warnings) use refpay::Lint() in
// refpay/lint.h.
#ifndef REFPAY_POLICY_H_
#define REFPAY_POLICY_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "refpay/money.h"

namespace refpay {

// refpay::Tier is one row of a tier table. Bounds are on the order's base.
struct Tier {
  std::optional<Money> lower;    // absent on the first tier: from 0
  bool lower_inclusive = true;   // `from` (≥) or `above` (>)
  std::optional<Money> upper;    // absent on the last tier: no bound
  bool upper_inclusive = false;  // `upto` (≤) or `below` (<)
  std::optional<Rate> rate;      // exactly one of rate and fixed
  std::optional<Money> fixed;

  // refpay::Tier::Contains() says whether `base` falls in this tier.
  bool Contains(Money base) const;
};

// refpay::TierMode says how a tier table pays: `whole` applies the rate of
// the tier containing the base to all of it; `marginal` pays every slice at
// its own tier's rate.
enum class TierMode { kWhole, kMarginal };

// refpay::RuleAmount is what an AmountRule computed, with what it needs to
// explain itself.
struct RuleAmount {
  Money amount;   // rounded to fen
  Int128 exact;   // before rounding, in fen·ppm
  int tier = -1;  // the deciding tier in whole mode, else -1
};

// refpay::AmountRule is exactly one of {fixed}, {rate} or {tiers} (§3.1).
struct AmountRule {
  enum class Kind { kFixed, kRate, kTiers };
  Kind kind = Kind::kFixed;
  Money fixed;
  Rate rate;
  std::vector<Tier> tiers;
  TierMode mode = TierMode::kWhole;
  std::string path;  // where it was written: "levels[0]"

  // refpay::AmountRule::Compute() pays on `base` (the order amount minus
  // refunds), rounding once with `rounding`.
  RuleAmount Compute(Money base, RoundingMode rounding) const;

  // refpay::AmountRule::Explain() shows the arithmetic of Compute():
  // "tiers[1] 5% × 4999.99 = 249.9995 → 250.00 half_up".
  std::string Explain(Money base, RoundingMode rounding) const;

  // refpay::AmountRule::MaxRate() is the highest rate the rule can apply
  // (0 for a fixed amount), as lint's total_rate needs.
  Rate MaxRate() const;
};

// refpay::LevelRule pays one ancestor level; `by_rank` replaces the amount
// when the beneficiary holds a listed role (first listed wins).
struct LevelRule {
  AmountRule amount;
  std::vector<std::pair<std::string, AmountRule>> by_rank;
};

// refpay::LeaderRule is the team-leader bonus (§3.3).
struct LeaderRule {
  enum class Scheme { kNearest, kDifferential };
  struct Rank {
    std::string name;
    Rate rate;
  };
  Scheme scheme = Scheme::kNearest;
  AmountRule amount;        // nearest scheme
  std::vector<Rank> ranks;  // differential scheme, lowest first
  bool include_self = false;
  std::optional<int> max_depth;  // ancestors searched; absent = unlimited
  std::optional<Rate> peer;      // 平级奖
  std::string path;
};

// refpay::RuleSet is what pays an order: the default rules or a category's.
struct RuleSet {
  std::vector<LevelRule> levels;
  std::optional<LeaderRule> leader;
};

// refpay::Action is what a check does to an entry it hits (§6).
enum class Action { kFlag = 1, kHold = 2, kDeny = 3 };

// refpay::ActionName() is "flag", "hold" or "deny".
const char* ActionName(Action action);

// refpay::Checks configures the anti-abuse checks; an absent one is off.
struct Checks {
  struct SplitOrders {
    int64_t max_orders = 0;
    int64_t window_minutes = 0;
    Action action = Action::kHold;
  };
  struct Velocity {
    int64_t max_invites = 0;
    int64_t window_hours = 0;
    Action action = Action::kHold;
  };
  struct RefundRate {
    int64_t min_orders = 0;
    Rate max_share;
    Action action = Action::kHold;
  };
  std::optional<Action> shared_identity = Action::kHold;
  std::optional<SplitOrders> split_orders;
  std::optional<Velocity> velocity;
  std::optional<RefundRate> refund_rate;
};

// refpay::Promotion grants a role once all its conditions hold (§3.6).
struct Promotion {
  std::string grant;
  std::optional<int64_t> referred_orders;
  std::optional<int64_t> referred_buyers;
  std::optional<int64_t> window_days;
  std::optional<Money> own_spend;
};

// refpay::InviteRewards pays for bringing valid invitees (§3.7).
struct InviteRewards {
  struct Step {
    int64_t at = 0;
    Money reward;
  };
  std::vector<Step> steps;
  bool same_region = false;
  bool requires_purchase = false;
  bool distinct_identity = true;
  std::optional<int64_t> max_rewards;
};

// refpay::Policy is a whole validated policy.
struct Policy {
  enum class BindingMode { kPermanent, kFree, kProtected };

  std::string name;
  std::string currency = "CNY";
  std::string timezone_name = "Asia/Shanghai";
  absl::TimeZone timezone;
  RoundingMode rounding = RoundingMode::kHalfUp;
  bool self_purchase = false;
  BindingMode binding = BindingMode::kPermanent;
  int64_t protection_days = 0;
  std::optional<std::string> eligible_role;  // 指定分销; absent = everyone
  bool eligible_compress = false;
  RuleSet rules;
  std::vector<std::pair<std::string, RuleSet>> by_category;
  std::optional<Rate> cap_order_total;
  std::optional<Money> cap_member_month;
  std::optional<Money> cap_budget;
  int64_t hold_days = 0;
  std::optional<InviteRewards> invite_rewards;
  std::vector<Promotion> promotions;
  std::vector<std::pair<std::string, AmountRule>> rank_bonus;
  Checks checks;

  // refpay::Policy::document is the policy as read, as one-line JSON (a
  // TOML policy converted): FromJson(document) gives this policy again,
  // which is how a snapshot carries its policy.
  std::string document;

  // refpay::Policy::FromJson() / FromToml() parse a document; the first
  // error found is returned with its key path and a reason token from
  // docs/decisions.md (unknown_key, tier_gap, bad_amount, …).
  static absl::StatusOr<Policy> FromJson(std::string_view json_text);
  static absl::StatusOr<Policy> FromToml(std::string_view toml_text);

  // refpay::Policy::FromFile() reads a .json or .toml file.
  static absl::StatusOr<Policy> FromFile(const std::string& path);

  // refpay::Policy::RulesFor() is the rule set for an order's category.
  const RuleSet& RulesFor(std::string_view category) const;
};

}  // namespace refpay

#endif  // REFPAY_POLICY_H_
