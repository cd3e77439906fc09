// refpay/case.h — audit cases (SPEC §8): a policy, events, an `as_of` time
// and the expected outcome, run and compared with a readable diff.
//
//   absl::StatusOr<refpay::CaseResult> result =
//       refpay::CheckCaseFile("tests/cases/c01_levels.json");
//   if (!result.ok()) { std::cerr << result.status().message(); return 2; }
//   std::cout << (result->passed ? "PASS " : "FAIL ") << result->name << "\n";
//   for (const std::string& line : result->diff) std::cout << "  " << line << "\n";
//
// CaseOutcome::ToJson() prints the computed outcome in exactly the `expect`
// shape, so any other tool can compare it.
#ifndef REFPAY_CASE_H_
#define REFPAY_CASE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "refpay/ledger.h"
#include "refpay/lint.h"

namespace refpay {

// refpay::CaseError is one rejected event: its 0-based index and reason.
struct CaseError {
  int event = 0;
  std::string code;
  std::string message;
};

// refpay::CaseOutcome is what running a case produced.
struct CaseOutcome {
  std::vector<NetRow> ledger;
  std::vector<BalanceRow> balances;
  std::vector<Flag> flags;
  std::vector<CaseError> errors;
  std::vector<LintFinding> lint;

  // refpay::CaseOutcome::ToJson() writes {ledger, balances, flags, errors,
  // lint} in the `expect` shape, indented by `indent` (-1: one line).
  std::string ToJson(int indent = 1) const;
};

// refpay::CaseResult is a case's outcome compared with its expectations.
struct CaseResult {
  std::string name;
  bool passed = false;
  std::vector<std::string> diff;  // "ledger: missing o1 A level1 pending 10.00", …
  CaseOutcome outcome;
};

// refpay::RunCaseText() runs a case document; `base_dir` resolves a
// `policy_file`. Fails (reason bad_case) when the case itself is malformed:
// not JSON, no events, a bad `as_of` or one preceding the last event.
absl::StatusOr<CaseResult> RunCaseText(std::string_view json, const std::string& base_dir);

// refpay::CheckCaseFile() reads and runs one case file.
absl::StatusOr<CaseResult> CheckCaseFile(const std::string& path);

}  // namespace refpay

#endif  // REFPAY_CASE_H_
