// SettleTotals and SettleLedger against SettleBatch + Engine::Totals and
// Engine::LedgerTable: the columnar kernel must give the engine's totals
// and ledger fen for fen, row for row, and say when it stepped aside.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "refpay/batch.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::HasReason;
using ::refpay::testing::IsOk;

const int64_t kT0 = absl::ToUnixMicros(*ParseTimestamp("2026-03-01T00:00:00+08:00"));
constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kDay = 86'400 * kSecond;

// Policies the kernel settles: every amount kind, both tier modes with
// fixed tiers and inclusive bounds, the leader's include_self and
// max_depth, binding and non-binding caps, hold periods, rounding modes,
// self purchase.
constexpr const char* kKernelPolicies[] = {
    R"({"levels": [{"mode": "whole", "tiers": [{"below": "3000", "rate": "4%"},
          {"from": "3000", "below": "5000", "rate": "5%"}, {"from": "5000", "rate": "8%"}]},
          {"rate": "5%"}], "leader": {"rate": "2%"}, "caps": {"order_total": "30%"},
          "settlement": {"hold_days": 7}, "checks": {"shared_identity": "off"}})",
    R"({"levels": [{"mode": "marginal", "tiers": [{"upto": "100", "rate": "10%"},
          {"above": "100", "upto": "300", "rate": "7.5%"}, {"above": "300", "rate": "3.3333%"}]},
          {"fixed": "3.50"}, {"rate": "12.5%"}], "rounding": "half_even",
          "leader": {"fixed": "2.00", "max_depth": 3, "include_self": true},
          "caps": {"order_total": "15%"}})",
    R"({"levels": [{"mode": "whole", "tiers": [{"upto": "50", "fixed": "1.00"},
          {"above": "50", "rate": "9%"}]}], "rounding": "down", "self_purchase": true,
          "leader": {"rate": "3%", "include_self": true}, "settlement": {"hold_days": 0}})",
    R"({"leader": {"rate": "2%", "max_depth": 2}, "caps": {"order_total": "1%"}})",
    R"({"levels": [{"rate": "100%"}, {"rate": "50%"}], "caps": {"order_total": "100%"}})",
    // Rates falling with the amount: a partial refund can raise a rule's
    // amount, which SPEC §4 never pays (each entry keeps the smaller).
    R"({"levels": [{"mode": "whole", "tiers": [{"below": "3000", "rate": "8%"},
          {"from": "3000", "rate": "4%"}]}, {"rate": "5%"}], "leader": {"rate": "2%"},
          "caps": {"order_total": "10%"}})",
    // More levels than a kernel node holds ancestors: the deeper ones walk
    // up the tree (SPEC §7 lints past three, but such a policy still runs).
    R"({"levels": [{"rate": "5%"}, {"rate": "4%"}, {"rate": "3%"}, {"rate": "2%"},
          {"rate": "1%"}], "leader": {"rate": "1%", "max_depth": 4}})",
};

struct Batch {
  BatchMembers members;
  BatchOrders orders;
  int64_t last = 0;  // the latest time in the batch
};

