#include "refpay/case.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::HasReason;
using ::refpay::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kCase[] = R"({
  "name": "A invites B invites C; C buys 100",
  "policy": {"levels": [{"rate": "10%"}, {"rate": "10%"}]},
  "events": [
    {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"},
    {"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:00:00+08:00"},
    {"type": "join", "member": "C", "inviter": "B", "at": "2026-03-01T09:00:00+08:00"},
    {"type": "order", "id": "o1", "buyer": "C", "amount": "100", "at": "2026-03-02T10:00:00+08:00"},
    {"type": "order", "id": "o2", "buyer": "Q", "amount": "100", "at": "2026-03-02T10:00:00+08:00"}
  ],
  "as_of": "2026-03-20T10:00:00+08:00",
  "expect": EXPECT
})";

absl::StatusOr<CaseResult> RunWithExpect(const std::string& expect) {
  std::string text = kCase;
  text.replace(text.find("EXPECT"), 6, expect);
  return RunCaseText(text, ".");
}

TEST(CaseTest, PassesWhenEverySectionMatches) {
  absl::StatusOr<CaseResult> result = RunWithExpect(R"({
    "ledger": [{"order": "o1", "member": "A", "kind": "level2", "amount": "10", "status": "pending"},
               {"order": "o1", "member": "B", "kind": "level1", "amount": "10.00", "status": "pending"},
               {"order": "o1", "member": "C", "kind": "level3", "amount": "0.00", "status": "pending"}],
    "balances": {"A": {"pending": "10.00", "held": "0"}, "B": {"pending": "10.00"}},
    "flags": [], "errors": [{"event": 4, "code": "unknown_member"}]})");
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->passed) << ::testing::PrintToString(result->diff);
  EXPECT_EQ(result->name, "A invites B invites C; C buys 100");
}

TEST(CaseTest, ReadableDiffOnFailure) {
  absl::StatusOr<CaseResult> result = RunWithExpect(R"({
    "ledger": [{"order": "o1", "member": "A", "kind": "level2", "amount": "12.00", "status": "pending"}],
    "flags": [{"check": "shared_identity", "member": "A", "order": "o1"}],
    "errors": [],
    "lint": ["paid_depth"]})");
  ASSERT_THAT(result, IsOk());
  EXPECT_FALSE(result->passed);
  EXPECT_THAT(result->diff,
              ElementsAre("ledger: 2 rows differ (order member kind status amount)",
                          "ledger: expected  o1 A level2 pending 12.00, got 10.00",
                          "ledger: unexpected o1 B level1 pending 10.00",
                          "flags: 1 item differs (check member order)",
                          "flags: missing   shared_identity A o1",
                          "errors: 1 item differs (event <index> code)",
                          "errors: unexpected event 4 unknown_member (buyer \"Q\" has not joined)",
                          "lint: missing   paid_depth (reported: nothing)"));
}

TEST(CaseTest, DiffPairsRowsThatDifferOnlyInStatus) {
  absl::StatusOr<CaseResult> result = RunWithExpect(R"({
    "ledger": [{"order": "o1", "member": "A", "kind": "level2", "amount": "10.00", "status": "frozen"},
               {"order": "o1", "member": "B", "kind": "level1", "amount": "10.00", "status": "pending"}]})");
  ASSERT_THAT(result, IsOk());
  EXPECT_FALSE(result->passed);
  EXPECT_THAT(result->diff,
              ElementsAre("ledger: 2 rows differ (order member kind status amount)",
                          "ledger: missing   o1 A level2 frozen 10.00  (got it as: pending 10.00)",
                          "ledger: unexpected o1 A level2 pending 10.00  (expected it as: frozen "
                          "10.00)"));
}

TEST(CaseTest, ACaseWithoutExpectIsRunButDoesNotPass) {
  std::string text = kCase;
  text.replace(text.find(",\n  \"expect\": EXPECT"), 20, "");
  absl::StatusOr<CaseResult> result = RunCaseText(text, ".");
  ASSERT_THAT(result, IsOk());
  EXPECT_FALSE(result->passed);
  EXPECT_EQ(result->outcome.ledger.size(), 2u);
  EXPECT_THAT(result->diff, ElementsAre(HasSubstr("expect: missing")));
}

TEST(CaseTest, OutcomeJsonHasTheExpectShape) {
  absl::StatusOr<CaseResult> result = RunWithExpect("{}");
  ASSERT_THAT(result, IsOk());
  const std::string json = result->outcome.ToJson(-1);
  EXPECT_THAT(
      json,
      HasSubstr(
          R"("ledger":[{"order":"o1","member":"A","kind":"level2","amount":"10.00","status":"pending"})"));
  EXPECT_THAT(json, HasSubstr(R"("balances":{"A":{"pending":"10.00"},"B":{"pending":"10.00"}})"));
  EXPECT_THAT(json, HasSubstr(R"("errors":[{"event":4,"code":"unknown_member"}])"));
}

TEST(CaseTest, MalformedCasesAreErrorsNotFailures) {
  EXPECT_THAT(RunCaseText("{", "."), HasReason("bad_case"));
  EXPECT_THAT(RunCaseText(R"({"policy": {}, "events": [], "as_of": "x", "expect": {}})", "."),
              HasReason("bad_case"));
  EXPECT_THAT(RunWithExpect(R"({"ledgr": []})"), HasReason("bad_case"));
  std::string early = kCase;
  early.replace(early.find("2026-03-20T10:00:00+08:00"), 25, "2026-03-01T10:00:00+08:00");
  early.replace(early.find("EXPECT"), 6, "{}");
  EXPECT_THAT(RunCaseText(early, "."), HasReason("bad_case"));
}

TEST(CaseTest, InvalidPolicyIsReportedAsLint) {
  absl::StatusOr<CaseResult> result = RunCaseText(R"({
    "policy": {"levels": [{"rat": "10%"}]}, "events": [
      {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"}],
    "as_of": "2026-03-20T10:00:00+08:00",
    "expect": {"ledger": [], "errors": [], "lint": ["unknown_key"]}})",
                                                  ".");
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->passed) << ::testing::PrintToString(result->diff);
}

TEST(CaseTest, ALintErrorStopsTheRun) {
  // Four paid ancestor levels: paid_depth is an error, so nothing is paid.
  absl::StatusOr<CaseResult> result = RunCaseText(R"({
    "policy": {"levels": [{"rate": "4%"}, {"rate": "3%"}, {"rate": "2%"}, {"rate": "1%"}]},
    "events": [
      {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"},
      {"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:00:00+08:00"},
      {"type": "order", "id": "o1", "buyer": "B", "amount": "100", "at": "2026-03-02T10:00:00+08:00"}],
    "as_of": "2026-03-20T10:00:00+08:00",
    "expect": {"ledger": [], "errors": [], "lint": ["paid_depth"]}})",
                                                  ".");
  ASSERT_THAT(result, IsOk());
  EXPECT_TRUE(result->passed) << ::testing::PrintToString(result->diff);
  EXPECT_TRUE(result->outcome.ledger.empty());
}

}  // namespace
}  // namespace refpay
