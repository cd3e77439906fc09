// Property tests: random event streams under random policies must keep the
// ledger's invariants (docs/reliability.md lists them). REFPAY_STREAMS in the
// environment raises the number of streams for a long run.
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "refpay/engine.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::IsOk;

constexpr const char* kPolicies[] = {
    R"({"levels": [{"rate": "10%"}, {"rate": "5%"}], "caps": {"order_total": "12%"}})",
    R"({"levels": [{"fixed": "50"}, {"fixed": "50"}], "caps": {"order_total": "30%", "budget": "2000"},
        "settlement": {"hold_days": 2}, "binding": {"mode": "free"}})",
    R"({"levels": [{"tiers": [{"below": "300", "rate": "4%"}, {"from": "300", "below": "500", "rate": "5%"},
                              {"from": "500", "fixed": "40"}]}],
        "leader": {"rate": "3%", "peer": {"rate": "10%"}, "include_self": true},
        "caps": {"member_month": "300"}, "rounding": "half_even",
        "checks": {"shared_identity": "deny", "split_orders": {"max_orders": 2, "window_minutes": 30}}})",
    R"({"levels": [{"rate": "7.5%", "by_rank": {"gold": {"rate": "9%"}}}, {"rate": "2.5%"}],
        "eligible": {"role": "distributor", "compress": true}, "self_purchase": true,
        "leader": {"scheme": "differential", "max_depth": 6, "peer": {"rate": "5%"},
                   "ranks": [{"name": "silver", "rate": "2%"}, {"name": "gold", "rate": "4%"}]},
        "caps": {"order_total": "20%", "member_month": "150", "budget": "5000"}, "rounding": "down",
        "promotions": [{"grant": "gold", "when": {"referred_buyers": 2}},
                       {"grant": "distributor", "when": {"own_spend": "200"}}],
        "rank_bonus": {"gold": {"fixed": "3"}},
        "checks": {"refund_rate": {"min_orders": 2, "max_share": "40%", "action": "flag"}},
        "settlement": {"hold_days": 1}, "binding": {"mode": "protected", "protection_days": 2}})",
    R"({"levels": [{"rate": "20%"}], "by_category": {"course": {"levels": [{"fixed": "20"}],
        "leader": {"fixed": "10", "max_depth": 3}}},
        "invite_rewards": {"steps": [{"at": 2, "reward": "5"}, {"at": 4, "reward": "8"}],
                           "valid": {"same_region": true}, "max_rewards": 6},
        "checks": {"velocity": {"max_invites": 3, "window_hours": 2, "action": "deny"}},
        "caps": {"member_month": "100"}})",
};

// A random but reproducible stream of JSON events, some of them bad.
std::vector<std::string> RandomStream(std::mt19937_64& random, int events) {
  std::vector<std::string> out;
  int members = 0, orders = 0;
  int64_t t = 1'772'326'800;  // 2026-03-01T09:00:00+08:00
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint64_t>(n)); };
  auto at = [&] {
    t += pick(4) == 0 ? 0 : pick(20000);
    return absl::StrCat(R"("at":")",
                        FormatTimestamp(absl::FromUnixSeconds(t), absl::FixedTimeZone(8 * 3600)),
                        "\"");
  };
  const char* roles[] = {"leader", "silver", "gold", "distributor"};
  for (int i = 0; i < events; ++i) {
    const int kind = members < 3 ? 0 : pick(20);
    if (kind <= 4) {
      std::string e = absl::StrCat(R"({"type":"join","member":"m)", members, "\"");
      if (members > 0 && pick(8) != 0) absl::StrAppend(&e, R"(,"inviter":"m)", pick(members), "\"");
      if (pick(3) == 0) absl::StrAppend(&e, R"(,"phone":"p)", pick(5), "\"");
      absl::StrAppend(&e, R"(,"region":"r)", pick(2), "\",", at(), "}");
      out.push_back(e);
      ++members;
    } else if (kind <= 6) {
      out.push_back(absl::StrCat(R"({"type":")", pick(4) == 0 ? "unset_role" : "set_role",
                                 R"(","member":"m)", pick(members), R"(","role":")", roles[pick(4)],
                                 "\",", at(), "}"));
    } else if (kind == 7) {
      out.push_back(absl::StrCat(R"({"type":"rebind","member":"m)", pick(members),
                                 R"(","inviter":"m)", pick(members), "\",", at(), "}"));
    } else if (kind <= 13) {
      out.push_back(absl::StrCat(R"({"type":"order","id":"o)", orders, R"(","buyer":"m)",
                                 pick(members), R"(","amount":")", 1 + pick(90000) / 100, ".",
                                 10 + pick(90), "\"", pick(3) == 0 ? R"(,"category":"course")" : "",
                                 ",", at(), "}"));
      ++orders;
    } else if (kind <= 15 && orders > 0) {
      out.push_back(
          absl::StrCat(R"({"type":"confirm","order":"o)", pick(orders), "\",", at(), "}"));
    } else if (kind <= 17 && orders > 0) {
      const std::string amount =
          pick(2) == 0 ? "" : absl::StrCat(R"(,"amount":")", 1 + pick(300), "\"");
      out.push_back(absl::StrCat(R"({"type":"refund","order":"o)", pick(orders), "\"", amount, ",",
                                 at(), "}"));
    } else if (kind == 18) {
      // Deliberately bad: unknown ids, out of order, malformed amounts.
      const char* bad[] = {
          R"({"type":"order","id":"x","buyer":"nobody","amount":"5","at":"2026-03-01T09:00:00+08:00"})",
          R"({"type":"order","id":"o0","buyer":"m0","amount":"5","at":"2030-01-01T00:00:00+08:00"})",
          R"({"type":"refund","order":"o0","amount":"0.001","at":"2030-01-01T00:00:00+08:00"})",
          R"({"type":"join","member":"m0","at":"2030-01-01T00:00:00+08:00"})"};
      out.push_back(bad[pick(4)]);
    }
  }
  return out;
}