// A batch the engine accepts row for row: inviters join first (times out
// of row order included), buyers join before they buy, refunds within the
// amount and after the order.
Batch CleanBatch(uint64_t seed, bool with_ids, int m, int n) {
  std::mt19937_64 random(seed);
  auto pick = [&](int64_t k) { return static_cast<int64_t>(random() % static_cast<uint64_t>(k)); };
  Batch b;
  // Join times are non-decreasing in a shuffled "join rank"; rows are in
  // another order, so inviters are rows joined earlier in time.
  std::vector<int32_t> rank_of_row(m);
  for (int i = 0; i < m; ++i) rank_of_row[i] = i;
  std::shuffle(rank_of_row.begin(), rank_of_row.end(), random);
  std::vector<int32_t> row_of_rank(m);
  for (int i = 0; i < m; ++i) row_of_rank[rank_of_row[i]] = i;
  b.members.inviter.resize(m);
  b.members.joined_at.resize(m);
  b.members.role.resize(m);
  for (int row = 0; row < m; ++row) {
    const int rank = rank_of_row[row];
    // Ties in time keep row order, so an inviter with the same time must
    // be an earlier row: keep times distinct per rank.
    b.members.joined_at[row] = kT0 + rank * kSecond;
    b.members.inviter[row] = rank == 0 || pick(20) == 0 ? -1 : row_of_rank[pick(rank)];
    b.members.role[row] = pick(8) == 0 ? "leader" : "";
    if (with_ids) b.members.ids.push_back(absl::StrCat("member-", row * 7 + 3));
  }
  for (int o = 0; o < n; ++o) {
    const auto buyer = static_cast<int32_t>(pick(m));
    const int64_t at = b.members.joined_at[buyer] + pick(3) * kSecond;
    // Log-normal-ish amounts across the tier bounds, a few exactly on them.
    const int64_t amount = pick(10) == 0 ? 300'000 : pick(3) == 0 ? 10'000 : 1 + pick(900'000);
    b.orders.buyer.push_back(buyer);
    b.orders.amount.push_back(amount);
    b.orders.at.push_back(at);
    b.orders.confirmed_at.push_back(pick(3) == 0 ? kNoTime
                                                 : at + pick(int64_t{20} * 86'400) * kSecond);
    const int64_t refund = pick(5) != 0 ? 0 : pick(2) == 0 ? amount : 1 + pick(amount);
    b.orders.refund_amount.push_back(refund);
    b.orders.refunded_at.push_back(refund == 0 ? kNoTime
                                               : at + pick(int64_t{30} * 86'400) * kSecond);
    if (with_ids) b.orders.ids.push_back(absl::StrCat("order-", o));
  }
  for (int64_t t : b.members.joined_at) b.last = std::max(b.last, t);
  for (const auto* column : {&b.orders.at, &b.orders.confirmed_at, &b.orders.refunded_at}) {
    for (int64_t t : *column) b.last = std::max(b.last, t);
  }
  return b;
}

// What SettleBatch + Engine::Totals give, by member row (rows that did not
// join: zeros), with the errors as "table row code".
struct Expected {
  MemberTotals by_row;
  std::vector<std::string> errors;
};

std::string RowId(const BatchMembers& members, size_t row) {
  return members.ids.empty() ? absl::StrCat(row) : members.ids[row];
}

Expected ByEngine(const char* policy, const Batch& b, absl::Time as_of) {
  absl::StatusOr<BatchResult> settled = SettleBatch(*Policy::FromJson(policy), b.members, b.orders);
  EXPECT_THAT(settled, IsOk());
  absl::StatusOr<MemberTotals> totals = settled->engine.Totals(as_of);
  EXPECT_THAT(totals, IsOk());
  Expected expected;
  absl::flat_hash_set<int64_t> rejected_members;
  for (const BatchError& e : settled->errors) {
    expected.errors.push_back(absl::StrCat(e.table, " ", e.row, " ", e.code));
    if (e.table == "members") rejected_members.insert(e.row);
  }
  absl::flat_hash_map<std::string, int32_t> index;
  const absl::Span<const std::string> ids = settled->engine.member_ids();
  for (size_t i = 0; i < ids.size(); ++i) index[ids[i]] = static_cast<int32_t>(i);
  const size_t m = b.members.inviter.size();
  for (auto [out, in] : {std::pair{&expected.by_row.pending, &totals->pending},
                         std::pair{&expected.by_row.frozen, &totals->frozen},
                         std::pair{&expected.by_row.available, &totals->available},
                         std::pair{&expected.by_row.held, &totals->held}}) {
    out->assign(m, 0);
    for (size_t row = 0; row < m; ++row) {
      if (!rejected_members.contains(static_cast<int64_t>(row)))
        (*out)[row] = (*in)[index.at(RowId(b.members, row))];
    }
  }
  return expected;
}

void ExpectSameTotals(const MemberTotals& got, const MemberTotals& want) {
  EXPECT_EQ(got.pending, want.pending);
  EXPECT_EQ(got.frozen, want.frozen);
  EXPECT_EQ(got.available, want.available);
  EXPECT_EQ(got.held, want.held);
}

std::vector<std::string> Errors(const BatchTotals& t) {
  std::vector<std::string> errors;
  for (const BatchError& e : t.errors)
    errors.push_back(absl::StrCat(e.table, " ", e.row, " ", e.code));
  return errors;
}

TEST(SettleTotalsTest, KernelAgreesWithTheEngineFenForFen) {
  for (const char* policy : kKernelPolicies) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      const bool with_ids = seed % 2 == 0;
      const Batch b = CleanBatch(seed, with_ids, 300, 3000);
      // As of the last event, and later (frozen entries become available).
      for (const int64_t later : {int64_t{0}, 8 * kDay}) {
        SCOPED_TRACE(absl::StrCat(policy, " seed ", seed, " +", later));
        const absl::Time as_of = absl::FromUnixMicros(b.last + later);
        absl::StatusOr<BatchTotals> got =
            SettleTotals(*Policy::FromJson(policy), b.members, b.orders, as_of);
        ASSERT_THAT(got, IsOk());
        EXPECT_EQ(got->engine_reason, "");
        EXPECT_TRUE(got->errors.empty());
        const Expected want = ByEngine(policy, b, as_of);
        EXPECT_TRUE(want.errors.empty());
        ExpectSameTotals(got->by_row, want.by_row);
        int64_t paid = 0;
        for (int64_t v : got->by_row.available) paid += v;
        if (later > 0) {
          EXPECT_GT(paid, 0);  // the data exercises the statuses
        }
      }
    }
  }
}

TEST(SettleTotalsTest, OrdersBeyondTheInt64ProductFastPathAreExact) {
  // Amounts above kMaxFenForInt64Product take AmountRule::Compute's 128-bit
  // path inside the kernel.
  Batch b = CleanBatch(3, false, 50, 200);
  for (size_t o = 0; o < b.orders.amount.size(); o += 3) {
    b.orders.amount[o] = kMaxFenForInt64Product + 1 + static_cast<int64_t>(o);
    b.orders.refund_amount[o] = o % 2 == 0 ? 0 : 12'345;
    b.orders.refunded_at[o] = b.orders.refund_amount[o] == 0 ? kNoTime : b.orders.at[o];
  }
  const char* policy = R"({"levels": [{"rate": "0.0001%"}, {"mode": "marginal", "tiers":
      [{"upto": "100", "rate": "0.0003%"}, {"above": "100", "rate": "0.0001%"}]}]})";
  const absl::Time as_of = absl::FromUnixMicros(b.last);
  absl::StatusOr<BatchTotals> got =
      SettleTotals(*Policy::FromJson(policy), b.members, b.orders, as_of);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->engine_reason, "");
  ExpectSameTotals(got->by_row, ByEngine(policy, b, as_of).by_row);
}

