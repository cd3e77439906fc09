// The engine harness: fuzz bytes become a stream of events (members, orders
// and role names from small pools so that references collide often, times
// mostly moving forward) applied under one of a few fixed policies.
// Checked after every event: a rejection carries a reason and leaves
// Snapshot() unchanged; every few events Restore(Snapshot()) round-trips;
// halfway, a restored copy must then follow the original event for event;
// at the end the ledger, balances and totals agree.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "harness.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/money.h"
#include "refpay/policy.h"
#include "refpay/status.h"

namespace refpay::fuzz {
namespace {

constexpr const char* kPolicies[] = {
    // Two fixed levels, nearest leader with peer, order cap, hold, protected binding.
    R"({"levels": [{"fixed": "20.00"}, {"fixed": "5"}], "leader": {"fixed": "10", "peer": {"rate": "10%"}},
        "caps": {"order_total": "30%"}, "settlement": {"hold_days": 1},
        "binding": {"mode": "protected", "protection_days": 2}})",
    // Tiers (whole and marginal), differential ranks, self purchase, compressed eligibility.
    R"({"levels": [{"tiers": [{"below": "300", "rate": "4%"}, {"from": "300", "below": "500", "rate": "5%"},
                              {"from": "500", "fixed": "40"}]},
                   {"tiers": [{"upto": "100", "rate": "1%"}, {"above": "100", "rate": "2.5%"}], "mode": "marginal"}],
        "self_purchase": true, "eligible": {"role": "distributor", "compress": true},
        "leader": {"scheme": "differential", "max_depth": 6, "include_self": true, "peer": {"rate": "5%"},
                   "ranks": [{"name": "silver", "rate": "2%"}, {"name": "gold", "rate": "4%"}]},
        "rounding": "half_even", "binding": {"mode": "free"}})",
    // Checks, promotions, rank bonus, invite rewards, monthly and budget caps.
    R"({"levels": [{"rate": "7.5%", "by_rank": {"gold": {"rate": "9%"}}}, {"rate": "2.5%"}],
        "promotions": [{"grant": "gold", "when": {"referred_buyers": 2, "window_days": 30}},
                       {"grant": "super", "when": {"own_spend": "200"}}],
        "rank_bonus": {"super": {"fixed": "3"}},
        "invite_rewards": {"steps": [{"at": 1, "reward": "1"}, {"at": 3, "reward": "5"}],
                           "valid": {"same_region": true}, "max_rewards": 4},
        "checks": {"shared_identity": "deny", "split_orders": {"max_orders": 2, "window_minutes": 30},
                   "velocity": {"max_invites": 2, "window_hours": 2, "action": "flag"},
                   "refund_rate": {"min_orders": 2, "max_share": "40%", "action": "hold"}},
        "caps": {"member_month": "150", "budget": "500"}, "rounding": "down",
        "timezone": "America/New_York", "binding": {"mode": "free"}})",
    // Categories overriding levels and leader, huge fixed amounts near the int64 edge.
    R"({"levels": [{"rate": "100%"}], "leader": {"rate": "100%", "max_depth": 2},
        "by_category": {"course": {"levels": [{"fixed": "92233720368547758.07"}],
                                   "leader": {"fixed": "10", "include_self": true}},
                        "book": {"levels": [{"rate": "0.0001%"}, {"rate": "99.9999%"}]}},
        "settlement": {"hold_days": 3}})",
};

// Reads the fuzz input a byte at a time; past the end it yields zeros.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t Bits(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | Byte();
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

const std::vector<Policy>& Policies() {
  static const std::vector<Policy>* const policies = [] {
    auto* out = new std::vector<Policy>;
    for (const char* text : kPolicies) {
      absl::StatusOr<Policy> policy = Policy::FromJson(text);
      if (!policy.ok()) Fail("engine", policy.status().ToString());
      out->push_back(*std::move(policy));
    }
    return out;
  }();
  return *policies;
}

std::string Member(uint8_t b) { return absl::StrCat("m", b % 12); }

