#include "policy_reader.h"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "absl_compat.h"
#include "refpay/status.h"
#include "toml++/toml.h"

namespace refpay::internal {
namespace {

std::string Join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(std::string(path), ".", std::string(key));
}

std::string Index(std::string_view path, size_t i) {
  return absl::StrCat(std::string(path), "[", i, "]");
}

// Input limits (docs/limits.md). They keep memory, time and the engine's
// fixed-width fields bounded whatever the document says.
constexpr int64_t kMaxCount = int64_t{1} << 40;  // counts: far beyond any sane value
constexpr int64_t kMaxDays = 36'500;             // day spans: 100 years
constexpr int64_t kMaxLeaderDepth = 1'000'000'000;
constexpr size_t kMaxLevels = 16;        // per rule set
constexpr size_t kMaxTiers = 64;         // per tier table
constexpr size_t kMaxRanks = 32;         // leader.ranks
constexpr size_t kMaxNamedRules = 64;    // by_rank, rank_bonus entries
constexpr size_t kMaxCategories = 256;   // by_category entries
constexpr size_t kMaxPromotions = 64;    // promotions
constexpr size_t kMaxInviteSteps = 256;  // invite_rewards.steps
constexpr size_t kMaxRoleNames = 64;     // distinct role names: the engine's role bits

// One reader per document: it walks the tree once and records findings.
class Reader {
 public:
  explicit Reader(std::vector<LintFinding>* findings) : findings_(findings) {}

  Policy Read(const Json& doc) {
    Policy policy;
    if (!ExpectObject(doc, "")) return policy;
    CheckKeys(doc, "",
              {"name", "currency", "timezone", "rounding", "self_purchase", "binding", "levels",
               "eligible", "leader", "by_category", "caps", "settlement", "invite_rewards",
               "promotions", "rank_bonus", "checks"});
    if (auto v = String(doc, "name", "")) policy.name = *v;
    if (auto v = String(doc, "currency", "")) {
      if (v->size() != 3 ||
          !std::all_of(v->begin(), v->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        Error("bad_value", "currency", "a currency is three capital letters, e.g. \"CNY\"");
      } else {
        policy.currency = *v;
      }
    }
    if (auto v = String(doc, "timezone", "")) policy.timezone_name = *v;
    if (!absl::LoadTimeZone(policy.timezone_name, &policy.timezone)) {
      Error("bad_timezone", doc.contains("timezone") ? "timezone" : "",
            absl::StrCat("unknown time zone \"", policy.timezone_name,
                         "\" (use an IANA name such as Asia/Shanghai)"));
    }
    if (auto v = String(doc, "rounding", "")) {
      absl::StatusOr<RoundingMode> mode = ParseRoundingMode(*v);
      if (mode.ok()) {
        policy.rounding = *mode;
      } else {
        Error("bad_value", "rounding", std::string(mode.status().message()));
      }
    }
    if (auto v = Bool(doc, "self_purchase", "")) policy.self_purchase = *v;
    ReadBinding(doc, &policy);
    ReadEligible(doc, &policy);
    policy.rules = ReadRuleSet(doc, "", nullptr);
    if (const Json* categories = Object(doc, "by_category", "");
        categories != nullptr &&
        !TooMany(*categories, kMaxCategories, "by_category", "categories")) {
      for (const auto& [name, override_doc] : categories->items()) {
        const std::string path = Join("by_category", name);
        if (!ExpectObject(override_doc, path)) continue;
        CheckKeys(override_doc, path, {"levels", "leader"});
        policy.by_category.emplace_back(name, ReadRuleSet(override_doc, path, &policy.rules));
      }
    }
    ReadCaps(doc, &policy);
    if (const Json* settlement = Object(doc, "settlement", "")) {
      CheckKeys(*settlement, "settlement", {"hold_days"});
      if (auto v = Int(*settlement, "hold_days", "settlement", 0, kMaxDays)) policy.hold_days = *v;
    }
    ReadInviteRewards(doc, &policy);
    ReadPromotions(doc, &policy);
    if (const Json* bonus = Object(doc, "rank_bonus", "");
        bonus != nullptr && !TooMany(*bonus, kMaxNamedRules, "rank_bonus", "roles")) {
      for (const auto& [role, rule_doc] : bonus->items()) {
        const std::string path = Join("rank_bonus", role);
        if (!ExpectObject(rule_doc, path)) continue;
        CheckKeys(rule_doc, path, {"fixed", "rate", "tiers", "mode"});
        if (auto rule = ReadAmountRule(rule_doc, path)) {
          policy.rank_bonus.emplace_back(role, std::move(*rule));
        }
      }
    }
    ReadChecks(doc, &policy);
    CheckRankNames(policy);
    CheckRoleCount(policy);
    return policy;
  }

 private:
  void Error(std::string_view code, std::string_view path, std::string_view message) {
    findings_->push_back(
        {std::string(code), Severity::kError, std::string(path), std::string(message)});
  }

  // Reports an array or table longer than `limit`; true when it is.
  bool TooMany(const Json& container, size_t limit, std::string_view path, std::string_view what) {
    if (container.size() <= limit) return false;
    Error("bad_value", path,
          absl::StrCat(container.size(), " ", std::string(what), ": at most ", limit,
                       " are allowed (docs/limits.md)"));
    return true;
  }

  bool ExpectObject(const Json& value, std::string_view path) {
    if (value.is_object()) return true;
    Error("bad_value", path, absl::StrCat("expected a table/object, found ", DescribeJson(value)));
    return false;
  }

  void CheckKeys(const Json& object, std::string_view path,
                 std::initializer_list<const char*> allowed) {
    for (const auto& [key, value] : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        Error("unknown_key", Join(path, key),
              absl::StrCat("unknown key \"", key, "\" (expected one of ",
                           absl::StrJoin(allowed, ", "), ")"));
      }
    }
  }

