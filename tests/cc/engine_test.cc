#include "refpay/engine.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "refpay/case.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::HasReason;
using ::refpay::testing::IsOk;
using ::refpay::testing::MessageHas;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Time At(const char* text) { return *ParseTimestamp(text); }

Engine MakeEngine(const char* policy_json) {
  absl::StatusOr<Policy> policy = Policy::FromJson(policy_json);
  EXPECT_THAT(policy, IsOk());
  return Engine(*std::move(policy));
}

std::string Join(const char* member, const char* inviter,
                 const char* at = "2026-03-01T09:00:00+08:00") {
  return absl::StrCat(R"({"type":"join","member":")", member, "\"",
                      inviter == nullptr ? "" : absl::StrCat(R"(,"inviter":")", inviter, "\""),
                      R"(,"at":")", at, "\"}");
}

std::string Order(const char* id, const char* buyer, const char* amount, const char* at) {
  return absl::StrCat(R"({"type":"order","id":")", id, R"(","buyer":")", buyer, R"(","amount":")",
                      amount, R"(","at":")", at, "\"}");
}

// The whole visible state, to prove that a rejected event changed nothing.
std::string State(const Engine& engine) {
  absl::StatusOr<std::vector<LedgerRow>> rows = engine.Ledger(At("2027-01-01T00:00:00+08:00"));
  std::string out = absl::StrCat(engine.member_count(), "/", engine.order_count(), "\n");
  for (const LedgerRow& row : *rows) {
    absl::StrAppend(&out, row.order.value_or("-"), " ", row.member, " ", row.kind, " ",
                    row.amount.ToString(), " ", EntryStatusName(row.status), " ", row.explanation,
                    "\n");
  }
  for (const Flag& f : engine.Flags()) absl::StrAppend(&out, f.check, " ", f.member, "\n");
  return out;
}

class EngineTest : public ::testing::Test {
 protected:
  Engine engine_ = MakeEngine(R"({"levels": [{"rate": "10%"}, {"rate": "5%"}],
                                  "binding": {"mode": "protected", "protection_days": 30},
                                  "settlement": {"hold_days": 7}})");
  void SetUp() override {
    for (const std::string& e : {Join("A", nullptr), Join("B", "A"), Join("C", "B")}) {
      ASSERT_THAT(engine_.ApplyJson(e), IsOk());
    }
    ASSERT_THAT(engine_.ApplyJson(Order("o1", "C", "100", "2026-03-02T10:00:00+08:00")), IsOk());
  }
};

TEST_F(EngineTest, RejectedEventsChangeNothing) {
  const std::string before = State(engine_);
  const std::pair<std::string, const char*> bad[] = {
      {Join("A", nullptr, "2026-03-03T00:00:00+08:00"), "duplicate_member"},
      {Join("Z", "nobody", "2026-03-03T00:00:00+08:00"), "unknown_member"},
      {Order("o1", "C", "5", "2026-03-03T00:00:00+08:00"), "duplicate_order"},
      {Order("o2", "C", "0", "2026-03-03T00:00:00+08:00"), "bad_amount"},
      {Order("o2", "C", "-1", "2026-03-03T00:00:00+08:00"), "bad_amount"},
      {Order("o2", "C", "1.001", "2026-03-03T00:00:00+08:00"), "bad_amount"},
      {Order("o2", "nobody", "5", "2026-03-03T00:00:00+08:00"), "unknown_member"},
      {Order("o2", "C", "5", "2026-03-01T00:00:00+08:00"), "out_of_order"},
      {R"({"type":"refund","order":"o1","amount":"100.01","at":"2026-03-03T00:00:00+08:00"})",
       "over_refund"},
      {R"({"type":"refund","order":"o9","at":"2026-03-03T00:00:00+08:00"})", "unknown_order"},
      {R"({"type":"confirm","order":"o9","at":"2026-03-03T00:00:00+08:00"})", "unknown_order"},
      {R"({"type":"rebind","member":"C","inviter":"A","at":"2026-03-03T00:00:00+08:00"})",
       "rebind_forbidden"},
      {R"({"type":"order","id":"o2","buyer":"C","amount":"5","at":"2026-03-03 10:00"})",
       "bad_time"},
      {R"({"type":"order","id":"o2","buyer":"C","amount":"5"})", "bad_event"},
      {R"({"type":"order","id":"o2","buyer":"C","amount":"5","at":"2026-03-03T00:00:00+08:00","x":1})",
       "bad_event"},
      {R"({"type":"launch","at":"2026-03-03T00:00:00+08:00"})", "bad_event"},
      {R"(not json)", "bad_event"},
  };
  for (const auto& [event, reason] : bad) {
    EXPECT_THAT(engine_.ApplyJson(event), HasReason(reason)) << event;
    EXPECT_EQ(State(engine_), before) << event;
  }
}

