// refpay/engine.h — the commission engine: events in, ledger out.
//
// An Engine owns one validated Policy and the state of one run: the member
// tree, roles, orders, ledger, cap room and check state. Events are applied
// one at a time in non-decreasing time; each returns OK or an error whose
// reason (refpay::ErrorCodeOf) is a SPEC §2 code. A rejected event changes
// nothing. Reads take an `as_of` time that decides entry statuses.
//
//   absl::StatusOr<refpay::Policy> policy = refpay::Policy::FromFile("p.toml");
//   refpay::Engine engine(*std::move(policy));
//   for (const std::string& line : lines) {
//     absl::Status s = engine.ApplyJson(line);
//     if (!s.ok()) std::cerr << refpay::ErrorCodeOf(s) << ": " << s.message();
//   }
//   auto balances = engine.Balances(*refpay::ParseTimestamp(
//       "2026-04-01T00:00:00+08:00"));
//
// Output is deterministic: the same events always give the same rows in the
// same order. An Engine is movable, not copyable, and not thread-safe.
#ifndef REFPAY_ENGINE_H_
#define REFPAY_ENGINE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "refpay/event.h"
#include "refpay/ledger.h"
#include "refpay/policy.h"

namespace refpay {

namespace internal {
struct EngineAccess;  // SettleBatch's way in (src/batch_steps.h)
}  // namespace internal

// refpay::MemberTotals holds dense per-member sums in fen at an `as_of`
// time, indexed like Engine::member_ids() (join order).
struct MemberTotals {
  std::vector<int64_t> pending, frozen, available, held;
};

// refpay::LedgerColumns is the whole ledger as parallel columns, one row
// per entry or clawback, for DataFrames and analysis without strings per
// row. Indices refer to Engine::member_ids() and Engine::order_ids();
// `kind` is "level1"… as in LedgerRow, stored once per distinct value in
// `kind_names`.
struct LedgerColumns {
  std::vector<int32_t> order;  // -1 for invite rewards
  std::vector<int32_t> member;
  std::vector<uint8_t> kind;         // index into kind_names
  std::vector<int64_t> amount;       // fen; negative for a clawback
  std::vector<int64_t> rule_amount;  // fen the rule gave before checks and caps
  std::vector<uint8_t> status;       // EntryStatus
  std::vector<uint8_t> action;       // 0 none, else Action
  std::vector<uint8_t> clawback;     // 1 for a clawback row
  std::vector<std::string> kind_names;
};

class Engine {
 public:
  // refpay::Engine::Engine() starts an empty run under `policy`.
  explicit Engine(Policy policy);
  ~Engine();
  Engine(Engine&& other) noexcept;
  Engine& operator=(Engine&& other) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // refpay::Engine::Apply() applies one event, or rejects it and changes
  // nothing. Reasons: duplicate_event, conflicting_event, out_of_order,
  // duplicate_member, unknown_member, rebind_forbidden, cycle,
  // duplicate_order, bad_amount, unknown_order, over_refund, overflow.
  absl::Status Apply(const Event& event);

  // refpay::Engine::Reserve() makes room for `members` more members and
  // `orders` more orders (their ledger sized for the default rule set's
  // levels and leader), and on Linux faults that memory in now. Until the
  // room is used, the event path then neither grows an array (a copy of
  // all of it) nor takes a page fault: a backend that knows its volume
  // calls it at start-up. The memory is taken up front: about 95 bytes per
  // member and 250 per order under the standard policy
  // (docs/performance.md). InvalidArgument (bad_value) for a negative
  // count or totals past 2147483647, and ResourceExhausted (out_of_memory)
  // when the memory cannot be had; the engine's contents do not change
  // either way.
  absl::Status Reserve(int64_t members, int64_t orders);

  // refpay::Engine::ApplyJson() parses one SPEC §2 JSON object and applies
  // it; parse errors (bad_event, bad_time, bad_amount) change nothing. A
  // re-delivered `event_id` is recognised even when the copy is malformed.
  absl::Status ApplyJson(std::string_view json);

  // refpay::Engine::Ledger() lists every entry and clawback with its status
  // at `as_of` and its explanation, in application order. Fails if `as_of`
  // precedes the last applied event.
  absl::StatusOr<std::vector<LedgerRow>> Ledger(absl::Time as_of) const;

  // refpay::Engine::NetLedger() is the SPEC §8 view: net per (order, member,
  // kind, status), zero rows left out, sorted by order (application order,
  // invite rewards last), member, kind and status.
  absl::StatusOr<std::vector<NetRow>> NetLedger(absl::Time as_of) const;

  // refpay::Engine::Balances() sums each member's entries per status;
  // members sorted by id, statuses in SPEC order, zero sums left out.
  absl::StatusOr<std::vector<BalanceRow>> Balances(absl::Time as_of) const;

  // refpay::Engine::Totals() sums every member's entries per status, as
  // dense columns (the fast path for simulations).
  absl::StatusOr<MemberTotals> Totals(absl::Time as_of) const;

  // refpay::Engine::LedgerTable() is Ledger() as columns, without
  // explanations.
  absl::StatusOr<LedgerColumns> LedgerTable(absl::Time as_of) const;

  // refpay::Engine::member_ids() / order_ids() are the ids in join and
  // placement order: the meaning of the dense indices above.
  absl::Span<const std::string> member_ids() const;
  absl::Span<const std::string> order_ids() const;

  // refpay::Engine::Flags() lists check hits and cap cuts in the order they
  // happened.
  std::vector<Flag> Flags() const;

  // refpay::Engine::Explain() explains every entry of an order, one line
  // each; NotFound (unknown_order) for an unknown id.
  absl::StatusOr<std::vector<std::string>> Explain(std::string_view order_id) const;

  // refpay::Engine::Snapshot() serializes the whole state of the run (the
  // policy, tree, roles, orders, ledger, cap room, check state and applied
  // event ids) to bytes: an 8-byte magic "REFPAYSN", a format version, the
  // payload length, the payload and its CRC-32. The same state always gives
  // the same bytes.
  std::string Snapshot() const;

  // refpay::Engine::Restore() rebuilds an engine from Snapshot() bytes; the
  // restored engine continues exactly as the original would. A corrupt or
  // truncated snapshot fails with reason bad_snapshot, one of another format
  // version with snapshot_version.
  static absl::StatusOr<Engine> Restore(std::string_view snapshot);

  // refpay::Engine::last_event_time() is the time of the last applied event.
  std::optional<absl::Time> last_event_time() const;

  // refpay::Engine::policy() is the policy the engine runs.
  const Policy& policy() const;

  // refpay::Engine::member_count() / order_count() count what was applied.
  int32_t member_count() const;
  int32_t order_count() const;

 private:
  friend struct internal::EngineAccess;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace refpay

#endif  // REFPAY_ENGINE_H_
