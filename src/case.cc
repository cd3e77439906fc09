#include "refpay/case.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl_compat.h"
#include "json_util.h"
#include "policy_reader.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/status.h"

namespace refpay {
namespace {

using internal::Json;

absl::Status BadCase(std::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_case", message);
}

// Canonical comparison keys; std::map keeps diffs in a stable order.
using MoneyTable = std::map<std::string, Money>;
using Multiset = std::map<std::string, int>;

std::string LedgerKey(const std::string& order, const std::string& member, const std::string& kind,
                      const std::string& status) {
  return absl::StrCat(order, " ", member, " ", kind, " ", status);
}

absl::StatusOr<std::string> StringIn(const Json& object, const char* key, std::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return BadCase(absl::StrCat(std::string(where), ": \"", key, "\" must be a string"));
  }
  return it->get<std::string>();
}

absl::Status AddMoney(MoneyTable& table, const std::string& key, Money amount) {
  REFPAY_ASSIGN_OR_RETURN(Money sum, CheckedAdd(table[key], amount));
  table[key] = sum;
  return absl::OkStatus();
}

void DropZeros(MoneyTable& table) {
  std::erase_if(table, [](const auto& item) { return item.second.is_zero(); });
}

absl::StatusOr<MoneyTable> ExpectedLedger(const Json& rows) {
  if (!rows.is_array()) return BadCase("expect.ledger must be an array");
  MoneyTable table;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string where = absl::StrCat("expect.ledger[", i, "]");
    const Json& row = rows[i];
    if (!row.is_object()) return BadCase(absl::StrCat(where, " must be an object"));
    std::string order = "null";
    if (auto it = row.find("order"); it != row.end() && !it->is_null()) {
      REFPAY_ASSIGN_OR_RETURN(order, StringIn(row, "order", where));
    }
    REFPAY_ASSIGN_OR_RETURN(std::string member, StringIn(row, "member", where));
    REFPAY_ASSIGN_OR_RETURN(std::string kind, StringIn(row, "kind", where));
    REFPAY_ASSIGN_OR_RETURN(std::string status, StringIn(row, "status", where));
    if (!row.contains("amount")) return BadCase(absl::StrCat(where, ": missing amount"));
    REFPAY_ASSIGN_OR_RETURN(Money amount, internal::MoneyFromJson(row.at("amount"), where));
    REFPAY_RETURN_IF_ERROR(AddMoney(table, LedgerKey(order, member, kind, status), amount));
  }
  DropZeros(table);
  return table;
}

absl::StatusOr<MoneyTable> ExpectedBalances(const Json& balances) {
  if (!balances.is_object()) return BadCase("expect.balances must be an object");
  MoneyTable table;
  for (const auto& [member, statuses] : balances.items()) {
    if (!statuses.is_object()) {
      return BadCase(absl::StrCat("expect.balances.", member, " must be an object"));
    }
    for (const auto& [status, amount] : statuses.items()) {
      REFPAY_ASSIGN_OR_RETURN(
          Money money,
          internal::MoneyFromJson(amount, absl::StrCat("expect.balances.", member, ".", status)));
      REFPAY_RETURN_IF_ERROR(AddMoney(table, absl::StrCat(member, " ", status), money));
    }
  }
  DropZeros(table);
  return table;
}

absl::StatusOr<Multiset> ExpectedFlags(const Json& flags) {
  if (!flags.is_array()) return BadCase("expect.flags must be an array");
  Multiset set;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string where = absl::StrCat("expect.flags[", i, "]");
    if (!flags[i].is_object()) return BadCase(absl::StrCat(where, " must be an object"));
    REFPAY_ASSIGN_OR_RETURN(std::string check, StringIn(flags[i], "check", where));
    REFPAY_ASSIGN_OR_RETURN(std::string member, StringIn(flags[i], "member", where));
    std::string key = absl::StrCat(check, " ", member);
    if (auto it = flags[i].find("order"); it != flags[i].end() && !it->is_null()) {
      REFPAY_ASSIGN_OR_RETURN(std::string order, StringIn(flags[i], "order", where));
      absl::StrAppend(&key, " ", order);
    }
    ++set[key];
  }
  return set;
}