Money Amount(Bytes& in) {
  static constexpr int64_t kTable[] = {0,      -100,   1,       99,     100,     9999,
                                       10000,  25050,  29999,   30000,  50000,   123456,
                                       999999, 10'000, 500'000, 49'999, 100'000, 1};
  const uint8_t kind = in.Byte();
  switch (kind % 5) {
    case 0:
    case 1:
      return Money::FromFen(kTable[in.Byte() % std::size(kTable)]);
    case 2:
      return Money::FromFen(static_cast<int64_t>(in.Bits(2)));
    case 3:
      return Money::FromFen(static_cast<int64_t>(in.Bits(4)));
    default:  // near the int64 edge, either sign
      return Money::FromFen(kind & 0x80 ? std::numeric_limits<int64_t>::min() + in.Byte()
                                        : std::numeric_limits<int64_t>::max() - in.Byte());
  }
}

// One event from the stream; `t` is the running clock.
Event NextEvent(Bytes& in, absl::Time* t, bool* via_json) {
  const uint8_t op = in.Byte();
  *via_json = (op & 0x80) != 0;
  const uint8_t step = in.Byte();
  switch (step % 8) {
    case 0:
    case 1:
      break;  // same instant
    case 2:
    case 3:
      *t += absl::Minutes(step);
      break;
    case 4:
    case 5:
      *t += absl::Hours(step);
      break;
    case 6:
      *t += absl::Hours(24 * (step % 40));
      break;
    default:
      *t -= absl::Minutes(step);  // out of order
  }
  static constexpr const char* kRoles[] = {"leader",      "silver", "gold",
                                           "distributor", "super",  "vip"};
  static constexpr const char* kRegions[] = {"", "sh", "bj"};
  Event e;
  e.at = *t;
  if (op & 0x40) e.event_id = absl::StrCat("e", in.Byte() % 6);
  switch (op % 7) {
    case 0: {
      e.type = EventType::kJoin;
      e.member = Member(in.Byte());
      const uint8_t inviter = in.Byte();
      if (inviter % 13 != 12) e.inviter = Member(inviter);
      const uint8_t id = in.Byte();
      e.identity.region = kRegions[id % 3];
      e.identity.device = kRegions[(id >> 2) % 3];
      e.identity.phone = kRegions[(id >> 4) % 3];
      break;
    }
    case 1:
      e.type = EventType::kRebind;
      e.member = Member(in.Byte());
      e.inviter = Member(in.Byte());
      break;
    case 2:
    case 3: {
      e.type = op % 7 == 2 ? EventType::kSetRole : EventType::kUnsetRole;
      e.member = Member(in.Byte());
      const uint8_t role = in.Byte();
      e.role = kRoles[role % std::size(kRoles)];
      if (e.type == EventType::kSetRole && (role & 0x80)) {
        e.rank = kRoles[(role >> 3) % std::size(kRoles)];
      }
      break;
    }
    case 4: {
      e.type = EventType::kOrder;
      e.order = absl::StrCat("o", in.Byte() % 10);
      e.buyer = Member(in.Byte());
      e.amount = Amount(in);
      const uint8_t category = in.Byte() % 4;
      if (category == 1) e.category = "course";
      if (category == 2) e.category = "book";
      break;
    }
    case 5:
      e.type = EventType::kConfirm;
      e.order = absl::StrCat("o", in.Byte() % 10);
      break;
    default:
      e.type = EventType::kRefund;
      e.order = absl::StrCat("o", in.Byte() % 10);
      if (in.Byte() % 2) e.amount = Amount(in);
      break;
  }
  return e;
}

absl::Status ApplyOne(Engine& engine, const Event& e, bool via_json) {
  return via_json ? engine.ApplyJson(EventToJson(e)) : engine.Apply(e);
}

absl::Status ApplyChecked(Engine& engine, const Event& e, bool via_json) {
  const std::string before = engine.Snapshot();
  absl::Status status = ApplyOne(engine, e, via_json);
  if (!status.ok()) {
    REFPAY_FUZZ_CHECK(!ErrorCodeOf(status).empty(), "engine", status.ToString());
    REFPAY_FUZZ_CHECK(
        engine.Snapshot() == before, "engine",
        absl::StrCat("rejected ", EventToJson(e), " changed the engine: ", status.ToString()));
  }
  return status;
}