// Each case breaks one thing the kernel relies on; the engine settles and
// SettleTotals returns its totals and errors, saying why.
TEST(SettleTotalsTest, FallsBackToTheEngineAndSaysWhy) {
  struct Case {
    const char* policy;
    void (*edit)(Batch&);
    const char* reason;
  };
  const char* standard = kKernelPolicies[0];
  const Case cases[] = {
      {R"({"levels": [{"rate": "10%"}], "promotions": [{"grant": "super",
          "when": {"referred_buyers": 2}}], "rank_bonus": {"super": {"fixed": "1"}}})",
       [](Batch&) {}, "the policy has promotions"},
      {R"({"levels": [{"rate": "10%"}], "caps": {"member_month": "30"}})", [](Batch&) {},
       "the policy has caps.member_month"},
      {R"({"levels": [{"rate": "10%"}], "checks": {"split_orders": {"max_orders": 2,
          "window_minutes": 5}}})",
       [](Batch&) {}, "the policy has checks.split_orders"},
      {R"({"leader": {"scheme": "differential", "ranks": [{"name": "leader", "rate": "2%"},
          {"name": "director", "rate": "3%"}]}})",
       [](Batch&) {}, "the leader scheme is differential"},
      {R"({"levels": [{"rate": "10%"}]})",  // shared_identity is on by default
       [](Batch& b) {
         b.members.device.assign(b.members.inviter.size(), "");
         b.members.device[5] = b.members.device[6] = "phone-1";
       },
       "checks.shared_identity is on and members have identities"},
      {standard, [](Batch& b) { b.members.role[4] = "super"; }, "member row 4 has role \"super\""},
      {standard, [](Batch& b) { b.orders.amount[9] = 0; }, "order row 9 would be rejected"},
      {standard, [](Batch& b) { b.orders.buyer[2] = 100000; }, "order row 2 would be rejected"},
      {standard,
       [](Batch& b) {
         b.orders.refund_amount[7] = b.orders.amount[7] + 1;
         b.orders.refunded_at[7] = b.orders.at[7];
       },
       "order row 7's refund would be rejected"},
      {standard, [](Batch& b) { b.orders.confirmed_at[3] = b.orders.at[3] - 1; },
       "order row 3 is confirmed before it is placed"},
      {standard,
       [](Batch& b) {
         // Member 0's inviter joins after it.
         b.members.inviter[0] = 1;
         b.members.inviter[1] = -1;
         b.members.joined_at[1] = b.members.joined_at[0] + 1;
       },
       "member row 0's inviter has not joined before it"},
      {standard, [](Batch& b) { b.members.ids[8] = b.members.ids[2]; },
       "member ids are empty, too long or repeated"},
      {standard, [](Batch& b) { b.orders.ids[8] = b.orders.ids[2]; },
       "order ids are empty, too long or repeated"},
      {standard, [](Batch& b) { b.orders.ids[1] = std::string(257, 'x'); },
       "order ids are empty, too long or repeated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    Batch b = CleanBatch(5, true, 100, 800);
    c.edit(b);
    const absl::Time as_of = absl::FromUnixMicros(b.last + kDay);
    absl::StatusOr<BatchTotals> got =
        SettleTotals(*Policy::FromJson(c.policy), b.members, b.orders, as_of);
    ASSERT_THAT(got, IsOk());
    EXPECT_EQ(got->engine_reason, c.reason);
    const Expected want = ByEngine(c.policy, b, as_of);
    ExpectSameTotals(got->by_row, want.by_row);
    EXPECT_EQ(Errors(*got), want.errors);
  }
}