  static const Json* Find(const Json& object, std::string_view key) {
    auto it = object.find(std::string(key));
    return it == object.end() ? nullptr : &*it;
  }

  const Json* Object(const Json& parent, std::string_view key, std::string_view path) {
    const Json* value = Find(parent, key);
    if (value == nullptr || !ExpectObject(*value, Join(path, key))) return nullptr;
    return value;
  }

  std::optional<std::string> String(const Json& parent, std::string_view key,
                                    std::string_view path) {
    const Json* value = Find(parent, key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string() || value->get<std::string>().empty()) {
      Error("bad_value", Join(path, key),
            absl::StrCat("expected a non-empty string, found ", DescribeJson(*value)));
      return std::nullopt;
    }
    return value->get<std::string>();
  }

  std::optional<bool> Bool(const Json& parent, std::string_view key, std::string_view path) {
    const Json* value = Find(parent, key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) {
      Error("bad_value", Join(path, key),
            absl::StrCat("expected true or false, found ", DescribeJson(*value)));
      return std::nullopt;
    }
    return value->get<bool>();
  }

  // Reads a whole number in [min, max]. Counts may go up to kMaxCount; spans
  // of time are bounded (kMaxDays…) so that turning them into microseconds
  // cannot overflow.
  std::optional<int64_t> Int(const Json& parent, std::string_view key, std::string_view path,
                             int64_t min, int64_t max = kMaxCount) {
    const Json* value = Find(parent, key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(max)) ||
        value->get<int64_t>() < min || value->get<int64_t>() > max) {
      Error("bad_value", Join(path, key),
            absl::StrCat("expected a whole number from ", min, " to ", max, ", found ",
                         DescribeJson(*value)));
      return std::nullopt;
    }
    return value->get<int64_t>();
  }

  std::optional<Money> MoneyValue(const Json& value, std::string_view path) {
    absl::StatusOr<Money> money = MoneyFromJson(value, path);
    if (!money.ok()) {
      Error("bad_amount", path, StripPath(AsStd(money.status().message()), path));
      return std::nullopt;
    }
    if (money->is_negative()) {
      Error("bad_amount", path, absl::StrCat(money->ToString(), " is negative"));
      return std::nullopt;
    }
    return *money;
  }

  std::optional<Money> MoneyField(const Json& parent, std::string_view key, std::string_view path) {
    const Json* value = Find(parent, key);
    if (value == nullptr) return std::nullopt;
    return MoneyValue(*value, Join(path, key));
  }

  std::optional<Rate> RateField(const Json& parent, std::string_view key, std::string_view path) {
    const Json* value = Find(parent, key);
    if (value == nullptr) return std::nullopt;
    absl::StatusOr<Rate> rate = RateFromJson(*value, Join(path, key));
    if (!rate.ok()) {
      Error("bad_rate", Join(path, key),
            StripPath(AsStd(rate.status().message()), Join(path, key)));
      return std::nullopt;
    }
    return *rate;
  }

  // Messages from json_util start with the path; findings carry it apart.
  static std::string StripPath(std::string_view message, std::string_view path) {
    std::string prefix = absl::StrCat(std::string(path), ": ");
    if (message.substr(0, prefix.size()) == prefix) message.remove_prefix(prefix.size());
    return std::string(message);
  }

  void ReadBinding(const Json& doc, Policy* policy) {
    const Json* binding = Object(doc, "binding", "");
    if (binding == nullptr) return;
    CheckKeys(*binding, "binding", {"mode", "protection_days"});
    if (auto mode = String(*binding, "mode", "binding")) {
      if (*mode == "permanent") {
        policy->binding = Policy::BindingMode::kPermanent;
      } else if (*mode == "free") {
        policy->binding = Policy::BindingMode::kFree;
      } else if (*mode == "protected") {
        policy->binding = Policy::BindingMode::kProtected;
      } else {
        Error("bad_value", "binding.mode",
              absl::StrCat("unknown binding mode \"", *mode,
                           "\" (expected permanent, free or protected)"));
      }
    }
    auto days = Int(*binding, "protection_days", "binding", 0, kMaxDays);
    if (days) policy->protection_days = *days;
    if (policy->binding == Policy::BindingMode::kProtected && !days) {
      Error("missing_key", "binding.protection_days", "mode \"protected\" needs protection_days");
    }
  }

  void ReadEligible(const Json& doc, Policy* policy) {
    const Json* eligible = Object(doc, "eligible", "");
    if (eligible == nullptr) return;
    CheckKeys(*eligible, "eligible", {"role", "compress"});
    policy->eligible_role = String(*eligible, "role", "eligible");
    if (!policy->eligible_role) Error("missing_key", "eligible.role", "eligible needs a role");
    if (auto v = Bool(*eligible, "compress", "eligible")) policy->eligible_compress = *v;
  }

