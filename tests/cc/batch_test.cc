#include "refpay/batch.h"

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
