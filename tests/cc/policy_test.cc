#include "refpay/policy.h"

#include <string>

#include "gtest/gtest.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::HasReason;
using ::refpay::testing::IsOk;
using ::refpay::testing::MessageHas;

constexpr char kHaierTiers[] = R"({"levels": [{"tiers": [
    {"below": "3000", "rate": "4%"},
    {"from": "3000", "below": "5000", "rate": "5%"},
    {"from": "5000", "rate": "8%"}]}]})";

Money Yuan(const char* text) { return *Money::Parse(text); }

TEST(PolicyTest, DefaultsFollowTheSpec) {
  absl::StatusOr<Policy> policy = Policy::FromJson("{}");
  ASSERT_THAT(policy, IsOk());
  EXPECT_EQ(policy->rounding, RoundingMode::kHalfUp);
  EXPECT_EQ(policy->binding, Policy::BindingMode::kPermanent);
  EXPECT_EQ(policy->currency, "CNY");
  EXPECT_EQ(policy->timezone_name, "Asia/Shanghai");
  EXPECT_EQ(policy->hold_days, 0);
  EXPECT_EQ(policy->checks.shared_identity, Action::kHold);
  EXPECT_FALSE(policy->self_purchase);
}

TEST(PolicyTest, UnknownKeysNameTheirPath) {
  absl::StatusOr<Policy> second =
      Policy::FromJson(R"({"levels": [{"rate": "4%"}, {"rat": "2%"}]})");
  EXPECT_THAT(second, HasReason("unknown_key"));
  EXPECT_THAT(second, MessageHas("levels[1].rat: unknown key"));
  absl::StatusOr<Policy> typo = Policy::FromJson(R"({"levels": [{"rate": "4%", "rat": "2%"}]})");
  EXPECT_THAT(typo, HasReason("unknown_key"));
  EXPECT_THAT(typo, MessageHas("levels[0].rat"));
  EXPECT_THAT(Policy::FromJson(R"({"caps": {"order_totl": "30%"}})"),
              MessageHas("caps.order_totl"));
  EXPECT_THAT(Policy::FromJson(R"({"lvels": []})"), HasReason("unknown_key"));
}

TEST(PolicyTest, FloatsNeverBecomeMoney) {
  absl::StatusOr<Policy> policy = Policy::FromJson(R"({"levels": [{"fixed": 50.5}]})");
  EXPECT_THAT(policy, HasReason("bad_amount"));
  EXPECT_THAT(policy, MessageHas("levels[0].fixed"));
  EXPECT_THAT(policy, MessageHas("float"));
  EXPECT_THAT(Policy::FromToml("[[levels]]\nfixed = 50.5\n"), HasReason("bad_amount"));
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{"fixed": "1.234"}]})"), HasReason("bad_amount"));
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{"rate": 0.04}]})"), HasReason("bad_rate"));
}

TEST(PolicyTest, IntegersAreYuan) {
  absl::StatusOr<Policy> policy = Policy::FromJson(R"({"levels": [{"fixed": 50}]})");
  ASSERT_THAT(policy, IsOk());
  EXPECT_EQ(policy->rules.levels[0].amount.fixed, Yuan("50.00"));
}

TEST(PolicyTest, JsonAndTomlAreOneDataModel) {
  absl::StatusOr<Policy> json = Policy::FromJson(kHaierTiers);
  absl::StatusOr<Policy> toml = Policy::FromToml(R"(
[[levels]]
tiers = [
  { below = "3000", rate = "4%" },
  { from = "3000", below = "5000", rate = "5%" },
  { from = "5000", rate = "8%" },
]
)");
  ASSERT_THAT(json, IsOk());
  ASSERT_THAT(toml, IsOk());
  for (const char* base : {"2999.99", "3000", "4999.99", "5000", "12000"}) {
    EXPECT_EQ(json->rules.levels[0].amount.Compute(Yuan(base), RoundingMode::kHalfUp).amount,
              toml->rules.levels[0].amount.Compute(Yuan(base), RoundingMode::kHalfUp).amount);
  }
}

TEST(PolicyTest, TomlKeepsWrittenOrderForFirstListedWins) {
  absl::StatusOr<Policy> policy = Policy::FromToml(R"(
[[levels]]
rate = "10%"
[levels.by_rank]
zeta = { rate = "15%" }
alpha = { rate = "12%" }
)");
  ASSERT_THAT(policy, IsOk());
  ASSERT_EQ(policy->rules.levels[0].by_rank.size(), 2u);
  EXPECT_EQ(policy->rules.levels[0].by_rank[0].first, "zeta");
  EXPECT_EQ(policy->rules.levels[0].by_rank[1].first, "alpha");
}

TEST(PolicyTest, DuplicateJsonKeysAreRefused) {
  EXPECT_THAT(Policy::FromJson(R"({"rounding": "down", "rounding": "half_up"})"),
              MessageHas("duplicate key"));
}

