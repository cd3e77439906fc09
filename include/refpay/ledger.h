// refpay/ledger.h — what the engine pays: ledger rows, balances, flags.
//
// Every payout is a ledger entry (佣金明细) for one (order, member, kind).
// Its status at a given `as_of` time follows SPEC §4: pending (order not
// confirmed), frozen (inside the hold period), available (可提现) or held
// (stopped by a check). A refund after availability adds a negative
// adjustment (clawback, 追回) instead of shrinking the entry.
//
//   for (const refpay::LedgerRow& row : *engine.Ledger(as_of)) {
//     std::cout << row.order << " " << row.member << " " << row.kind << " "
//               << row.amount.ToString() << " "
//               << refpay::EntryStatusName(row.status) << "\n";
//   }
#ifndef REFPAY_LEDGER_H_
#define REFPAY_LEDGER_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "refpay/money.h"
#include "refpay/policy.h"

namespace refpay {

// refpay::EntryStatus is an entry's settlement state at an `as_of` time.
enum class EntryStatus { kPending, kFrozen, kAvailable, kHeld };

// refpay::EntryStatusName() is "pending", "frozen", "available" or "held".
const char* EntryStatusName(EntryStatus status);

// refpay::LedgerRow is one entry or clawback, with its explanation.
struct LedgerRow {
  std::optional<std::string> order;  // absent for invite rewards
  std::string member;
  std::string kind;  // "level1", "leader", "peer", "rank_bonus", "invite_reward"
  Money amount;      // this row's amount (negative for a clawback)
  EntryStatus status = EntryStatus::kPending;
  std::optional<Action> action;  // the strongest check that hit it, if any
  bool clawback = false;
  absl::Time at;            // when the entry (or clawback) was recorded
  std::string explanation;  // the rule and its arithmetic, caps, checks, refunds
};

// refpay::NetRow is the net amount of one (order, member, kind, status), the
// SPEC §8 ledger shape; rows whose net is 0.00 are left out.
struct NetRow {
  std::optional<std::string> order;
  std::string member;
  std::string kind;
  Money amount;
  EntryStatus status = EntryStatus::kPending;
};

// refpay::BalanceRow is what one member has in one status (non-zero only).
struct BalanceRow {
  std::string member;
  EntryStatus status = EntryStatus::kPending;
  Money amount;
};

// refpay::Flag reports a check hit or a cap cut: {check, member, order?}.
// `check` is a check name (shared_identity, split_orders, velocity,
// refund_rate), a cap (cap_order, cap_member, budget_exhausted) or
// invalid_invite. A check hit is reported once per distinct (check, member,
// order); a cap flag once per entry the cap cut (SPEC §3.5), so one member
// whose two entries on an order were cut has two.
struct Flag {
  std::string check;
  std::string member;
  std::optional<std::string> order;
  friend bool operator==(const Flag&, const Flag&) = default;
};

}  // namespace refpay

#endif  // REFPAY_LEDGER_H_