absl::StatusOr<Multiset> ExpectedErrors(const Json& errors) {
  if (!errors.is_array()) return BadCase("expect.errors must be an array");
  Multiset set;
  for (size_t i = 0; i < errors.size(); ++i) {
    const std::string where = absl::StrCat("expect.errors[", i, "]");
    const Json& error = errors[i];
    if (!error.is_object() || !error.contains("event") || !error.at("event").is_number_integer()) {
      return BadCase(absl::StrCat(where, R"( must be {"event": index, "code": "..."})"));
    }
    REFPAY_ASSIGN_OR_RETURN(std::string code, StringIn(error, "code", where));
    ++set[absl::StrCat("event ", error.at("event").get<int64_t>(), " ", code)];
  }
  return set;
}

// Where a ledger key differs only in status, the diff says so next to the
// row: "o1 A level1 pending" and "o1 A level1 frozen" share "o1 A level1".
std::string WithoutStatus(const std::string& key) { return key.substr(0, key.rfind(' ')); }

// The rows of `table` that share `key`'s order, member and kind but not its
// status, as "status amount" texts.
std::string OtherStatuses(const MoneyTable& table, const std::string& key) {
  const std::string group = WithoutStatus(key);
  std::vector<std::string> others;
  for (auto it = table.lower_bound(group); it != table.end(); ++it) {
    if (it->first.compare(0, group.size(), group) != 0) break;
    if (it->first == key || WithoutStatus(it->first) != group) continue;
    others.push_back(absl::StrCat(it->first.substr(group.size() + 1), " ", it->second.ToString()));
  }
  return absl::StrJoin(others, ", ");
}

// One line per differing row, in key order so that the rows of one key sit
// together, after a line naming the section's columns:
//   ledger: 2 rows differ (order member kind status amount)
//   ledger: expected  o1 A level1 pending 12.00, got 10.00
//   ledger: missing   o1 B level1 frozen 5.00  (got it as: pending 5.00)
//   ledger: unexpected o1 B level1 pending 5.00  (expected it as: frozen 5.00)
void DiffMoney(std::string_view section, std::string_view columns, bool by_status,
               const MoneyTable& expected, const MoneyTable& got, std::vector<std::string>* diff) {
  std::vector<std::string> lines;
  auto note = [&](const MoneyTable& other, const std::string& key, const char* how) {
    if (!by_status) return std::string();
    const std::string others = OtherStatuses(other, key);
    return others.empty() ? std::string() : absl::StrCat("  (", how, " it as: ", others, ")");
  };
  auto e = expected.begin();
  auto g = got.begin();
  while (e != expected.end() || g != got.end()) {
    if (g == got.end() || (e != expected.end() && e->first < g->first)) {
      lines.push_back(absl::StrCat(std::string(section), ": missing   ", e->first, " ",
                                   e->second.ToString(), note(got, e->first, "got")));
      ++e;
    } else if (e == expected.end() || g->first < e->first) {
      lines.push_back(absl::StrCat(std::string(section), ": unexpected ", g->first, " ",
                                   g->second.ToString(), note(expected, g->first, "expected")));
      ++g;
    } else {
      if (e->second != g->second) {
        lines.push_back(absl::StrCat(std::string(section), ": expected  ", e->first, " ",
                                     e->second.ToString(), ", got ", g->second.ToString()));
      }
      ++e;
      ++g;
    }
  }
  if (lines.empty()) return;
  diff->push_back(absl::StrCat(std::string(section), ": ", lines.size(),
                               lines.size() == 1 ? " row differs (" : " rows differ (",
                               std::string(columns), ")"));
  diff->insert(diff->end(), lines.begin(), lines.end());
}

void DiffMultiset(std::string_view section, std::string_view columns, const Multiset& expected,
                  const Multiset& got, const std::map<std::string, std::string>& notes,
                  std::vector<std::string>* diff) {
  std::vector<std::string> lines;
  std::map<std::string, int> keys;  // every key of either side, in order
  for (const auto& [key, count] : expected) keys[key] = 0;
  for (const auto& [key, count] : got) keys[key] = 0;
  for (const auto& [key, unused] : keys) {
    auto e = expected.find(key);
    auto g = got.find(key);
    const int want = e == expected.end() ? 0 : e->second;
    const int have = g == got.end() ? 0 : g->second;
    for (int i = have; i < want; ++i) {
      lines.push_back(absl::StrCat(std::string(section), ": missing   ", key));
    }
    for (int i = want; i < have; ++i) {
      auto n = notes.find(key);
      lines.push_back(absl::StrCat(std::string(section), ": unexpected ", key,
                                   n == notes.end() ? "" : absl::StrCat(" (", n->second, ")")));
    }
  }
  if (lines.empty()) return;
  diff->push_back(absl::StrCat(std::string(section), ": ", lines.size(),
                               lines.size() == 1 ? " item differs (" : " items differ (",
                               std::string(columns), ")"));
  diff->insert(diff->end(), lines.begin(), lines.end());
}