std::string Fingerprint(const Engine& engine, absl::Time as_of) {
  const std::vector<LedgerRow> rows = *engine.Ledger(as_of);
  std::string out =
      absl::StrCat(engine.member_count(), "/", engine.order_count(), "/", engine.Flags().size());
  for (const LedgerRow& row : rows) {
    absl::StrAppend(&out, "|", row.order.value_or("-"), row.member, row.kind, row.amount.ToString(),
                    EntryStatusName(row.status), row.explanation);
  }
  return out;
}

// Sum of entry nets per order, in fen.
std::map<std::string, int64_t> PerOrder(const Engine& engine, absl::Time as_of) {
  std::map<std::string, int64_t> sums;
  const std::vector<NetRow> rows = *engine.NetLedger(as_of);
  for (const NetRow& row : rows) {
    if (row.order) sums[*row.order] += row.amount.fen();
  }
  return sums;
}

int Streams() {
  const char* env = std::getenv("REFPAY_STREAMS");
  return env != nullptr ? std::atoi(env) : 150;
}

TEST(InvariantsTest, RandomStreamsKeepTheLedgerSound) {
  std::mt19937_64 random(20261124);
  const absl::Time far = *ParseTimestamp("2031-01-01T00:00:00+08:00");
  int checked = 0;
  int64_t applied = 0, rejected = 0, entries = 0;
  for (int stream = 0; stream < Streams(); ++stream) {
    const char* policy_json = kPolicies[stream % std::size(kPolicies)];
    const Policy policy = *Policy::FromJson(policy_json);
    const std::vector<std::string> events =
        RandomStream(random, 60 + static_cast<int>(random() % 120));
    Engine engine(policy);
    std::map<std::string, int64_t> order_amount, refunded;
    for (const std::string& event : events) {
      const std::string before = Fingerprint(engine, far);
      const std::map<std::string, int64_t> sums_before = PerOrder(engine, far);
      const absl::Status status = engine.ApplyJson(event);
      ++(status.ok() ? applied : rejected);
      if (!status.ok()) {
        ASSERT_FALSE(ErrorCodeOf(status).empty()) << status;
        ASSERT_EQ(Fingerprint(engine, far), before) << "rejected event changed state: " << event;
        continue;
      }
      const absl::StatusOr<Event> parsed = ParseEventJson(event);
      ASSERT_THAT(parsed, IsOk());
      if (parsed->type == EventType::kOrder) order_amount[parsed->order] = parsed->amount->fen();
      if (parsed->type == EventType::kRefund) {
        refunded[parsed->order] += parsed->amount
                                       ? parsed->amount->fen()
                                       : order_amount[parsed->order] - refunded[parsed->order];
        // A refund never raises what an order pays.
        const std::map<std::string, int64_t> sums_after = PerOrder(engine, far);
        const auto it = sums_after.find(parsed->order);
        const int64_t after = it == sums_after.end() ? 0 : it->second;
        const auto was = sums_before.find(parsed->order);
        ASSERT_LE(after, was == sums_before.end() ? 0 : was->second) << event;
      }
    }
    const std::map<std::string, int64_t> per_order = PerOrder(engine, far);
    for (const auto& [order, paid] : per_order) {
      const int64_t base = order_amount[order] - refunded[order];
      ASSERT_GE(paid, 0) << order;
      if (base == 0) {
        ASSERT_EQ(paid, 0) << "fully refunded " << order << " still pays";
      }
      if (policy.cap_order_total) {
        ASSERT_LE(
            paid,
            ApplyRate(Money::FromFen(base), *policy.cap_order_total, RoundingMode::kDown).fen())
            << "order_total exceeded on " << order;
      }
    }
    // Balances, totals and the net ledger agree; the budget holds.
    int64_t net = 0, balances = 0, totals = 0;
    const std::vector<NetRow> net_rows = *engine.NetLedger(far);
    const std::vector<BalanceRow> balance_rows = *engine.Balances(far);
    for (const NetRow& row : net_rows) net += row.amount.fen();
    for (const BalanceRow& row : balance_rows) balances += row.amount.fen();
    const MemberTotals t = *engine.Totals(far);
    for (size_t m = 0; m < t.pending.size(); ++m)
      totals += t.pending[m] + t.frozen[m] + t.available[m] + t.held[m];
    ASSERT_EQ(net, balances);
    ASSERT_EQ(net, totals);
    if (policy.cap_budget) {
      ASSERT_LE(net, policy.cap_budget->fen());
    }
    // Same events, same output, byte for byte.
    Engine replay(policy);
    for (const std::string& event : events) (void)replay.ApplyJson(event);
    ASSERT_EQ(Fingerprint(replay, far), Fingerprint(engine, far));
    // A snapshot at any point, restored, then the remaining events: exactly
    // the uninterrupted run, down to the snapshot bytes.
    const size_t cut = random() % (events.size() + 1);
    Engine first_half(policy);
    for (size_t i = 0; i < cut; ++i) (void)first_half.ApplyJson(events[i]);
    absl::StatusOr<Engine> resumed = Engine::Restore(first_half.Snapshot());
    ASSERT_THAT(resumed, IsOk());
    for (size_t i = cut; i < events.size(); ++i) (void)resumed->ApplyJson(events[i]);
    ASSERT_EQ(Fingerprint(*resumed, far), Fingerprint(engine, far)) << "cut at " << cut;
    ASSERT_EQ(resumed->Snapshot(), engine.Snapshot());
    entries += static_cast<int64_t>(net_rows.size());
    ++checked;
  }
  EXPECT_EQ(checked, Streams());
  // The streams must exercise the engine, not just its error paths.
  EXPECT_GT(applied, 4 * rejected);
  EXPECT_GT(entries, 20 * Streams());
  std::cout << "streams " << checked << ", events applied " << applied << ", rejected " << rejected
            << ", ledger rows " << entries << "\n";
}

}  // namespace
}  // namespace refpay