Engine RestoredCopy(const Engine& engine) {
  const std::string snapshot = engine.Snapshot();
  absl::StatusOr<Engine> restored = Engine::Restore(snapshot);
  REFPAY_FUZZ_CHECK(restored.ok(), "engine", restored.status().ToString());
  REFPAY_FUZZ_CHECK(restored->Snapshot() == snapshot, "engine", "Restore(Snapshot()) differs");
  return *std::move(restored);
}

// The ledger, balances and totals at `as_of` must add up to the same sums.
void CheckReads(const Engine& engine, absl::Time as_of) {
  absl::StatusOr<std::vector<NetRow>> net = engine.NetLedger(as_of);
  absl::StatusOr<std::vector<BalanceRow>> balances = engine.Balances(as_of);
  absl::StatusOr<MemberTotals> totals = engine.Totals(as_of);
  (void)engine.Ledger(as_of);
  (void)engine.LedgerTable(as_of);
  (void)engine.Flags();
  if (!net.ok() || !balances.ok() || !totals.ok()) {
    for (const absl::Status& s : {net.status(), balances.status(), totals.status()}) {
      REFPAY_FUZZ_CHECK(s.ok() || ErrorCodeOf(s) == "overflow", "engine", s.ToString());
    }
    return;
  }
  std::array<Int128, 4> from_net{}, from_balances{}, from_totals{};
  for (const NetRow& row : *net) from_net[static_cast<int>(row.status)] += row.amount.fen();
  for (const BalanceRow& row : *balances) {
    from_balances[static_cast<int>(row.status)] += row.amount.fen();
  }
  const std::vector<int64_t>* columns[] = {&totals->pending, &totals->frozen, &totals->available,
                                           &totals->held};
  for (int s = 0; s < 4; ++s) {
    for (int64_t v : *columns[s]) from_totals[s] += v;
    REFPAY_FUZZ_CHECK(from_net[s] == from_balances[s] && from_net[s] == from_totals[s], "engine",
                      absl::StrCat("sums differ for status ", s, ": ", from_net[s].str(), " ",
                                   from_balances[s].str(), " ", from_totals[s].str()));
  }
}

}  // namespace

int FuzzEngine(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const std::vector<Policy>& policies = Policies();
  const uint8_t head = in.Byte();
  Engine engine(policies[head % policies.size()]);
  const int split = 1 + (head >> 3);  // when to fork a restored copy
  std::optional<Engine> copy;
  absl::Time t = absl::FromUnixSeconds(1'772'326'800);
  constexpr int kMaxEvents = 160;
  for (int n = 0; n < kMaxEvents && !in.empty(); ++n) {
    bool via_json = false;
    const Event e = NextEvent(in, &t, &via_json);
    const absl::Status status = ApplyChecked(engine, e, via_json);
    if (copy) {
      const absl::Status copied = ApplyOne(*copy, e, via_json);
      REFPAY_FUZZ_CHECK(
          copied.code() == status.code() && ErrorCodeOf(copied) == ErrorCodeOf(status), "engine",
          absl::StrCat("restored copy diverged on ", EventToJson(e), ": ", status.ToString(),
                       " vs ", copied.ToString()));
    }
    if (n + 1 == split) copy.emplace(RestoredCopy(engine));
    if (n % 16 == 15) (void)RestoredCopy(engine);
  }
  if (copy) {
    REFPAY_FUZZ_CHECK(copy->Snapshot() == engine.Snapshot(), "engine",
                      "a restored copy ended in another state");
  }
  if (std::optional<absl::Time> last = engine.last_event_time()) {
    CheckReads(engine, *last);
    CheckReads(engine, *last + absl::Hours(24 * 5));
    REFPAY_FUZZ_CHECK(!engine.Balances(*last - absl::Seconds(1)).ok(), "engine",
                      "as_of before the last event was accepted");
  }
  return 0;
}

}  // namespace refpay::fuzz