// Runs the events of a case on a valid policy.
absl::Status RunEvents(Policy policy, const Json& events, const Json& as_of_json,
                       CaseOutcome* out) {
  Engine engine(std::move(policy));
  for (size_t i = 0; i < events.size(); ++i) {
    absl::Status status = engine.ApplyJson(events[i].dump());
    if (!status.ok()) {
      out->errors.push_back(
          {static_cast<int>(i), ErrorCodeOf(status), std::string(status.message())});
    }
  }
  if (!as_of_json.is_string()) return BadCase("as_of must be a timestamp string");
  absl::StatusOr<absl::Time> as_of = ParseTimestamp(as_of_json.get<std::string>());
  if (!as_of.ok()) return BadCase(absl::StrCat("as_of: ", as_of.status().message()));
  absl::StatusOr<std::vector<NetRow>> ledger = engine.NetLedger(*as_of);
  if (!ledger.ok()) return BadCase(internal::AsStd(ledger.status().message()));
  out->ledger = *std::move(ledger);
  REFPAY_ASSIGN_OR_RETURN(out->balances, engine.Balances(*as_of));
  out->flags = engine.Flags();
  return absl::OkStatus();
}

}  // namespace

std::string CaseOutcome::ToJson(int indent) const {
  Json out = Json::object();
  out["ledger"] = Json::array();
  for (const NetRow& row : ledger) {
    out["ledger"].push_back({{"order", row.order ? Json(*row.order) : Json(nullptr)},
                             {"member", row.member},
                             {"kind", row.kind},
                             {"amount", row.amount.ToString()},
                             {"status", std::string(EntryStatusName(row.status))}});
  }
  out["balances"] = Json::object();
  for (const BalanceRow& row : balances) {
    out["balances"][row.member][std::string(EntryStatusName(row.status))] = row.amount.ToString();
  }
  out["flags"] = Json::array();
  for (const Flag& flag : flags) {
    Json item = {{"check", flag.check}, {"member", flag.member}};
    if (flag.order) item["order"] = *flag.order;
    out["flags"].push_back(std::move(item));
  }
  out["errors"] = Json::array();
  for (const CaseError& error : errors)
    out["errors"].push_back({{"event", error.event}, {"code", error.code}});
  out["lint"] = Json::array();
  for (const LintFinding& finding : lint) out["lint"].push_back(finding.code);
  return out.dump(indent);
}

