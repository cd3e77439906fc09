#include "refpay/lint.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "policy_reader.h"
#include "refpay/status.h"

namespace refpay {
namespace {

constexpr int64_t kTotalRateLimitPpm = 500'000;  // 50%

class PolicyLinter {
 public:
  explicit PolicyLinter(const Policy& policy) : policy_(policy) {}

  std::vector<LintFinding> Run() {
    LintRuleSet(policy_.rules, "");
    for (const auto& [name, rules] : policy_.by_category) {
      LintRuleSet(rules, absl::StrCat("by_category.", name));
    }
    for (const auto& [role, rule] : policy_.rank_bonus) LintFixed(rule);
    return std::move(findings_);
  }

 private:
  void Warn(std::string code, std::string path, std::string message,
            Severity severity = Severity::kWarning) {
    findings_.push_back({std::move(code), severity, std::move(path), std::move(message)});
  }

  // A category that does not override a part shares the default's rules;
  // each rule is linted once, where it is written.
  bool FirstVisit(const std::string& path) { return visited_.insert(path).second; }

  void LintRuleSet(const RuleSet& rules, const std::string& prefix) {
    const std::string levels_path = prefix.empty() ? "levels" : absl::StrCat(prefix, ".levels");
    const bool own_levels = rules.levels.empty() || FirstVisit(rules.levels[0].amount.path);
    if (own_levels) {
      const int64_t buyer_level = policy_.self_purchase ? 1 : 0;
      const int64_t ancestors = static_cast<int64_t>(rules.levels.size()) - buyer_level;
      if (ancestors > 2) {
        Warn("paid_depth", levels_path,
             absl::StrCat(ancestors,
                          " paid ancestor levels: three or more levels meet the pyramid-selling "
                          "(传销) threshold in China and WeChat allows two at most"),
             ancestors > 3 ? Severity::kError : Severity::kWarning);
      }
      for (const LevelRule& level : rules.levels) {
        LintFixed(level.amount);
        for (const auto& [rank, rule] : level.by_rank) LintFixed(rule);
      }
    }
    if (rules.leader && FirstVisit(rules.leader->path)) {
      if (!rules.leader->max_depth) {
        Warn("leader_unbounded", rules.leader->path,
             "the leader bonus searches every ancestor; set max_depth to bound it");
      }
      if (rules.leader->scheme == LeaderRule::Scheme::kNearest) LintFixed(rules.leader->amount);
    }
    LintTotalRate(rules, prefix);
  }

  void LintFixed(const AmountRule& rule) {
    if (policy_.cap_order_total) return;
    const Money smallest_order = Money::FromFen(1);
    if (rule.kind == AmountRule::Kind::kFixed && rule.fixed > smallest_order) {
      Warn("fixed_over_amount", rule.path,
           absl::StrCat("fixed ", rule.fixed.ToString(),
                        " can exceed a small order's amount and there is no "
                        "caps.order_total"));
    }
    if (rule.kind != AmountRule::Kind::kTiers) return;
    for (size_t i = 0; i < rule.tiers.size(); ++i) {
      const Tier& tier = rule.tiers[i];
      if (!tier.fixed) continue;
      Money lowest = tier.lower.value_or(smallest_order);
      if (tier.lower && !tier.lower_inclusive) lowest = Money::FromFen(lowest.fen() + 1);
      if (lowest < smallest_order) lowest = smallest_order;
      if (*tier.fixed > lowest) {
        Warn("fixed_over_amount", absl::StrCat(rule.path, ".tiers[", i, "]"),
             absl::StrCat("fixed ", tier.fixed->ToString(), " exceeds orders of ",
                          lowest.ToString(), " in this tier and there is no caps.order_total"));
      }
    }
  }

  void LintTotalRate(const RuleSet& rules, const std::string& prefix) {
    int64_t total = 0;
    for (const LevelRule& level : rules.levels) {
      Rate highest = level.amount.MaxRate();
      for (const auto& [rank, rule] : level.by_rank) highest = std::max(highest, rule.MaxRate());
      total += highest.ppm();
    }
    if (rules.leader) {
      Rate leader_rate = rules.leader->amount.MaxRate();
      if (rules.leader->scheme == LeaderRule::Scheme::kDifferential) {
        leader_rate = rules.leader->ranks.empty() ? Rate() : rules.leader->ranks.back().rate;
      }
      total += leader_rate.ppm();
      if (rules.leader->peer) total += leader_rate.ppm() * rules.leader->peer->ppm() / Rate::kOne;
    }
    Rate bonus;
    for (const auto& [role, rule] : policy_.rank_bonus) bonus = std::max(bonus, rule.MaxRate());
    total += bonus.ppm();
    if (total > kTotalRateLimitPpm) {
      Warn("total_rate", prefix,
           absl::StrCat("one order can pay up to ",
                        Rate::FromPpm(std::min(total, Rate::kOne))->ToString(),
                        total > Rate::kOne ? "+" : "", " of its amount in rates (limit 50%)"));
    }
  }

  const Policy& policy_;
  std::vector<LintFinding> findings_;
  absl::flat_hash_set<std::string> visited_;
};

}  // namespace

const char* SeverityName(Severity severity) {
  return severity == Severity::kError ? "error" : "warning";
}

std::vector<LintFinding> LintPolicy(const Policy& policy) { return PolicyLinter(policy).Run(); }

std::vector<LintFinding> LintText(std::string_view text, PolicyFormat format) {
  absl::StatusOr<internal::Json> document = internal::ParsePolicyText(text, format);
  if (!document.ok()) {
    return {{ErrorCodeOf(document.status()), Severity::kError, "",
             std::string(document.status().message())}};
  }
  std::vector<LintFinding> findings;
  Policy policy = internal::ReadPolicy(*document, &findings);
  if (HasErrors(findings)) return findings;
  std::vector<LintFinding> warnings = LintPolicy(policy);
  findings.insert(findings.end(), warnings.begin(), warnings.end());
  return findings;
}

std::vector<LintFinding> LintFile(const std::string& path) {
  absl::StatusOr<std::string> text = internal::ReadFile(path);
  if (!text.ok()) return {{"io_error", Severity::kError, "", std::string(text.status().message())}};
  return LintText(*text, internal::FormatOfPath(path));
}

bool HasErrors(const std::vector<LintFinding>& findings) {
  return std::any_of(findings.begin(), findings.end(),
                     [](const LintFinding& f) { return f.severity == Severity::kError; });
}

}  // namespace refpay