// Join times in row order (the usual table) take a shortcut for "joined
// before": the row order itself, ties included.
TEST(SettleTotalsTest, RowOrderJoinsAreCheckedLikeShuffledOnes) {
  const char* policy = kKernelPolicies[0];
  BatchMembers members;
  members.inviter = {-1, 0, 1, -1, 3};
  members.joined_at = {kT0, kT0, kT0 + 1, kT0 + 1, kT0 + 1};  // ties: row order decides
  BatchOrders orders;
  orders.buyer = {2, 4};
  orders.amount = {10'000, 20'000};
  orders.at = {kT0 + 2, kT0 + 2};
  const absl::Time as_of = absl::FromUnixMicros(kT0 + 2);
  absl::StatusOr<BatchTotals> got = SettleTotals(*Policy::FromJson(policy), members, orders, as_of);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->engine_reason, "");
  EXPECT_EQ(got->by_row.pending, (std::vector<int64_t>{500, 400, 0, 800, 0}));
  // Row 3 invited by row 4, at the same instant: row 4 joins after it.
  members.inviter = {-1, 0, 1, 4, -1};
  got = SettleTotals(*Policy::FromJson(policy), members, orders, as_of);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->engine_reason, "member row 3's inviter has not joined before it");
}

TEST(SettleTotalsTest, ErrorsAreTheEnginesErrors) {
  const Batch b = CleanBatch(2, false, 40, 100);
  const Policy policy = *Policy::FromJson(kKernelPolicies[0]);
  // as_of before the last event: the engine's bad_as_of, not silent totals.
  EXPECT_THAT(SettleTotals(policy, b.members, b.orders, absl::FromUnixMicros(b.last - 1)),
              HasReason("bad_as_of"));
  // Column lengths: SettleBatch's bad_batch naming the column.
  Batch short_column = b;
  short_column.orders.at.pop_back();
  absl::StatusOr<BatchTotals> bad =
      SettleTotals(policy, short_column.members, short_column.orders, absl::FromUnixMicros(b.last));
  EXPECT_THAT(bad, HasReason("bad_batch"));
  EXPECT_NE(bad.status().message().find("orders.at"), std::string::npos);
  // A member total beyond int64: the engine's overflow.
  Batch huge = CleanBatch(2, false, 2, 0);
  huge.members.inviter = {-1, 0};
  huge.members.joined_at = {huge.last, huge.last};
  for (int i = 0; i < 3; ++i) {
    huge.orders.buyer.push_back(1);
    huge.orders.amount.push_back(std::numeric_limits<int64_t>::max() / 2);
    huge.orders.at.push_back(huge.last);
  }
  EXPECT_THAT(SettleTotals(*Policy::FromJson(R"({"levels": [{"rate": "100%"}]})"), huge.members,
                           huge.orders, absl::FromUnixMicros(huge.last)),
              HasReason("overflow"));
}

// Engine::LedgerTable and Flags of SettleBatch, with members and orders as
// batch rows (found by id, as a caller of the engine would).
struct EngineLedger {
  LedgerColumns ledger;
  std::vector<BatchFlag> flags;
};