struct TierCase {
  const char* name;
  const char* tiers;
  const char* reason;
  const char* fragment;
};

TEST(TierLayoutTest, GapsOverlapsAndOrderNameTheTier) {
  const TierCase cases[] = {
      {"gap", R"([{"below":"3000","rate":"4%"},{"from":"3000.01","rate":"5%"}])", "tier_gap",
       "levels[0].tiers[1]: gap"},
      {"below then above", R"([{"below":"3000","rate":"4%"},{"above":"3000","rate":"5%"}])",
       "tier_gap", "tiers[1]"},
      {"overlap", R"([{"below":"3000","rate":"4%"},{"from":"2999","rate":"5%"}])", "tier_overlap",
       "levels[0].tiers[1]: overlap"},
      {"upto then from", R"([{"upto":"3000","rate":"4%"},{"from":"3000","rate":"5%"}])",
       "tier_overlap", "tiers[1]"},
      {"misordered",
       R"([{"below":"3000","rate":"4%"},{"from":"3000","below":"2000","rate":"5%"},{"from":"2000","rate":"6%"}])",
       "tier_order", "tiers[1]"},
      {"reversed",
       R"([{"from":"5000","rate":"8%"},{"from":"3000","below":"5000","rate":"5%"},{"below":"3000","rate":"4%"}])",
       "tier_order", "tiers[1]: tiers must be in increasing order"},
      {"swapped",
       R"([{"below":"3000","rate":"4%"},{"from":"5000","rate":"8%"},{"from":"3000","below":"5000","rate":"5%"}])",
       "tier_order", "tiers[2]"},
      {"open middle", R"([{"rate":"4%"},{"from":"3000","rate":"5%"}])", "tier_overlap", "tiers[0]"},
      {"bounded last",
       R"([{"below":"3000","rate":"4%"},{"from":"3000","below":"5000","rate":"5%"}])", "tier_gap",
       "tiers[1]"},
      {"first starts late", R"([{"from":"100","rate":"4%"}])", "tier_gap", "tiers[0]"},
      {"both lower bounds", R"([{"from":"0","above":"0","rate":"4%"}])", "bad_rule", "tiers[0]"},
      {"rate and fixed", R"([{"rate":"4%","fixed":"1"}])", "bad_rule", "tiers[0]"},
  };
  for (const TierCase& c : cases) {
    absl::StatusOr<Policy> policy =
        Policy::FromJson(std::string(R"({"levels": [{"tiers": )") + c.tiers + "}]}");
    EXPECT_THAT(policy, HasReason(c.reason)) << c.name;
    EXPECT_THAT(policy, MessageHas(c.fragment)) << c.name;
  }
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{"mode": "marginal", "tiers": [
      {"below": "10", "fixed": "1"}, {"from": "10", "rate": "1%"}]}]})"),
              HasReason("bad_rule"));
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{"tiers": [{"from":"0","rate":"4%"}]}]})"), IsOk());
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{"tiers": [
      {"upto":"3000","rate":"4%"},{"above":"3000","rate":"5%"}]}]})"),
              IsOk());
}

struct ComputeCase {
  const char* base;
  const char* whole;
  const char* marginal;
};

TEST(AmountRuleTest, WholeAndMarginalTiersAtTheirBounds) {
  absl::StatusOr<Policy> whole = Policy::FromJson(kHaierTiers);
  std::string marginal_json = kHaierTiers;
  marginal_json.replace(marginal_json.rfind("]}]"), 3, R"(], "mode": "marginal"}])");
  absl::StatusOr<Policy> marginal = Policy::FromJson(marginal_json);
  ASSERT_THAT(whole, IsOk());
  ASSERT_THAT(marginal, IsOk());
  // marginal 6000: 3000×4% + 2000×5% + 1000×8% = 120 + 100 + 80 = 300.
  for (const ComputeCase& c : {ComputeCase{"2999.99", "120.00", "120.00"},
                               {"3000", "150.00", "120.00"},
                               {"4999.99", "250.00", "220.00"},
                               {"5000", "400.00", "220.00"},
                               {"6000", "480.00", "300.00"},
                               {"0.01", "0.00", "0.00"}}) {
    EXPECT_EQ(whole->rules.levels[0].amount.Compute(Yuan(c.base), RoundingMode::kHalfUp).amount,
              Yuan(c.whole))
        << c.base;
    EXPECT_EQ(marginal->rules.levels[0].amount.Compute(Yuan(c.base), RoundingMode::kHalfUp).amount,
              Yuan(c.marginal))
        << c.base;
  }
}

