#include "refpay/policy.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy_reader.h"
#include "refpay/lint.h"
#include "refpay/status.h"

namespace refpay {
namespace {

absl::StatusOr<Policy> FromDocument(const internal::Json& document) {
  std::vector<LintFinding> findings;
  Policy policy = internal::ReadPolicy(document, &findings);
  policy.document = document.dump();
  for (const LintFinding& finding : findings) {
    if (finding.severity != Severity::kError) continue;
    return MakeError(
        absl::StatusCode::kInvalidArgument, finding.code,
        finding.path.empty() ? finding.message : absl::StrCat(finding.path, ": ", finding.message));
  }
  return policy;
}

std::string BoundText(const Tier& tier) {
  std::vector<std::string> parts;
  if (tier.lower) {
    parts.push_back(
        absl::StrCat(tier.lower_inclusive ? "from " : "above ", tier.lower->ToString()));
  }
  if (tier.upper) {
    parts.push_back(
        absl::StrCat(tier.upper_inclusive ? "upto " : "below ", tier.upper->ToString()));
  }
  return parts.empty() ? "all amounts" : absl::StrJoin(parts, " ");
}

}  // namespace

const char* ActionName(Action action) {
  switch (action) {
    case Action::kFlag:
      return "flag";
    case Action::kHold:
      return "hold";
    case Action::kDeny:
      return "deny";
  }
  return "flag";
}

bool Tier::Contains(Money base) const {
  if (lower && (lower_inclusive ? base < *lower : base <= *lower)) return false;
  if (upper && (upper_inclusive ? base > *upper : base >= *upper)) return false;
  return true;
}

RuleAmount AmountRule::Compute(Money base, RoundingMode rounding) const {
  RuleAmount out;
  switch (kind) {
    case Kind::kFixed:
      out.amount = fixed;
      out.exact = Int128(fixed.fen()) * Rate::kOne;
      return out;
    case Kind::kRate:
      out.exact = ExactProduct(base, rate);
      break;
    case Kind::kTiers:
      if (mode == TierMode::kWhole) {
        for (size_t i = 0; i < tiers.size(); ++i) {
          if (!tiers[i].Contains(base)) continue;
          out.tier = static_cast<int>(i);
          if (tiers[i].fixed) {
            out.amount = *tiers[i].fixed;
            out.exact = Int128(out.amount.fen()) * Rate::kOne;
            return out;
          }
          out.exact = ExactProduct(base, *tiers[i].rate);
          break;
        }
      } else {
        // Each slice [lower, upper) of the base earns its own rate; the sum
        // is exact and rounded once.
        for (const Tier& tier : tiers) {
          const Money lower = tier.lower.value_or(Money());
          if (base <= lower) break;
          const Money top = tier.upper && *tier.upper < base ? *tier.upper : base;
          out.exact += ExactProduct(Money::FromFen(top.fen() - lower.fen()), *tier.rate);
        }
      }
      break;
  }
  out.amount = RoundProduct(out.exact, rounding);
  return out;
}

std::string AmountRule::Explain(Money base, RoundingMode rounding) const {
  const RuleAmount result = Compute(base, rounding);
  const std::string rounded =
      absl::StrCat(" = ", FormatExact(result.exact), " → ", result.amount.ToString(), " ",
                   RoundingModeName(rounding));
  switch (kind) {
    case Kind::kFixed:
      return absl::StrCat(path, " fixed ", fixed.ToString());
    case Kind::kRate:
      return absl::StrCat(path, " ", rate.ToString(), " × ", base.ToString(), rounded);
    case Kind::kTiers:
      break;
  }
  if (mode == TierMode::kWhole) {
    if (result.tier < 0) return absl::StrCat(path, " no tier contains ", base.ToString());
    const Tier& tier = tiers[result.tier];
    const std::string head =
        absl::StrCat(path, ".tiers[", result.tier, "] (", BoundText(tier), ")");
    if (tier.fixed) return absl::StrCat(head, " fixed ", tier.fixed->ToString());
    return absl::StrCat(head, " ", tier.rate->ToString(), " × ", base.ToString(), rounded);
  }
  std::vector<std::string> slices;
  for (const Tier& tier : tiers) {
    const Money lower = tier.lower.value_or(Money());
    if (base <= lower) break;
    const Money top = tier.upper && *tier.upper < base ? *tier.upper : base;
    slices.push_back(absl::StrCat(tier.rate->ToString(), " × ",
                                  Money::FromFen(top.fen() - lower.fen()).ToString()));
  }
  return absl::StrCat(path, " marginal ", absl::StrJoin(slices, " + "), rounded);
}

Rate AmountRule::MaxRate() const {
  switch (kind) {
    case Kind::kFixed:
      return {};
    case Kind::kRate:
      return rate;
    case Kind::kTiers:
      break;
  }
  Rate highest;
  for (const Tier& tier : tiers) {
    if (tier.rate && *tier.rate > highest) highest = *tier.rate;
  }
  return highest;
}

absl::StatusOr<Policy> Policy::FromJson(std::string_view json_text) {
  REFPAY_ASSIGN_OR_RETURN(internal::Json document,
                          internal::ParsePolicyText(json_text, PolicyFormat::kJson));
  return FromDocument(document);
}

absl::StatusOr<Policy> Policy::FromToml(std::string_view toml_text) {
  REFPAY_ASSIGN_OR_RETURN(internal::Json document,
                          internal::ParsePolicyText(toml_text, PolicyFormat::kToml));
  return FromDocument(document);
}

absl::StatusOr<Policy> Policy::FromFile(const std::string& path) {
  REFPAY_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  absl::StatusOr<internal::Json> document =
      internal::ParsePolicyText(text, internal::FormatOfPath(path));
  absl::StatusOr<Policy> policy =
      document.ok() ? FromDocument(*document) : absl::StatusOr<Policy>(document.status());
  if (!policy.ok()) {
    return MakeError(policy.status().code(), ErrorCodeOf(policy.status()),
                     absl::StrCat(path, ": ", policy.status().message()));
  }
  return policy;
}

const RuleSet& Policy::RulesFor(std::string_view category) const {
  for (const auto& [name, rules] : by_category) {
    if (name == category) return rules;
  }
  return rules;
}

}  // namespace refpay