// Events built in code meet the limits ParseEventJson puts on JSON ones.
TEST_F(EngineTest, EventsBuiltInCodeMeetTheJsonLimits) {
  const std::string before = engine_.Snapshot();
  Event join;
  join.type = EventType::kJoin;
  join.at = At("2026-03-03T09:00:00+08:00");
  join.member = std::string(257, 'm');
  EXPECT_THAT(engine_.Apply(join), HasReason("bad_event"));
  join.member = "";
  EXPECT_THAT(engine_.Apply(join), HasReason("bad_event"));
  join.member = "D";
  join.identity.device = std::string(300, 'd');
  EXPECT_THAT(engine_.Apply(join), HasReason("bad_event"));
  Event rebind;  // no inviter: a shape error, not a crash
  rebind.type = EventType::kRebind;
  rebind.at = join.at;
  rebind.member = "C";
  EXPECT_THAT(engine_.Apply(rebind), HasReason("bad_event"));
  Event order;
  order.type = EventType::kOrder;
  order.at = join.at;
  order.order = "o2";
  order.buyer = "C";
  order.amount = Money::FromFen(100);
  order.category = std::string(257, 'c');
  EXPECT_THAT(engine_.Apply(order), HasReason("bad_event"));
  EXPECT_EQ(engine_.Snapshot(), before);
  order.category.reset();
  EXPECT_THAT(engine_.Apply(order), IsOk());
}

TEST_F(EngineTest, CyclesAreRejectedOnceRebindIsAllowed) {
  const char* late = "2026-04-05T00:00:00+08:00";
  EXPECT_THAT(engine_.ApplyJson(absl::StrCat(
                  R"({"type":"rebind","member":"A","inviter":"C","at":")", late, "\"}")),
              HasReason("cycle"));
  EXPECT_THAT(engine_.ApplyJson(absl::StrCat(
                  R"({"type":"rebind","member":"A","inviter":"A","at":")", late, "\"}")),
              HasReason("cycle"));
  EXPECT_THAT(engine_.ApplyJson(absl::StrCat(
                  R"({"type":"rebind","member":"C","inviter":"A","at":")", late, "\"}")),
              IsOk());
}

TEST_F(EngineTest, EventIdsMakeRedeliverySafe) {
  const std::string event =
      R"({"type":"order","id":"o2","buyer":"C","amount":"50","at":"2026-03-03T00:00:00+08:00","event_id":"e1"})";
  ASSERT_THAT(engine_.ApplyJson(event), IsOk());
  const std::string after = State(engine_);
  EXPECT_THAT(engine_.ApplyJson(event), HasReason("duplicate_event"));
  // Same content spelled differently is the same event.
  EXPECT_THAT(
      engine_.ApplyJson(
          R"({"event_id":"e1","type":"order","id":"o2","buyer":"C","amount":"50.00","at":"2026-03-02T16:00:00Z"})"),
      HasReason("duplicate_event"));
  EXPECT_THAT(
      engine_.ApplyJson(
          R"({"type":"order","id":"o2","buyer":"C","amount":"51","at":"2026-03-03T00:00:00+08:00","event_id":"e1"})"),
      HasReason("conflicting_event"));
  EXPECT_THAT(engine_.ApplyJson(R"({"type":"order","event_id":"e1"})"),
              HasReason("conflicting_event"));
  EXPECT_EQ(State(engine_), after);
}

