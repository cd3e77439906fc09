#include "refpay/lint.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace refpay {
namespace {

using ::testing::Contains;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<LintFinding> Lint(const std::string& json) {
  return LintText(json, PolicyFormat::kJson);
}

auto Finding(const std::string& code, Severity severity, const std::string& path) {
  return ::testing::AllOf(Field(&LintFinding::code, code), Field(&LintFinding::severity, severity),
                          Field(&LintFinding::path, path));
}

TEST(LintTest, PaidDepthWarnsAtThreeAndFailsAtFour) {
  EXPECT_THAT(Lint(R"({"levels": [{"rate": "5%"}, {"rate": "3%"}]})"), IsEmpty());
  EXPECT_THAT(Lint(R"({"levels": [{"rate": "5%"}, {"rate": "3%"}, {"rate": "1%"}]})"),
              Contains(Finding("paid_depth", Severity::kWarning, "levels")));
  EXPECT_THAT(
      Lint(R"({"levels": [{"rate": "5%"}, {"rate": "3%"}, {"rate": "1%"}, {"rate": "1%"}]})"),
      Contains(Finding("paid_depth", Severity::kError, "levels")));
  // Under self_purchase levels[0] pays the buyer, not an ancestor.
  EXPECT_THAT(
      Lint(
          R"({"self_purchase": true, "levels": [{"rate": "5%"}, {"rate": "3%"}, {"rate": "1%"}]})"),
      IsEmpty());
  EXPECT_THAT(
      Lint(
          R"({"by_category": {"vip": {"levels": [{"rate": "1%"}, {"rate": "1%"}, {"rate": "1%"}]}}})"),
      Contains(Finding("paid_depth", Severity::kWarning, "by_category.vip.levels")));
}

TEST(LintTest, LeaderWithoutMaxDepth) {
  EXPECT_THAT(Lint(R"({"leader": {"rate": "2%"}})"),
              Contains(Finding("leader_unbounded", Severity::kWarning, "leader")));
  EXPECT_THAT(Lint(R"({"leader": {"rate": "2%", "max_depth": 3}})"), IsEmpty());
}

TEST(LintTest, FixedOverAmountOnlyWithoutOrderTotalCap) {
  EXPECT_THAT(Lint(R"({"levels": [{"fixed": "50"}]})"),
              Contains(Finding("fixed_over_amount", Severity::kWarning, "levels[0]")));
  EXPECT_THAT(Lint(R"({"levels": [{"fixed": "50"}], "caps": {"order_total": "30%"}})"), IsEmpty());
  // A fixed tier from 3000 can never exceed its orders.
  EXPECT_THAT(
      Lint(
          R"({"levels": [{"tiers": [{"below": "3000", "rate": "4%"}, {"from": "3000", "fixed": "50"}]}]})"),
      IsEmpty());
  EXPECT_THAT(
      Lint(
          R"({"levels": [{"tiers": [{"below": "30", "fixed": "1"}, {"from": "30", "fixed": "50"}]}]})"),
      Contains(Finding("fixed_over_amount", Severity::kWarning, "levels[0].tiers[1]")));
  EXPECT_THAT(Lint(R"({"levels": [{"fixed": "0.01"}]})"), IsEmpty());
}

TEST(LintTest, TotalRateAboveHalf) {
  EXPECT_THAT(Lint(R"({"levels": [{"rate": "30%"}, {"rate": "20%"}]})"), IsEmpty());
  EXPECT_THAT(
      Lint(
          R"({"levels": [{"rate": "30%"}, {"rate": "20%"}], "leader": {"rate": "1%", "max_depth": 2}})"),
      Contains(Finding("total_rate", Severity::kWarning, "")));
  EXPECT_THAT(
      Lint(
          R"({"levels": [{"tiers": [{"below": "10", "rate": "1%"}, {"from": "10", "rate": "51%"}]}]})"),
      Contains(Field(&LintFinding::code, "total_rate")));
  EXPECT_THAT(Lint(R"({"levels": [{"rate": "10%", "by_rank": {"gold": {"rate": "55%"}}}]})"),
              Contains(Field(&LintFinding::code, "total_rate")));
}

TEST(LintTest, ReportsEveryErrorAtOnce) {
  const std::vector<LintFinding> findings = Lint(
      R"({"levels": [{"rat": "1%"}, {"tiers": [{"below": "10", "rate": "1%"}, {"from": "11", "rate": "2%"}]}],
              "rounding": "up"})");
  EXPECT_THAT(findings, Contains(Finding("unknown_key", Severity::kError, "levels[0].rat")));
  EXPECT_THAT(findings, Contains(Finding("tier_gap", Severity::kError, "levels[1].tiers[1]")));
  EXPECT_THAT(findings, Contains(Finding("bad_value", Severity::kError, "rounding")));
  EXPECT_TRUE(HasErrors(findings));
  EXPECT_THAT(findings, Not(Contains(Field(&LintFinding::code, "paid_depth"))));
}

TEST(LintTest, SyntaxErrorsAreFindings) {
  EXPECT_THAT(Lint("{"), Contains(Field(&LintFinding::code, "bad_json")));
  EXPECT_THAT(LintText("a = [", PolicyFormat::kToml),
              Contains(Field(&LintFinding::code, "bad_toml")));
  EXPECT_THAT(LintFile("/nonexistent/policy.toml"),
              Contains(Field(&LintFinding::code, "io_error")));
}

}  // namespace
}  // namespace refpay