  RuleSet ReadRuleSet(const Json& doc, std::string_view path, const RuleSet* defaults) {
    RuleSet rules;
    if (defaults != nullptr) rules = *defaults;
    if (const Json* levels = Find(doc, "levels")) {
      const std::string levels_path = Join(path, "levels");
      rules.levels.clear();
      if (!levels->is_array()) {
        Error("bad_value", levels_path,
              absl::StrCat("expected an array of amount rules, found ", DescribeJson(*levels)));
      } else if (!TooMany(*levels, kMaxLevels, levels_path, "levels")) {
        for (size_t i = 0; i < levels->size(); ++i) {
          const std::string level_path = Index(levels_path, i);
          const Json& level_doc = (*levels)[i];
          if (!ExpectObject(level_doc, level_path)) continue;
          CheckKeys(level_doc, level_path, {"fixed", "rate", "tiers", "mode", "by_rank"});
          LevelRule level;
          if (auto rule = ReadAmountRule(level_doc, level_path)) level.amount = std::move(*rule);
          if (const Json* by_rank = Object(level_doc, "by_rank", level_path);
              by_rank != nullptr &&
              !TooMany(*by_rank, kMaxNamedRules, Join(level_path, "by_rank"), "ranks")) {
            for (const auto& [rank, rank_doc] : by_rank->items()) {
              const std::string rank_path = Join(Join(level_path, "by_rank"), rank);
              if (!ExpectObject(rank_doc, rank_path)) continue;
              CheckKeys(rank_doc, rank_path, {"fixed", "rate", "tiers", "mode"});
              if (auto rule = ReadAmountRule(rank_doc, rank_path)) {
                level.by_rank.emplace_back(rank, std::move(*rule));
              }
            }
          }
          rules.levels.push_back(std::move(level));
        }
      }
    }
    if (const Json* leader = Object(doc, "leader", path)) {
      rules.leader = ReadLeader(*leader, Join(path, "leader"));
    }
    return rules;
  }

  LeaderRule ReadLeader(const Json& doc, const std::string& path) {
    CheckKeys(
        doc, path,
        {"fixed", "rate", "tiers", "mode", "scheme", "ranks", "include_self", "max_depth", "peer"});
    LeaderRule leader;
    leader.path = path;
    if (auto scheme = String(doc, "scheme", path)) {
      if (*scheme == "nearest") {
        leader.scheme = LeaderRule::Scheme::kNearest;
      } else if (*scheme == "differential") {
        leader.scheme = LeaderRule::Scheme::kDifferential;
      } else {
        Error("bad_value", Join(path, "scheme"),
              absl::StrCat("unknown scheme \"", *scheme, "\" (expected nearest or differential)"));
      }
    }
    if (auto v = Bool(doc, "include_self", path)) leader.include_self = *v;
    if (auto v = Int(doc, "max_depth", path, 0, kMaxLeaderDepth)) {
      leader.max_depth = static_cast<int>(*v);
    }
    if (const Json* peer = Object(doc, "peer", path)) {
      const std::string peer_path = Join(path, "peer");
      CheckKeys(*peer, peer_path, {"rate"});
      leader.peer = RateField(*peer, "rate", peer_path);
      if (!peer->contains("rate"))
        Error("missing_key", Join(peer_path, "rate"), "peer needs a rate");
    }
    if (leader.scheme == LeaderRule::Scheme::kNearest) {
      if (doc.contains("ranks")) {
        Error("bad_rule", Join(path, "ranks"), R"(ranks need "scheme": "differential")");
      }
      if (auto rule = ReadAmountRule(doc, path)) leader.amount = std::move(*rule);
      return leader;
    }
    for (const char* key : {"fixed", "rate", "tiers", "mode"}) {
      if (doc.contains(std::string(key))) {
        Error("bad_rule", Join(path, key),
              "the differential scheme pays by leader.ranks, not by an amount rule");
      }
    }
    const Json* ranks = Find(doc, "ranks");
    if (ranks == nullptr) {
      Error("missing_key", Join(path, "ranks"), "the differential scheme needs ranks");
      return leader;
    }
    if (!ranks->is_array() || ranks->empty()) {
      Error("bad_value", Join(path, "ranks"),
            "expected a non-empty array of {name, rate}, lowest rank first");
      return leader;
    }
    if (TooMany(*ranks, kMaxRanks, Join(path, "ranks"), "ranks")) return leader;
    for (size_t i = 0; i < ranks->size(); ++i) {
      const std::string rank_path = Index(Join(path, "ranks"), i);
      const Json& rank_doc = (*ranks)[i];
      if (!ExpectObject(rank_doc, rank_path)) continue;
      CheckKeys(rank_doc, rank_path, {"name", "rate"});
      auto name = String(rank_doc, "name", rank_path);
      auto rate = RateField(rank_doc, "rate", rank_path);
      if (!rank_doc.contains("name"))
        Error("missing_key", Join(rank_path, "name"), "a rank needs a name");
      if (!rank_doc.contains("rate"))
        Error("missing_key", Join(rank_path, "rate"), "a rank needs a rate");
      if (!name || !rate) continue;
      for (const LeaderRule::Rank& earlier : leader.ranks) {
        if (earlier.name == *name) {
          Error("bad_value", Join(rank_path, "name"),
                absl::StrCat("rank \"", *name, "\" is listed twice"));
        }
      }
      if (!leader.ranks.empty() && *rate <= leader.ranks.back().rate) {
        Error("rank_order", Join(rank_path, "rate"),
              absl::StrCat("ranks go from lowest to highest: ", rate->ToString(), " is not above ",
                           leader.ranks.back().rate.ToString()));
      }
      leader.ranks.push_back({*name, *rate});
    }
    return leader;
  }

