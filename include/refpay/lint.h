// refpay/lint.h — policy lint (合规检查, SPEC §7): every problem at once.
//
// Lint reads a policy document without running it and reports each problem
// with a code, a severity and the key path. Errors make the policy unusable
// (Policy::FromJson fails on the first of them); warnings flag schemes that
// are legal to run but risky: paid_depth (三级分销 and deeper is the line for
// pyramid-selling prosecution in China), leader_unbounded,
// fixed_over_amount, total_rate.
//
//   for (const refpay::LintFinding& f : refpay::LintFile("policy.toml")) {
//     std::cout << refpay::SeverityName(f.severity) << " " << f.code << " "
//               << f.path << ": " << f.message << "\n";
//   }
#ifndef REFPAY_LINT_H_
#define REFPAY_LINT_H_

#include <string>
#include <string_view>
#include <vector>

#include "refpay/policy.h"

namespace refpay {

// refpay::Severity of a lint finding.
enum class Severity { kWarning, kError };

// refpay::SeverityName() is "warning" or "error".
const char* SeverityName(Severity severity);

// refpay::LintFinding is one problem found in a policy.
struct LintFinding {
  std::string code;  // "tier_gap", "paid_depth", …
  Severity severity = Severity::kError;
  std::string path;     // "levels[0].tiers[1]"; "" for the whole policy
  std::string message;  // what is wrong and what to write instead
};

// refpay::PolicyFormat of a document's text.
enum class PolicyFormat { kJson, kToml };

// refpay::LintText() lints a policy document: syntax and schema errors, then
// (if the policy is usable) the §7 warnings. Findings come in document order.
std::vector<LintFinding> LintText(std::string_view text, PolicyFormat format);

// refpay::LintFile() lints a .json or .toml file; an unreadable file is an
// `io_error` finding.
std::vector<LintFinding> LintFile(const std::string& path);

// refpay::LintPolicy() reports the §7 warnings of an already valid policy.
std::vector<LintFinding> LintPolicy(const Policy& policy);

// refpay::HasErrors() says whether any finding has severity error.
bool HasErrors(const std::vector<LintFinding>& findings);

}  // namespace refpay

#endif  // REFPAY_LINT_H_