TEST_F(EngineTest, StatusesFollowTheLifecycle) {
  ASSERT_THAT(
      engine_.ApplyJson(R"({"type":"confirm","order":"o1","at":"2026-03-03T10:00:00+08:00"})"),
      IsOk());
  auto status_at = [&](const char* as_of) {
    return engine_.NetLedger(At(as_of)).value().front().status;
  };
  EXPECT_EQ(status_at("2026-03-03T10:00:00+08:00"), EntryStatus::kFrozen);
  EXPECT_EQ(status_at("2026-03-10T09:59:59+08:00"), EntryStatus::kFrozen);
  EXPECT_EQ(status_at("2026-03-10T10:00:00+08:00"), EntryStatus::kAvailable);
  EXPECT_THAT(engine_.NetLedger(At("2026-03-01T00:00:00+08:00")), HasReason("bad_as_of"));
}

TEST_F(EngineTest, RefundAfterAvailabilityClawsBack) {
  ASSERT_THAT(
      engine_.ApplyJson(R"({"type":"confirm","order":"o1","at":"2026-03-03T10:00:00+08:00"})"),
      IsOk());
  ASSERT_THAT(
      engine_.ApplyJson(
          R"({"type":"refund","order":"o1","amount":"40","at":"2026-03-20T10:00:00+08:00"})"),
      IsOk());
  const absl::Time as_of = At("2026-03-21T00:00:00+08:00");
  const std::vector<LedgerRow> ledger = *engine_.Ledger(as_of);
  std::vector<std::string> rows;
  for (const LedgerRow& row : ledger) {
    rows.push_back(absl::StrCat(row.member, " ", row.kind, " ", row.amount.ToString(),
                                row.clawback ? " clawback" : ""));
  }
  EXPECT_THAT(rows, ElementsAre("B level1 10.00", "A level2 5.00", "B level1 -4.00 clawback",
                                "A level2 -2.00 clawback"));
  const std::vector<NetRow> net = *engine_.NetLedger(as_of);
  ASSERT_EQ(net.size(), 2u);
  EXPECT_EQ(net[0].member, "A");
  EXPECT_EQ(net[0].amount.ToString(), "3.00");
  EXPECT_EQ(net[1].amount.ToString(), "6.00");
  EXPECT_THAT(
      engine_.ApplyJson(R"({"type":"refund","order":"o1","at":"2026-03-21T00:00:00+08:00"})"),
      IsOk());
  EXPECT_TRUE(engine_.NetLedger(as_of)->empty());
  EXPECT_THAT(
      engine_.ApplyJson(R"({"type":"refund","order":"o1","at":"2026-03-21T00:00:00+08:00"})"),
      HasReason("over_refund"));
}

TEST_F(EngineTest, TotalsAgreeWithBalances) {
  ASSERT_THAT(engine_.ApplyJson(Order("o2", "B", "33.33", "2026-03-05T10:00:00+08:00")), IsOk());
  const absl::Time as_of = At("2026-03-06T00:00:00+08:00");
  const MemberTotals totals = *engine_.Totals(as_of);
  int64_t sum_totals = 0, sum_balances = 0;
  for (int64_t v : totals.pending) sum_totals += v;
  const std::vector<BalanceRow> balances = *engine_.Balances(as_of);
  for (const BalanceRow& row : balances) sum_balances += row.amount.fen();
  EXPECT_EQ(sum_totals, sum_balances);
  EXPECT_EQ(engine_.member_ids(), (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(totals.pending[0], 500 + 333);  // 5.00 level2 + 3.33 level1 (10% of 33.33 = 3.333)
}

TEST(EngineExplainTest, ExplainsRulesCapsAndChecks) {
  Engine engine = MakeEngine(R"({"levels": [{"fixed": "50.00"}, {"fixed": "50.00"}],
                                 "caps": {"order_total": "30%"}})");
  for (const std::string& e : {Join("A", nullptr), Join("B", "A"), Join("C", "B"),
                               Order("o1", "C", "198.00", "2026-03-02T10:00:00+08:00")}) {
    ASSERT_THAT(engine.ApplyJson(e), IsOk());
  }
  const std::vector<std::string> lines = *engine.Explain("o1");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "level1 to B: levels[0] fixed 50.00");
  EXPECT_EQ(lines[1], "level2 to A: levels[1] fixed 50.00; cut to 9.40 by caps.order_total 30%");
  EXPECT_THAT(engine.Explain("o9"), HasReason("unknown_order"));
}