  // Reads the {fixed}|{rate}|{tiers, mode} part of an object at `path`.
  std::optional<AmountRule> ReadAmountRule(const Json& doc, const std::string& path) {
    const bool has_fixed = doc.contains("fixed");
    const bool has_rate = doc.contains("rate");
    const bool has_tiers = doc.contains("tiers");
    const int count = int{has_fixed} + int{has_rate} + int{has_tiers};
    if (count != 1) {
      Error("bad_rule", path,
            count == 0 ? "an amount rule needs one of fixed, rate or tiers"
                       : "an amount rule has exactly one of fixed, rate or tiers");
      return std::nullopt;
    }
    AmountRule rule;
    rule.path = path;
    if (doc.contains("mode") && !has_tiers) {
      Error("bad_rule", Join(path, "mode"), "mode applies only to tiers");
    }
    if (has_fixed) {
      rule.kind = AmountRule::Kind::kFixed;
      auto fixed = MoneyField(doc, "fixed", path);
      if (!fixed) return std::nullopt;
      rule.fixed = *fixed;
      return rule;
    }
    if (has_rate) {
      rule.kind = AmountRule::Kind::kRate;
      auto rate = RateField(doc, "rate", path);
      if (!rate) return std::nullopt;
      rule.rate = *rate;
      return rule;
    }
    rule.kind = AmountRule::Kind::kTiers;
    if (auto mode = String(doc, "mode", path)) {
      if (*mode == "whole") {
        rule.mode = TierMode::kWhole;
      } else if (*mode == "marginal") {
        rule.mode = TierMode::kMarginal;
      } else {
        Error("bad_value", Join(path, "mode"),
              absl::StrCat("unknown tier mode \"", *mode, "\" (expected whole or marginal)"));
      }
    }
    if (!ReadTiers(doc.at("tiers"), Join(path, "tiers"), &rule)) return std::nullopt;
    return rule;
  }

  bool ReadTiers(const Json& tiers, const std::string& path, AmountRule* rule) {
    if (!tiers.is_array() || tiers.empty()) {
      Error("bad_value", path,
            absl::StrCat("expected a non-empty array of tiers, found ", DescribeJson(tiers)));
      return false;
    }
    if (TooMany(tiers, kMaxTiers, path, "tiers")) return false;
    const size_t before = findings_->size();
    for (size_t i = 0; i < tiers.size(); ++i) {
      const std::string tier_path = Index(path, i);
      const Json& doc = tiers[i];
      if (!ExpectObject(doc, tier_path)) continue;
      CheckKeys(doc, tier_path, {"from", "above", "below", "upto", "rate", "fixed"});
      Tier tier;
      auto from = MoneyField(doc, "from", tier_path);
      auto above = MoneyField(doc, "above", tier_path);
      auto below = MoneyField(doc, "below", tier_path);
      auto upto = MoneyField(doc, "upto", tier_path);
      if (doc.contains("from") && doc.contains("above")) {
        Error("bad_rule", tier_path, "a tier has one lower bound: from or above, not both");
      }
      if (doc.contains("below") && doc.contains("upto")) {
        Error("bad_rule", tier_path, "a tier has one upper bound: below or upto, not both");
      }
      tier.lower = from ? from : above;
      tier.lower_inclusive = !doc.contains("above");
      tier.upper = below ? below : upto;
      tier.upper_inclusive = doc.contains("upto");
      if (doc.contains("rate") == doc.contains("fixed")) {
        Error("bad_rule", tier_path, "a tier pays exactly one of rate or fixed");
      }
      tier.rate = RateField(doc, "rate", tier_path);
      tier.fixed = MoneyField(doc, "fixed", tier_path);
      if (doc.contains("fixed") && rule->mode == TierMode::kMarginal) {
        Error("bad_rule", Join(tier_path, "fixed"), "marginal tiers pay rates, not fixed amounts");
      }
      rule->tiers.push_back(tier);
    }
    if (findings_->size() != before) return false;
    return CheckTierLayout(rule->tiers, path);
  }

