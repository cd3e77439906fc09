// Harnesses for the text parsers: money and rates, policies (JSON, TOML),
// events and audit cases. Each checks more than "does not crash": what
// parses must print and re-parse to the same value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "harness.h"
#include "refpay/case.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/lint.h"
#include "refpay/money.h"
#include "refpay/policy.h"
#include "refpay/status.h"

namespace refpay::fuzz {
namespace {

std::string_view Text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

absl::Time Base() { return absl::FromUnixSeconds(1'772'326'800); }  // 2026-03-01T09:00+08:00

Event Join(std::string member, std::optional<std::string> inviter, int minute) {
  Event e;
  e.type = EventType::kJoin;
  e.member = std::move(member);
  e.inviter = std::move(inviter);
  e.at = Base() + absl::Minutes(minute);
  return e;
}

// Applies `event`; a rejection must leave the engine's snapshot as it was
// and carry a reason token.
void ApplyChecked(Engine& engine, const Event& event, std::string_view harness) {
  const std::string before = engine.Snapshot();
  absl::Status status = engine.Apply(event);
  if (status.ok()) return;
  REFPAY_FUZZ_CHECK(!ErrorCodeOf(status).empty(), harness, status.ToString());
  REFPAY_FUZZ_CHECK(engine.Snapshot() == before, harness,
                    absl::StrCat("rejected event changed the engine: ", status.ToString()));
}

void CheckRestore(const Engine& engine, std::string_view harness) {
  const std::string snapshot = engine.Snapshot();
  absl::StatusOr<Engine> restored = Engine::Restore(snapshot);
  REFPAY_FUZZ_CHECK(restored.ok(), harness, restored.status().ToString());
  REFPAY_FUZZ_CHECK(restored->Snapshot() == snapshot, harness, "Restore(Snapshot()) differs");
}

// Runs a few events under a policy that read without error: the engine
// must accept the policy's rule shapes (ranks, categories, caps) as given.
void RunPolicy(const Policy& policy, std::string_view harness) {
  Engine engine(policy);
  ApplyChecked(engine, Join("A", std::nullopt, 0), harness);
  ApplyChecked(engine, Join("B", "A", 1), harness);
  ApplyChecked(engine, Join("C", "B", 2), harness);
  Event role;
  role.type = EventType::kSetRole;
  role.member = "A";
  role.role = "leader";
  role.at = Base() + absl::Minutes(3);
  if (!policy.rules.levels.empty() && !policy.rules.levels[0].by_rank.empty()) {
    role.role = policy.rules.levels[0].by_rank[0].first;
  }
  if (policy.rules.leader && !policy.rules.leader->ranks.empty()) {
    role.rank = policy.rules.leader->ranks.back().name;
  }
  ApplyChecked(engine, role, harness);
  const char* amounts[] = {"0.01", "99.99", "3000.00", "92233720368547758.07"};
  int minute = 4;
  for (const char* amount : amounts) {
    Event order;
    order.type = EventType::kOrder;
    order.order = absl::StrCat("o", minute);
    order.buyer = "C";
    order.amount = *Money::Parse(amount);
    order.at = Base() + absl::Minutes(minute++);
    if (!policy.by_category.empty()) order.category = policy.by_category[0].first;
    ApplyChecked(engine, order, harness);
  }
  Event refund;
  refund.type = EventType::kRefund;
  refund.order = "o5";
  refund.amount = *Money::Parse("50.00");
  refund.at = Base() + absl::Minutes(minute);
  ApplyChecked(engine, refund, harness);
  (void)engine.Balances(Base() + absl::Hours(24 * 40));
  CheckRestore(engine, harness);
}

void CheckPolicy(absl::StatusOr<Policy> policy, std::string_view text, PolicyFormat format,
                 std::string_view harness) {
  const std::vector<LintFinding> lint = LintText(text, format);
  if (!policy.ok()) {
    REFPAY_FUZZ_CHECK(!ErrorCodeOf(policy.status()).empty(), harness, policy.status().ToString());
    REFPAY_FUZZ_CHECK(HasErrors(lint), harness,
                      absl::StrCat("lint finds no error in a policy that fails to load: ",
                                   policy.status().ToString()));
    return;
  }
  // The stored document reads back to the same policy (snapshots rely on it).
  absl::StatusOr<Policy> again = Policy::FromJson(policy->document);
  REFPAY_FUZZ_CHECK(again.ok(), harness, again.status().ToString());
  REFPAY_FUZZ_CHECK(again->document == policy->document, harness, "document is not a fixed point");
  RunPolicy(*policy, harness);
}

}  // namespace

int FuzzMoney(const uint8_t* data, size_t size) {
  const std::string_view text = Text(data, size);
  absl::StatusOr<Money> money = Money::Parse(text);
  if (money.ok()) {
    absl::StatusOr<Money> again = Money::Parse(money->ToString());
    REFPAY_FUZZ_CHECK(again.ok() && *again == *money, "money", money->ToString());
    for (RoundingMode mode :
         {RoundingMode::kHalfUp, RoundingMode::kHalfEven, RoundingMode::kDown}) {
      // A rate of at most 100% never grows an amount, whatever the rounding.
      const Money half = ApplyRate(*money, *Rate::FromPpm(Rate::kOne / 2), mode);
      const int64_t magnitude = money->fen() < 0 ? -money->fen() : money->fen();
      const int64_t half_magnitude = half.fen() < 0 ? -half.fen() : half.fen();
      REFPAY_FUZZ_CHECK(half_magnitude <= magnitude, "money", money->ToString());
      REFPAY_FUZZ_CHECK(ApplyRate(*money, *Rate::FromPpm(Rate::kOne), mode) == *money, "money",
                        money->ToString());
    }
    (void)CheckedAdd(*money, *money);
    (void)CheckedSub(Money::FromFen(0), *money);
  } else {
    REFPAY_FUZZ_CHECK(ErrorCodeOf(money.status()) == "bad_amount", "money",
                      money.status().ToString());
  }
  absl::StatusOr<Rate> rate = Rate::Parse(text);
  if (rate.ok()) {
    REFPAY_FUZZ_CHECK(rate->ppm() >= 0 && rate->ppm() <= Rate::kOne, "rate", rate->ToString());
    absl::StatusOr<Rate> again = Rate::Parse(rate->ToString());
    REFPAY_FUZZ_CHECK(again.ok() && *again == *rate, "rate", rate->ToString());
    if (money.ok()) {
      const Int128 exact = ExactProduct(*money, *rate);
      REFPAY_FUZZ_CHECK(RoundProduct(exact, RoundingMode::kDown).fen() ==
                            ApplyRate(*money, *rate, RoundingMode::kDown).fen(),
                        "rate", FormatExact(exact));
    }
  } else {
    REFPAY_FUZZ_CHECK(ErrorCodeOf(rate.status()) == "bad_rate", "rate", rate.status().ToString());
  }
  if (absl::StatusOr<RoundingMode> mode = ParseRoundingMode(text); mode.ok()) {
    REFPAY_FUZZ_CHECK(RoundingModeName(*mode) == text, "rounding", std::string(text));
  }
  absl::StatusOr<absl::Time> t = ParseTimestamp(text);
  if (t.ok()) {
    const std::string formatted = FormatTimestamp(*t, absl::UTCTimeZone());
    absl::StatusOr<absl::Time> again = ParseTimestamp(formatted);
    REFPAY_FUZZ_CHECK(again.ok() && *again == *t, "timestamp", formatted);
  } else {
    REFPAY_FUZZ_CHECK(ErrorCodeOf(t.status()) == "bad_time", "timestamp", t.status().ToString());
  }
  return 0;
}

int FuzzPolicyJson(const uint8_t* data, size_t size) {
  const std::string_view text = Text(data, size);
  CheckPolicy(Policy::FromJson(text), text, PolicyFormat::kJson, "policy_json");
  return 0;
}

int FuzzPolicyToml(const uint8_t* data, size_t size) {
  const std::string_view text = Text(data, size);
  CheckPolicy(Policy::FromToml(text), text, PolicyFormat::kToml, "policy_toml");
  return 0;
}

int FuzzEvent(const uint8_t* data, size_t size) {
  const std::string_view text = Text(data, size);
  absl::StatusOr<Event> event = ParseEventJson(text);
  // The engine's own JSON path must agree with ParseEventJson on shape.
  static const Policy* const policy = new Policy(*Policy::FromJson(
      R"({"levels": [{"rate": "10%"}, {"fixed": "2"}], "leader": {"fixed": "1"},
          "binding": {"mode": "free"}, "caps": {"order_total": "30%"}})"));
  Engine engine(*policy);
  ApplyChecked(engine, Join("A", std::nullopt, 0), "event");
  ApplyChecked(engine, Join("B", "A", 0), "event");
  const std::string before = engine.Snapshot();
  absl::Status applied = engine.ApplyJson(text);
  if (!applied.ok()) {
    REFPAY_FUZZ_CHECK(!ErrorCodeOf(applied).empty(), "event", applied.ToString());
    REFPAY_FUZZ_CHECK(engine.Snapshot() == before, "event", "rejected JSON changed the engine");
  }
  if (!event.ok()) {
    REFPAY_FUZZ_CHECK(!applied.ok(), "event", "ApplyJson took what ParseEventJson refused");
    const std::string code = ErrorCodeOf(event.status());
    REFPAY_FUZZ_CHECK(code == "bad_event" || code == "bad_time" || code == "bad_amount", "event",
                      event.status().ToString());
    return 0;
  }
  const std::string canonical = EventToJson(*event);
  absl::StatusOr<Event> again = ParseEventJson(canonical);
  REFPAY_FUZZ_CHECK(again.ok(), "event", absl::StrCat(canonical, ": ", again.status().ToString()));
  REFPAY_FUZZ_CHECK(EventToJson(*again) == canonical, "event", canonical);
  CheckRestore(engine, "event");
  return 0;
}

int FuzzCase(const uint8_t* data, size_t size) {
  const std::string_view text = Text(data, size);
  // A policy_file may name any path; keep the fuzzer away from devices and
  // pipes that never end (ReadFile caps what it reads, but a blocking read
  // of /dev/stdin would stall the run).
  if (text.find("/dev") != std::string_view::npos || text.find("/proc") != std::string_view::npos ||
      text.find("/sys") != std::string_view::npos) {
    return 0;
  }
  absl::StatusOr<CaseResult> result = RunCaseText(text, "/nonexistent-refpay-fuzz");
  if (!result.ok()) {
    REFPAY_FUZZ_CHECK(!ErrorCodeOf(result.status()).empty(), "case", result.status().ToString());
    return 0;
  }
  const std::string json = result->outcome.ToJson(-1);
  REFPAY_FUZZ_CHECK(!json.empty(), "case", "empty outcome");
  return 0;
}

}  // namespace refpay::fuzz