absl::StatusOr<CaseResult> RunCaseText(std::string_view json, const std::string& base_dir) {
  absl::StatusOr<Json> parsed = internal::ParseJsonText(json, "case");
  if (!parsed.ok()) return BadCase(internal::AsStd(parsed.status().message()));
  const Json& doc = *parsed;
  if (!doc.is_object()) return BadCase("a case must be a JSON object");
  CaseResult result;
  if (auto it = doc.find("name"); it != doc.end() && it->is_string())
    result.name = it->get<std::string>();

  // The policy: inline, or a file next to the case.
  Json policy_doc;
  if (doc.contains("policy") == doc.contains("policy_file")) {
    return BadCase(R"(a case has exactly one of "policy" and "policy_file")");
  }
  if (doc.contains("policy")) {
    policy_doc = doc.at("policy");
  } else {
    if (!doc.at("policy_file").is_string()) return BadCase("policy_file must be a path string");
    const std::string path =
        (std::filesystem::path(base_dir) / doc.at("policy_file").get<std::string>()).string();
    REFPAY_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
    absl::StatusOr<Json> file_doc = internal::ParsePolicyText(text, internal::FormatOfPath(path));
    if (!file_doc.ok()) {
      result.outcome.lint.push_back({ErrorCodeOf(file_doc.status()), Severity::kError, "",
                                     std::string(file_doc.status().message())});
    } else {
      policy_doc = *std::move(file_doc);
    }
  }
  const auto events = doc.find("events");
  if (events == doc.end() || !events->is_array())
    return BadCase("a case needs an \"events\" array");
  if (!doc.contains("as_of")) return BadCase("a case needs \"as_of\"");

  CaseOutcome& outcome = result.outcome;
  if (outcome.lint.empty()) {
    Policy policy = internal::ReadPolicy(policy_doc, &outcome.lint);
    if (!HasErrors(outcome.lint)) {
      std::vector<LintFinding> warnings = LintPolicy(policy);
      outcome.lint.insert(outcome.lint.end(), warnings.begin(), warnings.end());
      // A compliance error (paid_depth above 3 levels) makes the policy as
      // unusable as a broken one: the case is not run (docs/decisions.md).
      if (!HasErrors(outcome.lint)) {
        REFPAY_RETURN_IF_ERROR(RunEvents(std::move(policy), *events, doc.at("as_of"), &outcome));
      }
    }
  }

  // Compare each section that is present.
  // Without "expect" the outcome is still computed (`refpay case run`
  // prints it for other tools), but nothing was checked, so it cannot pass.
  const auto expect_it = doc.find("expect");
  if (expect_it == doc.end()) {
    result.diff.emplace_back(
        "expect: missing (no section to compare; `refpay case run --json` "
        "prints the outcome to start from)");
    return result;
  }
  if (!expect_it->is_object()) return BadCase("\"expect\" must be an object");
  const Json& expect = *expect_it;
  for (const auto& [key, value] : expect.items()) {
    if (key != "ledger" && key != "balances" && key != "flags" && key != "errors" &&
        key != "lint") {
      return BadCase(absl::StrCat(
          "expect.", key, ": unknown section (expected ledger, balances, flags, errors, lint)"));
    }
  }
  std::vector<std::string>& diff = result.diff;
  if (expect.contains("ledger")) {
    REFPAY_ASSIGN_OR_RETURN(MoneyTable expected, ExpectedLedger(expect.at("ledger")));
    MoneyTable got;
    for (const NetRow& row : outcome.ledger) {
      REFPAY_RETURN_IF_ERROR(AddMoney(got,
                                      LedgerKey(row.order.value_or("null"), row.member, row.kind,
                                                std::string(EntryStatusName(row.status))),
                                      row.amount));
    }
    DiffMoney("ledger", "order member kind status amount", true, expected, got, &diff);
  }
  if (expect.contains("balances")) {
    REFPAY_ASSIGN_OR_RETURN(MoneyTable expected, ExpectedBalances(expect.at("balances")));
    MoneyTable got;
    for (const BalanceRow& row : outcome.balances) {
      REFPAY_RETURN_IF_ERROR(
          AddMoney(got, absl::StrCat(row.member, " ", EntryStatusName(row.status)), row.amount));
    }
    DiffMoney("balances", "member status amount", false, expected, got, &diff);
  }
  if (expect.contains("flags")) {
    REFPAY_ASSIGN_OR_RETURN(Multiset expected, ExpectedFlags(expect.at("flags")));
    Multiset got;
    for (const Flag& flag : outcome.flags) {
      ++got[flag.order ? absl::StrCat(flag.check, " ", flag.member, " ", *flag.order)
                       : absl::StrCat(flag.check, " ", flag.member)];
    }
    DiffMultiset("flags", "check member order", expected, got, {}, &diff);
  }
  if (expect.contains("errors")) {
    REFPAY_ASSIGN_OR_RETURN(Multiset expected, ExpectedErrors(expect.at("errors")));
    Multiset got;
    std::map<std::string, std::string> messages;
    for (const CaseError& error : outcome.errors) {
      const std::string key = absl::StrCat("event ", error.event, " ", error.code);
      ++got[key];
      messages[key] = error.message;
    }
    DiffMultiset("errors", "event <index> code", expected, got, messages, &diff);
  }
  if (expect.contains("lint")) {
    const Json& codes = expect.at("lint");
    if (!codes.is_array()) return BadCase("expect.lint must be an array of codes");
    std::vector<std::string> reported;
    for (const LintFinding& finding : outcome.lint) reported.push_back(finding.code);
    for (const Json& code : codes) {
      if (!code.is_string()) return BadCase("expect.lint must be an array of code strings");
      if (std::find(reported.begin(), reported.end(), code.get<std::string>()) == reported.end()) {
        diff.push_back(absl::StrCat(
            "lint: missing   ", code.get<std::string>(),
            " (reported: ", reported.empty() ? "nothing" : absl::StrJoin(reported, ", "), ")"));
      }
    }
  }
  result.passed = diff.empty();
  return result;
}

absl::StatusOr<CaseResult> CheckCaseFile(const std::string& path) {
  REFPAY_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(path));
  absl::StatusOr<CaseResult> result =
      RunCaseText(text, std::filesystem::path(path).parent_path().string());
  if (!result.ok()) {
    return MakeError(result.status().code(), ErrorCodeOf(result.status()),
                     absl::StrCat(path, ": ", result.status().message()));
  }
  if (result->name.empty()) result->name = std::filesystem::path(path).filename().string();
  return result;
}

}  // namespace refpay