  // Tiers must cover [0, ∞) in order, each meeting the next exactly.
  bool CheckTierLayout(const std::vector<Tier>& tiers, const std::string& path) {
    const size_t before = findings_->size();
    // Order first: a reversed or shuffled table would otherwise read as a
    // list of gaps and overlaps.
    for (size_t i = 0; i < tiers.size(); ++i) {
      const Tier& tier = tiers[i];
      if (tier.lower && tier.upper &&
          (*tier.upper < *tier.lower ||
           (*tier.upper == *tier.lower && !(tier.lower_inclusive && tier.upper_inclusive)))) {
        Error("tier_order", Index(path, i),
              absl::StrCat("empty range: starts at ", tier.lower->ToString(), " and ends at ",
                           tier.upper->ToString()));
      }
      if (i == 0) continue;
      const Money start = tier.lower.value_or(Money());
      const Money previous_start = tiers[i - 1].lower.value_or(Money());
      if (start < previous_start) {
        Error("tier_order", Index(path, i),
              absl::StrCat("tiers must be in increasing order: this tier starts at ",
                           start.ToString(), ", after a tier starting at ",
                           previous_start.ToString()));
      }
    }
    if (findings_->size() != before) return false;
    for (size_t i = 0; i < tiers.size(); ++i) {
      const Tier& tier = tiers[i];
      const std::string tier_path = Index(path, i);
      if (i == 0 && tier.lower && !tier.lower->is_zero()) {
        Error("tier_gap", tier_path,
              absl::StrCat("the first tier starts at ", tier.lower->ToString(),
                           ": bases below it would earn nothing; omit its lower bound"));
      }
      if (i > 0 && !tier.lower) {
        Error("tier_gap", tier_path,
              absl::StrCat("only the first tier may omit its lower bound; write \"",
                           tiers[i - 1].upper_inclusive ? "above" : "from", "\": \"",
                           tiers[i - 1].upper ? tiers[i - 1].upper->ToString() : "?", "\""));
      }
      if (i + 1 < tiers.size() && !tier.upper) {
        Error("tier_overlap", tier_path,
              absl::StrCat("only the last tier may omit its upper bound; it overlaps ",
                           Index(path, i + 1)));
      }
      if (i + 1 == tiers.size() && tier.upper) {
        Error("tier_gap", tier_path,
              absl::StrCat("the last tier ends at ", tier.upper->ToString(),
                           ": bases above it would earn nothing; omit its upper bound"));
      }
      if (i == 0 || !tier.lower || !tiers[i - 1].upper) continue;
      const Tier& previous = tiers[i - 1];
      const Money end = *previous.upper;
      const Money start = *tier.lower;
      const std::string end_text =
          absl::StrCat(previous.upper_inclusive ? "upto " : "below ", end.ToString());
      const std::string start_text =
          absl::StrCat(tier.lower_inclusive ? "from " : "above ", start.ToString());
      if (start > end || (start == end && !previous.upper_inclusive && !tier.lower_inclusive)) {
        Error("tier_gap", tier_path,
              absl::StrCat("gap: ", Index(path, i - 1), " ends ", end_text,
                           " but this tier starts ", start_text, " (write \"",
                           previous.upper_inclusive ? "above " : "from ", end.ToString(), "\")"));
      } else if (start < end || (previous.upper_inclusive && tier.lower_inclusive)) {
        Error("tier_overlap", tier_path,
              absl::StrCat("overlap: ", Index(path, i - 1), " ends ", end_text,
                           " but this tier starts ", start_text, " (write \"",
                           previous.upper_inclusive ? "above " : "from ", end.ToString(), "\")"));
      }
    }
    return findings_->size() == before;
  }

  void ReadCaps(const Json& doc, Policy* policy) {
    const Json* caps = Object(doc, "caps", "");
    if (caps == nullptr) return;
    CheckKeys(*caps, "caps", {"order_total", "member_month", "budget"});
    policy->cap_order_total = RateField(*caps, "order_total", "caps");
    policy->cap_member_month = MoneyField(*caps, "member_month", "caps");
    policy->cap_budget = MoneyField(*caps, "budget", "caps");
  }

  void ReadInviteRewards(const Json& doc, Policy* policy) {
    const Json* invite = Object(doc, "invite_rewards", "");
    if (invite == nullptr) return;
    const std::string path = "invite_rewards";
    CheckKeys(*invite, path, {"steps", "valid", "max_rewards"});
    InviteRewards rewards;
    const Json* steps = Find(*invite, "steps");
    if (steps == nullptr) {
      Error("missing_key", Join(path, "steps"), "invite_rewards needs steps");
    } else if (!steps->is_array() || steps->empty()) {
      Error("bad_value", Join(path, "steps"), "expected a non-empty array of {at, reward}");
    } else if (!TooMany(*steps, kMaxInviteSteps, Join(path, "steps"), "steps")) {
      for (size_t i = 0; i < steps->size(); ++i) {
        const std::string step_path = Index(Join(path, "steps"), i);
        const Json& step_doc = (*steps)[i];
        if (!ExpectObject(step_doc, step_path)) continue;
        CheckKeys(step_doc, step_path, {"at", "reward"});
        auto at = Int(step_doc, "at", step_path, 1);
        auto reward = MoneyField(step_doc, "reward", step_path);
        if (!step_doc.contains("at"))
          Error("missing_key", Join(step_path, "at"), "a step needs at");
        if (!step_doc.contains("reward")) {
          Error("missing_key", Join(step_path, "reward"), "a step needs a reward");
        }
        if (!at || !reward) continue;
        if (!rewards.steps.empty() && *at <= rewards.steps.back().at) {
          Error("bad_value", Join(step_path, "at"),
                absl::StrCat("steps must be in increasing order of at: ", *at, " is not above ",
                             rewards.steps.back().at));
        }
        rewards.steps.push_back({*at, *reward});
      }
    }
    if (const Json* valid = Object(*invite, "valid", path)) {
      const std::string valid_path = Join(path, "valid");
      CheckKeys(*valid, valid_path, {"same_region", "requires_purchase", "distinct_identity"});
      if (auto v = Bool(*valid, "same_region", valid_path)) rewards.same_region = *v;
      if (auto v = Bool(*valid, "requires_purchase", valid_path)) rewards.requires_purchase = *v;
      if (auto v = Bool(*valid, "distinct_identity", valid_path)) rewards.distinct_identity = *v;
    }
    rewards.max_rewards = Int(*invite, "max_rewards", path, 0);
    policy->invite_rewards = std::move(rewards);
  }