namespace refpay {
namespace {

TEST(SnapshotTest, CorruptTruncatedOrForeignSnapshotsAreClearErrors) {
  std::mt19937_64 random(99);
  Engine engine(*Policy::FromJson(kPolicies[3]));
  for (const std::string& event : RandomStream(random, 150)) (void)engine.ApplyJson(event);
  const std::string snapshot = engine.Snapshot();
  ASSERT_THAT(Engine::Restore(snapshot), IsOk());
  EXPECT_THAT(Engine::Restore(""), ::refpay::testing::HasReason("bad_snapshot"));
  EXPECT_THAT(Engine::Restore("not a snapshot at all"), ::refpay::testing::HasReason("bad_snapshot"));
  for (size_t cut : {size_t{9}, size_t{24}, snapshot.size() / 2, snapshot.size() - 1}) {
    EXPECT_THAT(Engine::Restore(snapshot.substr(0, cut)), ::refpay::testing::HasReason("bad_snapshot"));
  }
  for (int i = 0; i < 200; ++i) {
    std::string flipped = snapshot;
    const size_t at = 8 + random() % (flipped.size() - 8);
    flipped[at] = static_cast<char>(flipped[at] ^ (1 + random() % 255));
    const absl::StatusOr<Engine> restored = Engine::Restore(flipped);
    ASSERT_FALSE(restored.ok()) << "flipped byte " << at;
    const std::string reason = ErrorCodeOf(restored.status());
    EXPECT_TRUE(reason == "bad_snapshot" || reason == "snapshot_version") << reason;
  }
  std::string future = snapshot;
  future[8] = 2;  // format version 2
  EXPECT_THAT(Engine::Restore(future), ::refpay::testing::HasReason("snapshot_version"));
}

}  // namespace
}  // namespace refpay
