// refpay — command-line front end: audit cases, lint, batch settlement.
//
//   refpay case check FILE|DIR...     run audit cases, pass/fail with diffs
//   refpay case run FILE [--json]     print a case's computed outcome
//   refpay lint POLICY                lint findings; exit 1 on errors
//   refpay settle --policy P --events E.jsonl --out DIR [--as-of T]
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "refpay/case.h"
#include "refpay/lint.h"
#include "refpay/status.h"

namespace refpay::cli {
namespace {

constexpr char kUsage[] = R"(usage:
  refpay case check FILE|DIR...   run audit cases (SPEC §8); exit 1 if any fails
  refpay case run FILE [--json]   print the computed outcome of one case
  refpay lint POLICY              report policy problems (SPEC §7); exit 1 on errors
  refpay settle --policy P (--events E.jsonl | --members M.csv --orders O.csv)
                --out DIR [--as-of T] [--quiet]
                                  settle an event stream; writes ledger.csv,
                                  balances.csv, flags.csv, errors.csv, summary.txt
)";

// Expands directories to the *.json files in them, sorted.
std::vector<std::string> CaseFiles(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const std::string& arg : args) {
    if (!std::filesystem::is_directory(arg)) {
      files.push_back(arg);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(arg)) {
      if (entry.path().extension() == ".json") found.push_back(entry.path().string());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

int CaseCheck(const std::vector<std::string>& args) {
  const std::vector<std::string> files = CaseFiles(args);
  if (files.empty()) {
    std::cerr << "refpay case check: no case files given\n";
    return 2;
  }
  int passed = 0;
  int failed = 0;
  for (const std::string& file : files) {
    absl::StatusOr<CaseResult> result = CheckCaseFile(file);
    if (!result.ok()) {
      ++failed;
      std::cout << "ERROR " << file << "\n  " << result.status().message() << "\n";
      continue;
    }
    if (result->passed) {
      ++passed;
      std::cout << "PASS  " << result->name << "  (" << file << ")\n";
      continue;
    }
    ++failed;
    std::cout << "FAIL  " << result->name << "  (" << file << ")\n";
    for (const std::string& line : result->diff) std::cout << "    " << line << "\n";
  }
  std::cout << "cases: " << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

int CaseRun(const std::vector<std::string>& args) {
  std::string file;
  bool json = false;
  for (const std::string& arg : args) {
    if (arg == "--json") {
      json = true;
    } else if (file.empty()) {
      file = arg;
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }
  if (file.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  absl::StatusOr<CaseResult> result = CheckCaseFile(file);
  if (!result.ok()) {
    std::cerr << "refpay: " << result.status().message() << "\n";
    return 2;
  }
  const CaseOutcome& outcome = result->outcome;
  if (json) {
    std::cout << outcome.ToJson() << "\n";
    return 0;
  }
  std::cout << result->name << "\n" << outcome.ToJson() << "\n";
  for (const CaseError& error : outcome.errors) {
    std::cout << "event " << error.event << ": " << error.code << ": " << error.message << "\n";
  }
  for (const LintFinding& finding : outcome.lint) {
    std::cout << SeverityName(finding.severity) << " " << finding.code << " " << finding.path
              << ": " << finding.message << "\n";
  }
  return 0;
}

int Lint(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    std::cerr << kUsage;
    return 2;
  }
  const std::vector<LintFinding> findings = LintFile(args[0]);
  for (const LintFinding& f : findings) {
    std::cout << SeverityName(f.severity) << " " << f.code << " "
              << (f.path.empty() ? "(policy)" : f.path) << ": " << f.message << "\n";
  }
  if (findings.empty()) std::cout << args[0] << ": no findings\n";
  return HasErrors(findings) ? 1 : 0;
}

}  // namespace
}  // namespace refpay::cli

int main(int argc, char** argv) {
  using namespace refpay::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "case" && !args.empty()) {
    const std::string sub = args[0];
    args.erase(args.begin());
    if (sub == "check") return CaseCheck(args);
    if (sub == "run") return CaseRun(args);
  }
  if (command == "lint") return Lint(args);
  if (command == "settle") return Settle(args);
  std::cerr << "refpay: unknown command\n" << kUsage;
  return 2;
}