  void ReadPromotions(const Json& doc, Policy* policy) {
    const Json* promotions = Find(doc, "promotions");
    if (promotions == nullptr) return;
    if (!promotions->is_array()) {
      Error("bad_value", "promotions", "expected an array of {grant, when}");
      return;
    }
    if (TooMany(*promotions, kMaxPromotions, "promotions", "promotions")) return;
    for (size_t i = 0; i < promotions->size(); ++i) {
      const std::string path = Index("promotions", i);
      const Json& promotion_doc = (*promotions)[i];
      if (!ExpectObject(promotion_doc, path)) continue;
      CheckKeys(promotion_doc, path, {"grant", "when"});
      Promotion promotion;
      auto grant = String(promotion_doc, "grant", path);
      if (!promotion_doc.contains("grant"))
        Error("missing_key", Join(path, "grant"), "a promotion needs grant");
      if (grant) promotion.grant = *grant;
      const Json* when = Object(promotion_doc, "when", path);
      if (!promotion_doc.contains("when"))
        Error("missing_key", Join(path, "when"), "a promotion needs when");
      if (when != nullptr) {
        const std::string when_path = Join(path, "when");
        CheckKeys(*when, when_path,
                  {"referred_orders", "referred_buyers", "window_days", "own_spend"});
        promotion.referred_orders = Int(*when, "referred_orders", when_path, 1);
        promotion.referred_buyers = Int(*when, "referred_buyers", when_path, 1);
        promotion.window_days = Int(*when, "window_days", when_path, 1, kMaxDays);
        promotion.own_spend = MoneyField(*when, "own_spend", when_path);
        if (!when->contains("referred_orders") && !when->contains("referred_buyers") &&
            !when->contains("own_spend")) {
          Error("missing_key", when_path,
                "when needs referred_orders, referred_buyers or own_spend");
        }
        if (when->contains("window_days") && !when->contains("referred_orders") &&
            !when->contains("referred_buyers")) {
          Error("bad_rule", Join(when_path, "window_days"),
                "window_days applies to referred_orders and referred_buyers");
        }
      }
      policy->promotions.push_back(std::move(promotion));
    }
  }

  std::optional<Action> ReadAction(const Json& value, const std::string& path, bool* off) {
    *off = false;
    if (!value.is_string()) {
      Error("bad_value", path,
            absl::StrCat("expected deny, hold, flag or off, found ", DescribeJson(value)));
      return std::nullopt;
    }
    const std::string text = value.get<std::string>();
    if (text == "deny") return Action::kDeny;
    if (text == "hold") return Action::kHold;
    if (text == "flag") return Action::kFlag;
    if (text == "off") {
      *off = true;
      return std::nullopt;
    }
    Error("bad_value", path,
          absl::StrCat("unknown action \"", text, "\" (expected deny, hold, flag or off)"));
    return std::nullopt;
  }