TEST(EngineDifferentialTest, PaysRateDifferencesAndPeer) {
  Engine engine = MakeEngine(R"({"leader": {"scheme": "differential", "max_depth": 10,
      "ranks": [{"name": "silver", "rate": "3%"}, {"name": "gold", "rate": "5%"}],
      "peer": {"rate": "10%"}}})");
  const char* t = "2026-03-01T09:00:00+08:00";
  for (const std::string& e :
       {Join("G", nullptr), Join("S2", "G"), Join("S1", "S2"), Join("U", "S1"),
        absl::StrCat(R"({"type":"set_role","member":"G","role":"leader","rank":"gold","at":")", t,
                     "\"}"),
        absl::StrCat(R"({"type":"set_role","member":"S2","role":"leader","rank":"silver","at":")",
                     t, "\"}"),
        absl::StrCat(R"({"type":"set_role","member":"S1","role":"leader","rank":"silver","at":")",
                     t, "\"}"),
        Order("o1", "U", "1000", "2026-03-02T10:00:00+08:00")}) {
    ASSERT_THAT(engine.ApplyJson(e), IsOk()) << e;
  }
  const std::vector<NetRow> net = *engine.NetLedger(At("2026-03-03T00:00:00+08:00"));
  std::vector<std::string> rows;
  for (const NetRow& row : net) {
    rows.push_back(absl::StrCat(row.member, " ", row.kind, " ", row.amount.ToString()));
  }
  // S1 (silver 3%) 30.00; S2 silver earns no difference but is the peer:
  // 10% × 30.00 = 3.00; G gold 5% − 3% = 20.00.
  EXPECT_THAT(rows, ElementsAre("G leader 20.00", "S1 leader 30.00", "S2 peer 3.00"));
}

TEST_F(EngineTest, ReserveRefusesBadCountsAndChangesNothing) {
  const std::string before = State(engine_);
  EXPECT_THAT(engine_.Reserve(-1, 10), HasReason("bad_value"));
  EXPECT_THAT(engine_.Reserve(-1, 10), MessageHas("members must be in [0, 2147483644]"));
  EXPECT_THAT(engine_.Reserve(0, int64_t{1} << 31),
              MessageHas("orders must be in [0, 2147483646]"));
  EXPECT_EQ(State(engine_), before);
}

TEST_F(EngineTest, ReservedRoomIsFilledWithoutMovingAndPaysTheSame) {
  Engine unreserved = MakeEngine(R"({"levels": [{"rate": "10%"}, {"rate": "5%"}],
                                     "binding": {"mode": "protected", "protection_days": 30},
                                     "settlement": {"hold_days": 7}})");
  for (const std::string& e : {Join("A", nullptr), Join("B", "A"), Join("C", "B"),
                               Order("o1", "C", "100", "2026-03-02T10:00:00+08:00")}) {
    ASSERT_THAT(unreserved.ApplyJson(e), IsOk());
  }
  ASSERT_THAT(engine_.Reserve(200, 200), IsOk());
  const std::string* member_ids = engine_.member_ids().data();
  const std::string* order_ids = engine_.order_ids().data();
  for (int i = 0; i < 200; ++i) {
    const std::string member = absl::StrCat("m", i), order = absl::StrCat("p", i);
    const std::string inviter = i == 0 ? "C" : absl::StrCat("m", i / 2);
    for (const std::string& e :
         {Join(member.c_str(), inviter.c_str(), "2026-03-03T10:00:00+08:00"),
          Order(order.c_str(), member.c_str(), "12.34", "2026-03-03T10:00:00+08:00")}) {
      ASSERT_THAT(engine_.ApplyJson(e), IsOk());
      ASSERT_THAT(unreserved.ApplyJson(e), IsOk());
    }
  }
  EXPECT_EQ(engine_.member_ids().data(), member_ids);  // no array grew: no copy
  EXPECT_EQ(engine_.order_ids().data(), order_ids);
  EXPECT_EQ(State(engine_), State(unreserved));
}