EngineLedger LedgerByEngine(const char* policy, const Batch& b, absl::Time as_of) {
  absl::StatusOr<BatchResult> settled = SettleBatch(*Policy::FromJson(policy), b.members, b.orders);
  EXPECT_THAT(settled, IsOk());
  absl::StatusOr<LedgerColumns> ledger = settled->engine.LedgerTable(as_of);
  EXPECT_THAT(ledger, IsOk());
  absl::flat_hash_map<std::string, int32_t> member_row;
  for (size_t row = 0; row < b.members.inviter.size(); ++row)
    member_row[RowId(b.members, row)] = static_cast<int32_t>(row);
  absl::flat_hash_map<std::string, int32_t> order_row;
  for (size_t row = 0; row < b.orders.buyer.size(); ++row) {
    order_row[b.orders.ids.empty() ? absl::StrCat(row) : b.orders.ids[row]] =
        static_cast<int32_t>(row);
  }
  for (int32_t& m : ledger->member) m = member_row.at(settled->engine.member_ids()[m]);
  for (int32_t& o : ledger->order) {
    if (o >= 0) o = order_row.at(settled->engine.order_ids()[o]);
  }
  EngineLedger out{*std::move(ledger), {}};
  for (const Flag& f : settled->engine.Flags()) {
    out.flags.push_back({f.check, member_row.at(f.member), f.order ? order_row.at(*f.order) : -1});
  }
  return out;
}

void ExpectSameLedger(const LedgerColumns& got, const LedgerColumns& want) {
  EXPECT_EQ(got.order, want.order);
  EXPECT_EQ(got.member, want.member);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.amount, want.amount);
  EXPECT_EQ(got.rule_amount, want.rule_amount);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.action, want.action);
  EXPECT_EQ(got.clawback, want.clawback);
  EXPECT_EQ(got.kind_names, want.kind_names);
}

// Integer ids stand for their decimal strings: the same totals, ledger,
// errors and engine ids as the strings give, on the kernel and engine paths.
TEST(SettleTotalsTest, IntegerIdsSettleAsTheirDecimalStrings) {
  const char* policy_json = kKernelPolicies[0];
  const Policy policy = *Policy::FromJson(policy_json);
  Batch ints = CleanBatch(4, false, 200, 1500);
  // Member ids out of order and negative too (7919 is prime to 1000);
  // order ids increasing, as auto-increment keys are.
  for (int64_t row = 0; row < 200; ++row) ints.members.int_ids.push_back(row * 7919 % 1000 - 500);
  for (int64_t o = 0; o < 1500; ++o) ints.orders.int_ids.push_back(o * 3);
  auto as_strings = [](const Batch& b) {
    Batch strings = b;
    strings.members.int_ids.clear();
    strings.orders.int_ids.clear();
    for (int64_t id : b.members.int_ids) strings.members.ids.push_back(absl::StrCat(id));
    for (int64_t id : b.orders.int_ids) strings.orders.ids.push_back(absl::StrCat(id));
    return strings;
  };
  const absl::Time as_of = absl::FromUnixMicros(ints.last + kDay);
  auto expect_same = [&](const Batch& b, const std::string& reason) {
    const Batch strings = as_strings(b);
    absl::StatusOr<BatchTotals> got = SettleTotals(policy, b.members, b.orders, as_of);
    absl::StatusOr<BatchTotals> want = SettleTotals(policy, strings.members, strings.orders, as_of);
    ASSERT_THAT(got, IsOk());
    ASSERT_THAT(want, IsOk());
    EXPECT_EQ(got->engine_reason, reason);
    ExpectSameTotals(got->by_row, want->by_row);
    EXPECT_EQ(Errors(*got), Errors(*want));
    absl::StatusOr<BatchLedger> ledger = SettleLedger(policy, b.members, b.orders, as_of);
    absl::StatusOr<BatchLedger> ledger_want =
        SettleLedger(policy, strings.members, strings.orders, as_of);
    ASSERT_THAT(ledger, IsOk());
    ASSERT_THAT(ledger_want, IsOk());
    ExpectSameLedger(ledger->ledger, ledger_want->ledger);
    absl::StatusOr<BatchResult> engine = SettleBatch(policy, b.members, b.orders);
    absl::StatusOr<BatchResult> engine_want = SettleBatch(policy, strings.members, strings.orders);
    ASSERT_THAT(engine, IsOk());
    ASSERT_THAT(engine_want, IsOk());
    EXPECT_TRUE(std::equal(engine->engine.member_ids().begin(), engine->engine.member_ids().end(),
                           engine_want->engine.member_ids().begin(),
                           engine_want->engine.member_ids().end()));
    EXPECT_EQ(engine->engine.Snapshot(), engine_want->engine.Snapshot());
  };
  expect_same(ints, "");
  Batch repeated_member = ints;
  repeated_member.members.int_ids[8] = repeated_member.members.int_ids[2];
  expect_same(repeated_member, "member ids are repeated");
  Batch repeated_order = ints;
  repeated_order.orders.int_ids[8] = repeated_order.orders.int_ids[2];
  expect_same(repeated_order, "order ids are repeated");

  Batch both = ints;
  both.members.ids = as_strings(ints).members.ids;
  absl::StatusOr<BatchTotals> bad = SettleTotals(policy, both.members, both.orders, as_of);
  EXPECT_THAT(bad, HasReason("bad_batch"));
  EXPECT_NE(bad.status().message().find("members has both ids and int_ids"), std::string::npos);
  Batch short_ids = ints;
  short_ids.orders.int_ids.pop_back();
  bad = SettleTotals(policy, short_ids.members, short_ids.orders, as_of);
  EXPECT_THAT(bad, HasReason("bad_batch"));
  EXPECT_NE(bad.status().message().find("orders.int_ids"), std::string::npos);
}