  // A check is "off", an action string, or an object with its parameters
  // and an optional action (default hold). Returns the object or nullptr.
  const Json* ReadCheck(const Json& checks, std::string_view name, bool* enabled, Action* action,
                        std::initializer_list<const char*> params) {
    const std::string path = Join("checks", name);
    const Json* check = Find(checks, name);
    if (check == nullptr) return nullptr;
    bool off = false;
    if (check->is_string()) {
      auto parsed = ReadAction(*check, path, &off);
      *enabled = !off && parsed.has_value();
      if (parsed) *action = *parsed;
      if (*enabled && params.size() != 0) {
        Error("missing_key", path,
              absl::StrCat(std::string(name), " needs ", absl::StrJoin(params, " and ")));
        *enabled = false;
      }
      return nullptr;
    }
    if (!ExpectObject(*check, path)) return nullptr;
    std::vector<const char*> allowed(params);
    allowed.push_back("action");
    for (const auto& [key, value] : check->items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        Error("unknown_key", Join(path, key),
              absl::StrCat("unknown key \"", key, "\" (expected one of ",
                           absl::StrJoin(allowed, ", "), ")"));
      }
    }
    for (const char* param : params) {
      if (!check->contains(std::string(param))) {
        Error("missing_key", Join(path, param),
              absl::StrCat(std::string(name), " needs ", std::string(param)));
      }
    }
    *enabled = true;
    if (const Json* action_doc = Find(*check, "action")) {
      auto parsed = ReadAction(*action_doc, Join(path, "action"), &off);
      if (off) *enabled = false;
      if (parsed) *action = *parsed;
    }
    return check;
  }

  void ReadChecks(const Json& doc, Policy* policy) {
    const Json* checks = Object(doc, "checks", "");
    if (checks == nullptr) return;
    CheckKeys(*checks, "checks", {"shared_identity", "split_orders", "velocity", "refund_rate"});
    Checks& out = policy->checks;
    bool enabled = false;
    Action action = Action::kHold;
    if (checks->contains("shared_identity")) {
      ReadCheck(*checks, "shared_identity", &enabled, &action, {});
      out.shared_identity = enabled ? std::optional<Action>(action) : std::nullopt;
    }
    action = Action::kHold;
    if (const Json* c =
            ReadCheck(*checks, "split_orders", &enabled, &action, {"max_orders", "window_minutes"});
        c != nullptr && enabled) {
      auto max_orders = Int(*c, "max_orders", "checks.split_orders", 1);
      auto window = Int(*c, "window_minutes", "checks.split_orders", 1, kMaxDays * 24 * 60);
      if (max_orders && window)
        out.split_orders = Checks::SplitOrders{*max_orders, *window, action};
    }
    action = Action::kHold;
    if (const Json* c =
            ReadCheck(*checks, "velocity", &enabled, &action, {"max_invites", "window_hours"});
        c != nullptr && enabled) {
      auto max_invites = Int(*c, "max_invites", "checks.velocity", 0);
      auto window = Int(*c, "window_hours", "checks.velocity", 1, kMaxDays * 24);
      if (max_invites && window) out.velocity = Checks::Velocity{*max_invites, *window, action};
    }
    action = Action::kHold;
    if (const Json* c =
            ReadCheck(*checks, "refund_rate", &enabled, &action, {"min_orders", "max_share"});
        c != nullptr && enabled) {
      auto min_orders = Int(*c, "min_orders", "checks.refund_rate", 1);
      auto max_share = RateField(*c, "max_share", "checks.refund_rate");
      if (min_orders && max_share)
        out.refund_rate = Checks::RefundRate{*min_orders, *max_share, action};
    }
  }

  // With declared ranks, a by_rank / rank_bonus key must name a role the
  // policy knows, so that a typo ("glod") cannot silently never match.
  void CheckRankNames(const Policy& policy) {
    std::vector<std::string> known = {"leader"};
    auto add_ranks = [&](const RuleSet& rules) {
      if (!rules.leader) return;
      for (const auto& rank : rules.leader->ranks) known.push_back(rank.name);
    };
    add_ranks(policy.rules);
    for (const auto& [name, rules] : policy.by_category) add_ranks(rules);
    if (known.size() == 1) return;  // no ranks declared: roles are free-form
    for (const Promotion& p : policy.promotions) known.push_back(p.grant);
    if (policy.eligible_role) known.push_back(*policy.eligible_role);
    auto check = [&](const std::string& name, const std::string& path) {
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        Error("unknown_rank", path,
              absl::StrCat("\"", name, "\" is not a declared rank or role (known: ",
                           absl::StrJoin(known, ", "), ")"));
      }
    };
    auto check_levels = [&](const RuleSet& rules, const std::string& prefix) {
      for (size_t i = 0; i < rules.levels.size(); ++i) {
        for (const auto& [rank, rule] : rules.levels[i].by_rank) {
          check(rank, Join(Join(Index(Join(prefix, "levels"), i), "by_rank"), rank));
        }
      }
    };
    check_levels(policy.rules, "");
    for (const auto& [name, rules] : policy.by_category) {
      check_levels(rules, Join("by_category", name));
    }
    for (const auto& [rank, rule] : policy.rank_bonus) check(rank, Join("rank_bonus", rank));
  }

  // The engine gives every distinct role name one bit of a 64-bit mask;
  // the names a policy mentions must all fit.
  void CheckRoleCount(const Policy& policy) {
    std::vector<std::pair<std::string, std::string>> named;  // name, path
    if (policy.eligible_role) named.emplace_back(*policy.eligible_role, "eligible.role");
    for (size_t i = 0; i < policy.promotions.size(); ++i) {
      named.emplace_back(policy.promotions[i].grant, Join(Index("promotions", i), "grant"));
    }
    auto add_rules = [&](const RuleSet& rules, const std::string& prefix) {
      for (size_t i = 0; i < rules.levels.size(); ++i) {
        for (const auto& [rank, rule] : rules.levels[i].by_rank) {
          named.emplace_back(rank, Join(Join(Index(Join(prefix, "levels"), i), "by_rank"), rank));
        }
      }
      if (!rules.leader) return;
      for (size_t i = 0; i < rules.leader->ranks.size(); ++i) {
        named.emplace_back(rules.leader->ranks[i].name,
                           Join(Index(Join(rules.leader->path, "ranks"), i), "name"));
      }
    };
    add_rules(policy.rules, "");
    for (const auto& [name, rules] : policy.by_category)
      add_rules(rules, Join("by_category", name));
    for (const auto& [role, rule] : policy.rank_bonus)
      named.emplace_back(role, Join("rank_bonus", role));
    std::vector<std::string> distinct = {"leader"};
    for (const auto& [name, path] : named) {
      if (std::find(distinct.begin(), distinct.end(), name) != distinct.end()) continue;
      distinct.push_back(name);
      if (distinct.size() > kMaxRoleNames) {
        Error("bad_value", path,
              absl::StrCat("more than ", kMaxRoleNames,
                           " distinct role names (\"leader\" included) in one policy"));
        return;
      }
    }
  }

  std::vector<LintFinding>* findings_;
};