TEST(AmountRuleTest, UptoAndAboveBounds) {
  absl::StatusOr<Policy> policy = Policy::FromJson(R"({"levels": [{"tiers": [
      {"upto": "100", "fixed": "1"}, {"above": "100", "fixed": "2"}]}]})");
  ASSERT_THAT(policy, IsOk());
  const AmountRule& rule = policy->rules.levels[0].amount;
  EXPECT_EQ(rule.Compute(Yuan("100"), RoundingMode::kHalfUp).amount, Yuan("1"));
  EXPECT_EQ(rule.Compute(Yuan("100.01"), RoundingMode::kHalfUp).amount, Yuan("2"));
}

TEST(AmountRuleTest, ExplainsItsArithmetic) {
  absl::StatusOr<Policy> policy = Policy::FromJson(kHaierTiers);
  ASSERT_THAT(policy, IsOk());
  EXPECT_EQ(policy->rules.levels[0].amount.Explain(Yuan("4999.99"), RoundingMode::kHalfUp),
            "levels[0].tiers[1] (from 3000.00 below 5000.00) 5% × 4999.99 = 249.9995 → 250.00 "
            "half_up");
}

TEST(PolicyTest, CategoriesOverrideOnlyWhatTheyName) {
  absl::StatusOr<Policy> policy = Policy::FromJson(R"({
    "levels": [{"fixed": "20"}], "leader": {"fixed": "10", "max_depth": 5},
    "by_category": {"course": {"levels": [{"rate": "20%"}]}}})");
  ASSERT_THAT(policy, IsOk());
  const RuleSet& course = policy->RulesFor("course");
  EXPECT_EQ(course.levels[0].amount.kind, AmountRule::Kind::kRate);
  ASSERT_TRUE(course.leader.has_value());
  EXPECT_EQ(course.leader->amount.fixed, Yuan("10"));
  EXPECT_EQ(&policy->RulesFor("other"), &policy->rules);
}

TEST(PolicyTest, ChecksAcceptOffAndActions) {
  absl::StatusOr<Policy> policy = Policy::FromJson(R"({"checks": {
    "shared_identity": "off",
    "split_orders": {"max_orders": 3, "window_minutes": 10, "action": "deny"},
    "refund_rate": {"min_orders": 5, "max_share": "30%"}}})");
  ASSERT_THAT(policy, IsOk());
  EXPECT_FALSE(policy->checks.shared_identity.has_value());
  EXPECT_EQ(policy->checks.split_orders->action, Action::kDeny);
  EXPECT_EQ(policy->checks.refund_rate->action, Action::kHold);
  EXPECT_THAT(Policy::FromJson(R"({"checks": {"split_orders": "hold"}})"),
              HasReason("missing_key"));
  EXPECT_THAT(Policy::FromJson(R"({"checks": {"shared_identity": "block"}})"),
              HasReason("bad_value"));
}

TEST(PolicyTest, RanksMustRiseAndBeKnown) {
  EXPECT_THAT(Policy::FromJson(R"({"leader": {"scheme": "differential", "max_depth": 5,
      "ranks": [{"name": "gold", "rate": "5%"}, {"name": "silver", "rate": "3%"}]}})"),
              HasReason("rank_order"));
  EXPECT_THAT(Policy::FromJson(R"({"leader": {"scheme": "differential",
      "ranks": [{"name": "gold", "rate": "5%"}]},
      "levels": [{"rate": "10%", "by_rank": {"glod": {"rate": "12%"}}}]})"),
              HasReason("unknown_rank"));
  EXPECT_THAT(Policy::FromJson(R"({"leader": {"scheme": "differential"}})"),
              HasReason("missing_key"));
  EXPECT_THAT(Policy::FromJson(R"({"leader": {"rate": "5%", "ranks": []}})"),
              HasReason("bad_rule"));
}

TEST(PolicyTest, OtherFieldErrors) {
  EXPECT_THAT(Policy::FromJson(R"({"timezone": "Mars/Olympus"})"), HasReason("bad_timezone"));
  EXPECT_THAT(Policy::FromJson(R"({"rounding": "up"})"), HasReason("bad_value"));
  EXPECT_THAT(Policy::FromJson(R"({"binding": {"mode": "protected"}})"), HasReason("missing_key"));
  EXPECT_THAT(Policy::FromJson(R"({"settlement": {"hold_days": -1}})"), HasReason("bad_value"));
  EXPECT_THAT(Policy::FromJson(R"({"settlement": {"hold_days": "7"}})"), HasReason("bad_value"));
  EXPECT_THAT(Policy::FromJson(R"({"levels": [{}]})"), HasReason("bad_rule"));
  EXPECT_THAT(Policy::FromJson(R"({"invite_rewards": {"steps": [{"at": 5, "reward": "10"},
      {"at": 5, "reward": "20"}]}})"),
              HasReason("bad_value"));
  EXPECT_THAT(Policy::FromJson("[1, 2]"), HasReason("bad_value"));
  EXPECT_THAT(Policy::FromJson("{"), HasReason("bad_json"));
  EXPECT_THAT(Policy::FromToml("levels = ["), HasReason("bad_toml"));
}

}  // namespace
}  // namespace refpay