TEST(EngineDeterminismTest, SameEventsSameOutput) {
  auto run = [] {
    Engine engine =
        MakeEngine(R"({"levels": [{"rate": "7%"}, {"rate": "3%"}], "leader": {"rate": "2%"},
                                   "caps": {"member_month": "50.00", "budget": "80.00"}})");
    std::vector<std::string> events = {Join("R", nullptr)};
    for (int i = 0; i < 60; ++i) {
      const std::string id = absl::StrCat("m", i);
      const std::string parent = i == 0 ? "R" : absl::StrCat("m", (i * 7) % i);
      events.push_back(Join(id.c_str(), parent.c_str()));
    }
    events.push_back(
        R"({"type":"set_role","member":"m3","role":"leader","at":"2026-03-01T09:00:00+08:00"})");
    for (int i = 0; i < 200; ++i) {
      const std::string id = absl::StrCat("o", i), buyer = absl::StrCat("m", (i * 13) % 60);
      const std::string amount = absl::StrCat(17 + i * 3, ".", i % 100 < 10 ? "0" : "", i % 100);
      events.push_back(
          Order(id.c_str(), buyer.c_str(), amount.c_str(), "2026-03-02T10:00:00+08:00"));
    }
    for (const std::string& e : events) EXPECT_THAT(engine.ApplyJson(e), IsOk()) << e;
    return State(engine);
  };
  const std::string first = run();
  EXPECT_EQ(first, run());
  EXPECT_THAT(first, HasSubstr("cap_member"));
  EXPECT_THAT(first, HasSubstr("budget_exhausted"));
}

}  // namespace
}  // namespace refpay

namespace refpay {
namespace {

TEST(EngineRefundTest, FullRefundZeroesFixedAmountsToo) {
  Engine engine = MakeEngine(R"({"levels": [{"fixed": "50.00"}]})");
  for (const std::string& e :
       {Join("A", nullptr), Join("B", "A"), Order("o1", "B", "100", "2026-03-02T10:00:00+08:00"),
        std::string(
            R"({"type":"refund","order":"o1","amount":"60","at":"2026-03-02T11:00:00+08:00"})")}) {
    ASSERT_THAT(engine.ApplyJson(e), IsOk());
  }
  // A partial refund never changes a fixed amount; the full refund zeroes it.
  EXPECT_EQ(engine.NetLedger(At("2026-03-03T00:00:00+08:00"))->at(0).amount.ToString(), "50.00");
  ASSERT_THAT(
      engine.ApplyJson(R"({"type":"refund","order":"o1","at":"2026-03-02T12:00:00+08:00"})"),
      IsOk());
  EXPECT_TRUE(engine.NetLedger(At("2026-03-03T00:00:00+08:00"))->empty());
}

}  // namespace
}  // namespace refpay

namespace refpay {
namespace {

TEST_F(EngineTest, ValidationOrderFollowsTheDecisions) {
  // Time order before a malformed amount; the amount before references.
  const std::pair<std::string, const char*> bad[] = {
      {Order("o2", "C", "1.001", "2026-03-01T00:00:00+08:00"), "out_of_order"},
      {Order("o2", "nobody", "0", "2026-03-03T00:00:00+08:00"), "bad_amount"},
      {Order("o1", "C", "-1", "2026-03-03T00:00:00+08:00"), "bad_amount"},
      {R"({"type":"refund","order":"o9","amount":"0","at":"2026-03-03T00:00:00+08:00"})",
       "bad_amount"},
  };
  const std::string before = State(engine_);
  for (const auto& [event, reason] : bad) {
    EXPECT_THAT(engine_.ApplyJson(event), HasReason(reason)) << event;
    EXPECT_EQ(State(engine_), before) << event;
  }
}

TEST(EngineCapFlagTest, OneFlagPerReducedEntry) {
  Engine engine = MakeEngine(R"({"levels": [{"rate": "20%"}],
      "leader": {"rate": "20%", "max_depth": 2}, "caps": {"order_total": "15%"},
      "checks": {"shared_identity": "off"}})");
  for (const std::string& e :
       {Join("A", nullptr), Join("B", "A"),
        std::string(
            R"({"type":"set_role","member":"A","role":"leader","at":"2026-03-01T09:00:00+08:00"})"),
        Order("o1", "B", "100", "2026-03-02T10:00:00+08:00")}) {
    ASSERT_THAT(engine.ApplyJson(e), IsOk());
  }
  // Level1 cut from 20.00 to 15.00 and the leader bonus from 20.00 to 0.
  std::vector<std::string> flags;
  for (const Flag& f : engine.Flags()) {
    flags.push_back(absl::StrCat(f.check, " ", f.member, " ", f.order.value_or("-")));
  }
  EXPECT_THAT(flags, ElementsAre("cap_order A o1", "cap_order A o1"));
}

}  // namespace
}  // namespace refpay