// TOML tables and arrays nest no deeper than JSON documents may (json_util).
constexpr int kMaxTomlDepth = 64;

// Converts a toml++ node into the JSON data model; false (with `where` set
// to the node's line) when it nests deeper than kMaxTomlDepth, since the
// conversion recurses and `[a.b.c.…]` headers can nest without bound.
bool NodeToJson(const toml::node& node, int depth, Json* out, toml::source_position* where) {
  if (depth > kMaxTomlDepth) {
    *where = node.source().begin;
    return false;
  }
  if (const toml::table* table = node.as_table()) {
    // toml::table is ordered by key; restore the written order, which
    // decides "first listed wins" for ranks.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, value] : *table) entries.emplace_back(&key, &value);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const toml::source_position pa = a.first->source().begin;
      const toml::source_position pb = b.first->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    *out = Json::object();
    return std::ranges::all_of(entries, [&](const auto& entry) {
      return NodeToJson(*entry.second, depth + 1, &(*out)[std::string(entry.first->str())], where);
    });
  }
  if (const toml::array* array = node.as_array()) {
    *out = Json::array();
    for (const toml::node& element : *array) {
      out->push_back(nullptr);
      if (!NodeToJson(element, depth + 1, &out->back(), where)) return false;
    }
    return true;
  }
  if (auto v = node.value_exact<std::string>()) {
    *out = *v;
  } else if (auto v = node.value_exact<int64_t>()) {
    *out = *v;
  } else if (auto v = node.value_exact<bool>()) {
    *out = *v;
  } else if (auto v = node.value_exact<double>()) {
    *out = *v;  // refused later where money is read
  } else {
    // Dates and times have no place in a policy; keep them as an object so
    // that reading one anywhere fails with "expected …, found an object".
    *out = Json::object({{"toml_date_or_time", true}});
  }
  return true;
}

// toml++ parses and frees dotted keys (`a.b.c = 1`, `[a.b.c]`) recursively,
// so a key of some 30000 parts overflows the stack inside the library. This
// scan, before toml++ sees the text, finds the line of the first key with
// more than kMaxTomlDepth parts (dots outside strings and comments), or 0.
int64_t LineOfDeepDottedKey(std::string_view text) {
  int64_t line = 1;
  int dots = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      // Skip a string: basic or literal, one-line or multi-line.
      const bool multi = text.substr(i, 3) == std::string_view(c == '"' ? R"(""")" : R"(''')");
      const std::string_view close = multi ? text.substr(i, 3) : text.substr(i, 1);
      size_t j = i + close.size();
      while (j < text.size() && text.substr(j, close.size()) != close) {
        if (text[j] == '\n') ++line;
        if (c == '"' && text[j] == '\\') ++j;  // an escape: skip the next char
        ++j;
      }
      i = std::min(text.size(), j + close.size()) - 1;
    } else if (c == '.') {
      if (++dots > kMaxTomlDepth) return line;
    } else if (c == '=' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}') {
      dots = 0;
    }
  }
  return 0;
}

}  // namespace

Policy ReadPolicy(const Json& document, std::vector<LintFinding>* findings) {
  return Reader(findings).Read(document);
}

absl::StatusOr<Json> TomlToJson(std::string_view text) {
  if (const int64_t line = LineOfDeepDottedKey(text); line != 0) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, "bad_toml",
        absl::StrCat("TOML key at line ", line, " has more than ", kMaxTomlDepth, " dotted parts"));
  }
  try {
    toml::table table = toml::parse(text);
    Json out;
    toml::source_position where;
    if (!NodeToJson(table, 0, &out, &where)) {
      return MakeError(
          absl::StatusCode::kInvalidArgument, "bad_toml",
          absl::StrCat("TOML nests deeper than ", kMaxTomlDepth, " tables/arrays at line ",
                       where.line, ", column ", where.column));
    }
    return out;
  } catch (const toml::parse_error& error) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, "bad_toml",
        absl::StrCat("invalid TOML at line ", error.source().begin.line, ", column ",
                     error.source().begin.column, ": ", std::string(error.description())));
  }
}

absl::StatusOr<Json> ParsePolicyText(std::string_view text, PolicyFormat format) {
  if (format == PolicyFormat::kToml) return TomlToJson(text);
  return ParseJsonText(text, "policy");
}

PolicyFormat FormatOfPath(std::string_view path) {
  return path.size() >= 5 && path.substr(path.size() - 5) == ".toml" ? PolicyFormat::kToml
                                                                     : PolicyFormat::kJson;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(absl::StatusCode::kNotFound, "io_error",
                     absl::StrCat(path, ": cannot open file"));
  }
  // Policies and cases are small; a cap keeps a wrong path (a device, a
  // huge log) from eating memory. docs/limits.md.
  constexpr size_t kMaxFileBytes = size_t{64} << 20;
  std::string content;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    content.append(buffer, static_cast<size_t>(in.gcount()));
    if (content.size() > kMaxFileBytes) {
      return MakeError(absl::StatusCode::kResourceExhausted, "io_error",
                       absl::StrCat(path, ": larger than ", kMaxFileBytes >> 20, " MiB"));
    }
  }
  return content;
}

}  // namespace refpay::internal