// A column's strings in Arrow's large_string layout: n + 1 offsets into one
// buffer.
struct ArrowText {
  explicit ArrowText(const std::vector<std::string>& strings) {
    offsets.push_back(0);
    for (const std::string& s : strings) {
      data += s;
      offsets.push_back(static_cast<int64_t>(data.size()));
    }
  }
  TextColumn Column() const { return *TextColumn::FromOffsets(offsets, data); }
  std::vector<int64_t> offsets;
  std::string data;
};

TEST(TextColumnTest, ViewsArrowBuffersAndRefusesBadOffsets) {
  const std::vector<int64_t> offsets = {0, 1, 1, 4};
  absl::StatusOr<TextColumn> text = TextColumn::FromOffsets(offsets, "abcd");
  ASSERT_THAT(text, IsOk());
  ASSERT_EQ(text->size(), 3u);
  EXPECT_EQ((*text)[0], "a");
  EXPECT_EQ((*text)[1], "");
  EXPECT_EQ((*text)[2], "bcd");
  const std::vector<std::string> strings = {"x", "yz"};
  const TextColumn from_strings = strings;
  EXPECT_EQ(from_strings.size(), 2u);
  EXPECT_EQ(from_strings[1], "yz");
  EXPECT_TRUE(TextColumn().empty());

  struct Bad {
    std::vector<int64_t> offsets;
    const char* message;
  };
  for (const Bad& bad :
       {Bad{{}, "offsets need at least one value"}, Bad{{0, 100, 2}, "offsets decrease at row 1"},
        Bad{{0, 1, 99}, "offsets point outside the data buffer"},
        Bad{{-1, 1, 2}, "offsets point outside the data buffer"}}) {
    absl::StatusOr<TextColumn> refused = TextColumn::FromOffsets(bad.offsets, "ab");
    EXPECT_THAT(refused, HasReason("bad_batch"));
    EXPECT_EQ(refused.status().message(), bad.message);
  }
}

