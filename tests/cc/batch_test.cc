#include "refpay/batch.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::HasReason;
using ::refpay::testing::IsOk;

constexpr char kPolicy[] = R"({"levels": [{"rate": "10%"}, {"rate": "5%"}],
    "leader": {"rate": "2%", "max_depth": 6}, "caps": {"order_total": "30%"},
    "settlement": {"hold_days": 3}})";

std::string Row(const NetRow& row) {
  return absl::StrCat(row.order.value_or("-"), " ", row.member, " ", row.kind, " ",
                      row.amount.ToString(), " ", EntryStatusName(row.status));
}

TEST(BatchTest, AgreesWithTheEventPath) {
  std::mt19937_64 random(7);
  const int64_t t0 = absl::ToUnixMicros(*ParseTimestamp("2026-03-01T00:00:00+08:00"));
  BatchMembers members;
  for (int i = 0; i < 500; ++i) {
    members.ids.push_back(absl::StrCat("m", i));
    members.inviter.push_back(i == 0 ? -1 : static_cast<int32_t>(random() % i));
    members.joined_at.push_back(t0 + int64_t{i} * 1'000'000);
    members.role.push_back(random() % 20 == 0 ? "leader" : "");
  }
  BatchOrders orders;
  for (int i = 0; i < 3000; ++i) {
    orders.ids.push_back(absl::StrCat("o", i));
    orders.buyer.push_back(static_cast<int32_t>(random() % 500));
    orders.amount.push_back(1 + static_cast<int64_t>(random() % 500'000));
    orders.at.push_back(t0 + 600'000'000 + int64_t{i} * 1'000'000);
    orders.confirmed_at.push_back(random() % 2 ? orders.at.back() + 3'600'000'000 : kNoTime);
    const bool refund = random() % 10 == 0;
    orders.refund_amount.push_back(refund ? 1 + orders.amount.back() / 3 : 0);
    orders.refunded_at.push_back(orders.at.back() + 7'200'000'000);
  }
  absl::StatusOr<BatchResult> batch = SettleBatch(*Policy::FromJson(kPolicy), members, orders);
  ASSERT_THAT(batch, IsOk());
  EXPECT_TRUE(batch->errors.empty());

  // The same rows as events, in the order the batch documents.
  Engine engine(*Policy::FromJson(kPolicy));
  struct Timed {
    int64_t at;
    Event event;
  };
  std::vector<Timed> events;
  for (int i = 0; i < 500; ++i) {
    Event join;
    join.type = EventType::kJoin;
    join.member = members.ids[i];
    if (members.inviter[i] >= 0) join.inviter = members.ids[members.inviter[i]];
    join.at = absl::FromUnixMicros(members.joined_at[i]);
    events.push_back({members.joined_at[i], join});
    if (!members.role[i].empty()) {
      Event role;
      role.type = EventType::kSetRole;
      role.member = members.ids[i];
      role.role = members.role[i];
      role.at = join.at;
      events.push_back({members.joined_at[i], role});
    }
  }
  std::vector<Timed> confirms, refunds;
  for (int i = 0; i < 3000; ++i) {
    Event order;
    order.type = EventType::kOrder;
    order.order = orders.ids[i];
    order.buyer = members.ids[orders.buyer[i]];
    order.amount = Money::FromFen(orders.amount[i]);
    order.at = absl::FromUnixMicros(orders.at[i]);
    events.push_back({orders.at[i], order});
    if (orders.confirmed_at[i] != kNoTime) {
      Event confirm;
      confirm.type = EventType::kConfirm;
      confirm.order = orders.ids[i];
      confirm.at = absl::FromUnixMicros(orders.confirmed_at[i]);
      confirms.push_back({orders.confirmed_at[i], confirm});
    }
    if (orders.refund_amount[i] != 0) {
      Event refund;
      refund.type = EventType::kRefund;
      refund.order = orders.ids[i];
      refund.amount = Money::FromFen(orders.refund_amount[i]);
      refund.at = absl::FromUnixMicros(orders.refunded_at[i]);
      refunds.push_back({orders.refunded_at[i], refund});
    }
  }
  events.insert(events.end(), confirms.begin(), confirms.end());
  events.insert(events.end(), refunds.begin(), refunds.end());
  std::stable_sort(events.begin(), events.end(),
                   [](const Timed& a, const Timed& b) { return a.at < b.at; });
  for (const Timed& e : events) ASSERT_THAT(engine.Apply(e.event), IsOk());

  const absl::Time as_of = absl::FromUnixMicros(t0 + int64_t{10} * 86'400'000'000);
  const std::vector<NetRow> expected = *engine.NetLedger(as_of);
  const std::vector<NetRow> got = *batch->engine.NetLedger(as_of);
  ASSERT_EQ(expected.size(), got.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(Row(expected[i]), Row(got[i]));
  EXPECT_GT(expected.size(), 3000u);
}

TEST(BatchTest, ValidatesColumnsAndRows) {
  BatchMembers members;
  members.inviter = {-1, 0};
  members.joined_at = {0};
  EXPECT_THAT(SettleBatch(*Policy::FromJson("{}"), members, {}), HasReason("bad_batch"));
  members.joined_at = {0, 0};
  BatchOrders orders;
  orders.buyer = {5};
  orders.amount = {100};
  orders.at = {1};
  absl::StatusOr<BatchResult> result = SettleBatch(*Policy::FromJson("{}"), members, orders);
  ASSERT_THAT(result, IsOk());
  ASSERT_EQ(result->errors.size(), 1u);
  EXPECT_EQ(result->errors[0].table, "orders");
  EXPECT_EQ(result->errors[0].code, "unknown_member");
  EXPECT_EQ(result->engine.member_ids(), (std::vector<std::string>{"0", "1"}));
}

}  // namespace
}  // namespace refpay

namespace refpay {
namespace {

// The batch path reads rows by index, but must do exactly what the
// equivalent events do: these rows are the events SettleBatch stands for,
// in its documented order (by time; at equal times members with their
// roles, then orders, confirmations and refunds, each in row order).
std::vector<std::pair<std::string, Event>> EquivalentEvents(const BatchMembers& members,
                                                            const BatchOrders& orders) {
  struct Step {
    int64_t at;
    int table;  // 0 members, 1 orders, 2 confirms, 3 refunds
    int32_t row;
  };
  std::vector<Step> steps;
  for (size_t i = 0; i < members.inviter.size(); ++i)
    steps.push_back({members.joined_at[i], 0, static_cast<int32_t>(i)});
  for (size_t i = 0; i < orders.buyer.size(); ++i) {
    steps.push_back({orders.at[i], 1, static_cast<int32_t>(i)});
    if (orders.confirmed_at[i] != kNoTime)
      steps.push_back({orders.confirmed_at[i], 2, static_cast<int32_t>(i)});
    if (orders.refund_amount[i] != 0)
      steps.push_back({orders.refunded_at[i], 3, static_cast<int32_t>(i)});
  }
  std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
    return a.at != b.at ? a.at < b.at : a.table < b.table;
  });
  auto id = [](const std::vector<std::string>& ids, int32_t row) {
    return ids.empty() ? absl::StrCat(row) : ids[row];
  };
  std::vector<std::pair<std::string, Event>> events;
  for (const Step& s : steps) {
    Event e;
    e.at = absl::FromUnixMicros(s.at);
    if (s.table == 0) {
      e.type = EventType::kJoin;
      e.member = id(members.ids, s.row);
      const int32_t inviter = members.inviter[s.row];
      e.identity.device = members.device[s.row];
      e.identity.region = members.region[s.row];
      // A row whose inviter is out of range has no join event (its role
      // event still comes).
      if (inviter >= -1 && inviter < static_cast<int32_t>(members.inviter.size())) {
        if (inviter >= 0) e.inviter = id(members.ids, inviter);
        events.emplace_back("members", e);
      }
      if (!members.role[s.row].empty()) {
        Event role;
        role.type = EventType::kSetRole;
        role.at = e.at;
        role.member = e.member;
        role.role = members.role[s.row];
        events.emplace_back("members", role);
      }
      continue;
    }
    e.order = id(orders.ids, s.row);
    if (s.table == 1) {
      if (orders.buyer[s.row] >= static_cast<int32_t>(members.inviter.size())) continue;
      e.type = EventType::kOrder;
      e.buyer = id(members.ids, orders.buyer[s.row]);
      e.amount = Money::FromFen(orders.amount[s.row]);
      if (!orders.category[s.row].empty()) e.category = orders.category[s.row];
    } else if (s.table == 2) {
      e.type = EventType::kConfirm;
    } else {
      e.type = EventType::kRefund;
      e.amount = Money::FromFen(orders.refund_amount[s.row]);
    }
    events.emplace_back("orders", e);
  }
  return events;
}

TEST(BatchTest, RejectedRowsAndStateMatchTheEventPathByteForByte) {
  constexpr const char* kPolicies[] = {
      kPolicy,
      R"({"levels": [{"rate": "10%"}], "caps": {"member_month": "30", "budget": "500"},
          "promotions": [{"grant": "super", "when": {"referred_buyers": 2}}],
          "rank_bonus": {"super": {"fixed": "1"}}, "by_category": {"c": {"levels": [{"fixed": "2"}]}},
          "invite_rewards": {"steps": [{"at": 2, "reward": "3"}], "valid": {"same_region": true}},
          "checks": {"shared_identity": "deny", "split_orders": {"max_orders": 2, "window_minutes": 5}}})",
  };
  const int64_t t0 = absl::ToUnixMicros(*ParseTimestamp("2026-03-01T00:00:00+08:00"));
  for (const char* text : kPolicies) {
    for (const bool with_ids : {true, false}) {
      std::mt19937_64 random(11);
      auto pick = [&](int n) { return static_cast<int32_t>(random() % static_cast<uint64_t>(n)); };
      BatchMembers members;
      const int m = 120, n = 900;
      for (int i = 0; i < m; ++i) {
        // Repeated ids, inviters out of range or joining later, roles on
        // rejected joins, times out of row order.
        if (with_ids) {
          // Also empty and over-long ids (bad_event), which their invitees
          // and orders then name.
          const int kind = pick(40);
          members.ids.push_back(kind == 0   ? std::string()
                                : kind == 1 ? std::string(300, 'x') + absl::StrCat(i)
                                            : absl::StrCat("m", pick(8) == 0 ? pick(i + 1) : i));
        }
        members.inviter.push_back(i == 0 ? -1 : pick(12) == 0 ? pick(m + 5) - 2 : pick(i));
        members.joined_at.push_back(t0 + (pick(10) == 0 ? pick(m) : i) * 1'000'000);
        members.role.push_back(pick(10) == 0 ? "leader" : "");
        members.device.push_back(pick(6) == 0 ? "d1" : "");
        members.region.push_back(pick(2) == 0 ? "sh" : "bj");
      }
      BatchOrders orders;
      for (int i = 0; i < n; ++i) {
        if (with_ids) {
          const int kind = pick(60);
          orders.ids.push_back(kind == 0   ? std::string()
                               : kind == 1 ? std::string(257, 'o')
                                           : absl::StrCat("o", pick(20) == 0 ? pick(i + 1) : i));
        }
        orders.buyer.push_back(pick(30) == 0 ? m + 3 : pick(m));
        orders.amount.push_back(pick(25) == 0 ? 0 : 1 + pick(60'000));
        // Some orders come before their buyer joined.
        const int64_t at = t0 + pick(m + 400) * 1'000'000;
        orders.at.push_back(at);
        orders.category.push_back(pick(4) == 0 ? "c" : pick(80) == 0 ? std::string(300, 'c') : "");
        orders.confirmed_at.push_back(pick(2) == 0 ? at + pick(100) * 1'000'000 : kNoTime);
        const bool refund = pick(5) == 0;
        orders.refund_amount.push_back(refund ? 1 + pick(70'000) : 0);  // some over-refunds
        orders.refunded_at.push_back(refund ? at + pick(200) * 1'000'000 : kNoTime);
      }
      absl::StatusOr<BatchResult> batch = SettleBatch(*Policy::FromJson(text), members, orders);
      ASSERT_THAT(batch, IsOk());

      Engine events(*Policy::FromJson(text));
      std::vector<std::string> expected_errors;
      for (const auto& [table, event] : EquivalentEvents(members, orders)) {
        if (absl::Status s = events.Apply(event); !s.ok())
          expected_errors.push_back(absl::StrCat(table, " ", ErrorCodeOf(s), " ", s.message()));
      }
      std::vector<std::string> got_errors;
      for (const BatchError& e : batch->errors)
        got_errors.push_back(absl::StrCat(e.table, " ", e.code, " ", e.message));
      // Row-range errors happen before an event exists; everything else
      // must be the event path's, message for message.
      std::erase_if(got_errors, [](const std::string& e) { return e.find(" row ") != e.npos; });
      SCOPED_TRACE(absl::StrCat(text, with_ids ? " with ids" : " with row ids"));
      EXPECT_EQ(got_errors, expected_errors);
      EXPECT_GT(expected_errors.size(), 20u);
      if (with_ids) {
        for (const char* shape : {"is empty", "is longer than 256 bytes"}) {
          EXPECT_TRUE(std::any_of(got_errors.begin(), got_errors.end(), [&](const std::string& e) {
            return e.find(shape) != e.npos;
          })) << shape;
        }
      }
      EXPECT_TRUE(batch->engine.Snapshot() == events.Snapshot());
    }
  }
}

}  // namespace
}  // namespace refpay