// Views over memory the caller owns (here plain arrays and Arrow-layout
// text, as numpy and Arrow buffers would be) settle exactly as the owning
// tables, by the kernel and by the engine; a view of the first rows is the
// batch of those rows.
TEST(BatchViewTest, ViewsOfCallerMemorySettleAsTheTables) {
  const Batch b = CleanBatch(7, true, 200, 1500);
  const absl::Time as_of = absl::FromUnixMicros(b.last + kDay);
  // Copies in arrays that are not vectors, so the views cannot be reading
  // the batch's own columns.
  auto copy = [](const auto& column) {
    using T = typename std::decay_t<decltype(column)>::value_type;
    auto array = std::make_unique<T[]>(column.size());
    std::copy(column.begin(), column.end(), array.get());
    return array;
  };
  auto inviter = copy(b.members.inviter);
  auto joined_at = copy(b.members.joined_at);
  auto buyer = copy(b.orders.buyer);
  auto amount = copy(b.orders.amount);
  auto at = copy(b.orders.at);
  auto confirmed_at = copy(b.orders.confirmed_at);
  auto refund_amount = copy(b.orders.refund_amount);
  auto refunded_at = copy(b.orders.refunded_at);
  const size_t m = b.members.inviter.size();
  const size_t n = b.orders.buyer.size();
  // Text as Arrow buffers: ids and roles.
  const ArrowText member_ids(b.members.ids);
  const ArrowText roles(b.members.role);
  const ArrowText order_ids(b.orders.ids);
  BatchMembersView members;
  members.ids = member_ids.Column();
  members.inviter = absl::MakeConstSpan(inviter.get(), m);
  members.joined_at = absl::MakeConstSpan(joined_at.get(), m);
  members.role = roles.Column();
  BatchOrdersView orders;
  orders.ids = order_ids.Column();
  orders.buyer = absl::MakeConstSpan(buyer.get(), n);
  orders.amount = absl::MakeConstSpan(amount.get(), n);
  orders.at = absl::MakeConstSpan(at.get(), n);
  orders.confirmed_at = absl::MakeConstSpan(confirmed_at.get(), n);
  orders.refund_amount = absl::MakeConstSpan(refund_amount.get(), n);
  orders.refunded_at = absl::MakeConstSpan(refunded_at.get(), n);

  // The kernel's policy, and one the engine settles (a promotion).
  const char* engine_policy = R"({"levels": [{"rate": "10%"}], "promotions": [{"grant":
      "super", "when": {"referred_buyers": 2}}], "rank_bonus": {"super": {"fixed": "1"}},
      "checks": {"shared_identity": "off"}})";
  for (const char* policy_json : {kKernelPolicies[0], engine_policy}) {
    SCOPED_TRACE(policy_json);
    const Policy policy = *Policy::FromJson(policy_json);
    absl::StatusOr<BatchTotals> by_view = SettleTotals(policy, members, orders, as_of);
    absl::StatusOr<BatchTotals> by_table = SettleTotals(policy, b.members, b.orders, as_of);
    ASSERT_THAT(by_view, IsOk());
    ASSERT_THAT(by_table, IsOk());
    EXPECT_EQ(by_view->engine_reason, by_table->engine_reason);
    ExpectSameTotals(by_view->by_row, by_table->by_row);
    absl::StatusOr<BatchLedger> ledger_by_view = SettleLedger(policy, members, orders, as_of);
    absl::StatusOr<BatchLedger> ledger_by_table = SettleLedger(policy, b.members, b.orders, as_of);
    ASSERT_THAT(ledger_by_view, IsOk());
    ASSERT_THAT(ledger_by_table, IsOk());
    EXPECT_EQ(ledger_by_view->ledger.amount, ledger_by_table->ledger.amount);
    EXPECT_EQ(ledger_by_view->ledger.member, ledger_by_table->ledger.member);
  }

  // The first 500 orders, by a view and by a batch cut to them.
  Batch first = b;
  for (auto* column : {&first.orders.amount, &first.orders.at, &first.orders.confirmed_at,
                       &first.orders.refund_amount, &first.orders.refunded_at}) {
    column->resize(500);
  }
  first.orders.buyer.resize(500);
  first.orders.ids.resize(500);
  BatchOrdersView first_view = orders;
  for (auto* column : {&first_view.amount, &first_view.at, &first_view.confirmed_at,
                       &first_view.refund_amount, &first_view.refunded_at}) {
    *column = column->subspan(0, 500);
  }
  first_view.buyer = first_view.buyer.subspan(0, 500);
  first_view.ids = absl::MakeConstSpan(b.orders.ids).subspan(0, 500);
  const Policy policy = *Policy::FromJson(kKernelPolicies[0]);
  absl::StatusOr<BatchTotals> cut = SettleTotals(policy, members, first_view, as_of);
  ASSERT_THAT(cut, IsOk());
  ExpectSameTotals(cut->by_row, ByEngine(kKernelPolicies[0], first, as_of).by_row);
}

TEST(SettleLedgerTest, KernelWritesTheEnginesLedgerRowForRow) {
  for (const char* policy : kKernelPolicies) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const Batch b = CleanBatch(seed, seed % 2 == 0, 300, 3000);
      for (const int64_t later : {int64_t{0}, 8 * kDay}) {
        SCOPED_TRACE(absl::StrCat(policy, " seed ", seed, " +", later));
        const absl::Time as_of = absl::FromUnixMicros(b.last + later);
        absl::StatusOr<BatchLedger> got =
            SettleLedger(*Policy::FromJson(policy), b.members, b.orders, as_of);
        ASSERT_THAT(got, IsOk());
        EXPECT_EQ(got->engine_reason, "");
        EXPECT_TRUE(got->errors.empty());
        const EngineLedger want = LedgerByEngine(policy, b, as_of);
        ExpectSameLedger(got->ledger, want.ledger);
        EXPECT_EQ(got->flags, want.flags);
        ExpectSameTotals(got->by_row, ByEngine(policy, b, as_of).by_row);
        // The data has shrunk entries and clawbacks both.
        EXPECT_GT(std::count(want.ledger.clawback.begin(), want.ledger.clawback.end(), 1), 0);
        if (std::string_view(policy).find(R"("order_total": "1%")") != std::string_view::npos) {
          EXPECT_FALSE(want.flags.empty());  // a binding cap raises cap_order flags
        }
      }
    }
  }
}

TEST(SettleLedgerTest, FallsBackToTheEngineInBatchRows) {
  // A promotion needs the engine; its ledger is still in batch rows, and a
  // rejected order row is reported, not written.
  // The cap binds, so the flags are mapped to rows too.
  const char* policy = R"({"levels": [{"rate": "10%"}], "promotions": [{"grant": "super",
      "when": {"referred_buyers": 2}}], "rank_bonus": {"super": {"fixed": "1"}},
      "caps": {"order_total": "5%"}})";
  Batch b = CleanBatch(7, true, 100, 800);
  b.orders.amount[5] = 0;
  const absl::Time as_of = absl::FromUnixMicros(b.last + kDay);
  absl::StatusOr<BatchLedger> got =
      SettleLedger(*Policy::FromJson(policy), b.members, b.orders, as_of);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->engine_reason, "the policy has promotions");
  const EngineLedger want = LedgerByEngine(policy, b, as_of);
  ExpectSameLedger(got->ledger, want.ledger);
  EXPECT_EQ(got->flags, want.flags);
  EXPECT_FALSE(want.flags.empty());
  ExpectSameTotals(got->by_row, ByEngine(policy, b, as_of).by_row);
  // The order row, and its confirmation or refund (of an unknown order).
  ASSERT_FALSE(got->errors.empty());
  for (const BatchError& e : got->errors) EXPECT_EQ(absl::StrCat(e.table, " ", e.row), "orders 5");
  EXPECT_EQ(std::count(got->ledger.order.begin(), got->ledger.order.end(), 5), 0);
}

TEST(SettleLedgerTest, WithoutOptionalColumns) {
  // No ids, roles, confirmations or refunds: every entry pending, and
  // still the engine's rows.
  Batch b = CleanBatch(9, false, 200, 1500);
  b.members.role.clear();
  b.orders.confirmed_at.clear();
  b.orders.refund_amount.clear();
  b.orders.refunded_at.clear();
  b.last = std::max(*std::max_element(b.members.joined_at.begin(), b.members.joined_at.end()),
                    *std::max_element(b.orders.at.begin(), b.orders.at.end()));
  const char* policy = kKernelPolicies[1];
  const absl::Time as_of = absl::FromUnixMicros(b.last);
  absl::StatusOr<BatchLedger> got =
      SettleLedger(*Policy::FromJson(policy), b.members, b.orders, as_of);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->engine_reason, "");
  const EngineLedger want = LedgerByEngine(policy, b, as_of);
  ExpectSameLedger(got->ledger, want.ledger);
  EXPECT_EQ(got->flags, want.flags);
  EXPECT_FALSE(got->ledger.amount.empty());
}

TEST(SettleLedgerTest, ErrorsAreTheEnginesErrors) {
  const Batch b = CleanBatch(2, false, 40, 100);
  const Policy policy = *Policy::FromJson(kKernelPolicies[0]);
  EXPECT_THAT(SettleLedger(policy, b.members, b.orders, absl::FromUnixMicros(b.last - 1)),
              HasReason("bad_as_of"));
  Batch short_column = b;
  short_column.members.joined_at.pop_back();
  absl::StatusOr<BatchLedger> bad =
      SettleLedger(policy, short_column.members, short_column.orders, absl::FromUnixMicros(b.last));
  EXPECT_THAT(bad, HasReason("bad_batch"));
  EXPECT_NE(bad.status().message().find("members.joined_at"), std::string::npos);
}

}  // namespace
}  // namespace refpay
