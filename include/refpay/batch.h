// refpay/batch.h — settle whole tables at once (the analyst's path).
//
// Instead of one event at a time, a batch gives members and orders as
// columns: numbers in flat arrays (amounts in fen, times in Unix
// microseconds, members referred to by row), strings only where they are
// strings. Rows are merged into one time-ordered event stream (members
// before orders at the same instant, confirms and refunds at their own
// times) and run through the same Engine, so a batch and the equivalent
// events give the same ledger.
//
//   refpay::BatchMembers members;
//   members.ids = {"A", "B"};
//   members.inviter = {-1, 0};
//   members.joined_at = {t0, t0};
//   refpay::BatchOrders orders;
//   orders.ids = {"o1"}; orders.buyer = {1}; orders.amount = {10000};
//   orders.at = {t1};
//   absl::StatusOr<refpay::BatchResult> result =
//       refpay::SettleBatch(*std::move(policy), members, orders);
//   result->engine.Totals(as_of);   // dense per-member sums, join order
//
// When only the totals are wanted, SettleTotals gives them by member row,
// by a columnar kernel where the policy allows (no ledger is built):
//
//   absl::StatusOr<refpay::BatchTotals> totals =
//       refpay::SettleTotals(policy, members, orders, as_of);
//   totals->by_row.available[1];   // member row 1's available fen
//   totals->engine_reason;         // "" if the kernel settled
//
// SettleLedger is the same kernel writing the full ledger as columns (what
// Engine::LedgerTable gives, with batch rows for members and orders) and
// the flags:
//
//   absl::StatusOr<refpay::BatchLedger> ledger =
//       refpay::SettleLedger(policy, members, orders, as_of);
//   ledger->ledger.amount[0];        // the first entry's fen
//   ledger->ledger.member[0];        // ... paid to this member row
#ifndef REFPAY_BATCH_H_
#define REFPAY_BATCH_H_

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "refpay/engine.h"
#include "refpay/policy.h"

namespace refpay {

// refpay::kNoTime marks an absent time in a batch column.
inline constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();

// refpay::BatchMembers is the member table. Optional string columns may be
// left empty (then every member has ""); otherwise they have one value per
// row. Ids come as strings (`ids`), as integers (`int_ids`: each stands for
// its decimal string, "-7" for -7, so results are the same as for those
// strings; checking integers spares building and hashing strings), or not
// at all (each row's id is then its row number).
struct BatchMembers {
  std::vector<std::string> ids;
  std::vector<int64_t> int_ids;                             // instead of ids
  std::vector<int32_t> inviter;                             // row of the inviter, -1 for none
  std::vector<int64_t> joined_at;                           // Unix microseconds
  std::vector<std::string> role;                            // optional; "" = none
  std::vector<std::string> rank;                            // optional, with role
  std::vector<std::string> region, device, phone, payment;  // optional
};

// refpay::BatchOrders is the order table; each row may carry its
// confirmation and one refund. Ids as for BatchMembers.
struct BatchOrders {
  std::vector<std::string> ids;
  std::vector<int64_t> int_ids;        // instead of ids
  std::vector<int32_t> buyer;          // row in BatchMembers
  std::vector<int64_t> amount;         // fen
  std::vector<int64_t> at;             // Unix microseconds
  std::vector<std::string> category;   // optional
  std::vector<int64_t> confirmed_at;   // optional; kNoTime = not confirmed
  std::vector<int64_t> refund_amount;  // optional fen; 0 = no refund
  std::vector<int64_t> refunded_at;    // with refund_amount
};

// refpay::TextColumn is a column of strings as the batch functions read it,
// without owning it: std::strings (a std::vector<std::string> converts
// implicitly), or the two buffers of an Arrow large_string array, so that
// text from Arrow or pandas is read where it is instead of being rebuilt as
// ten million std::strings.
//
//   refpay::TextColumn roles = members.role;  // a std::vector<std::string>
//   absl::StatusOr<refpay::TextColumn> arrow =
//       refpay::TextColumn::FromOffsets(offsets, data);  // n + 1 offsets
//   (*arrow)[0];  // std::string_view
class TextColumn {
 public:
  TextColumn() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): strings are a column
  TextColumn(absl::Span<const std::string> strings)
      : strings_(strings.data()), size_(strings.size()) {}
  // NOLINTNEXTLINE(google-explicit-constructor): strings are a column
  TextColumn(const std::vector<std::string>& strings) : TextColumn(absl::MakeConstSpan(strings)) {}

  // refpay::TextColumn::FromOffsets() views `offsets.size() - 1` strings,
  // string i being data[offsets[i], offsets[i + 1]) (Arrow's large_string
  // layout; both buffers must outlive the column). InvalidArgument
  // (bad_batch) if there is no offset, or the offsets decrease ("offsets
  // decrease at row 7") or point outside `data`.
  static absl::StatusOr<TextColumn> FromOffsets(absl::Span<const int64_t> offsets,
                                                std::string_view data);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::string_view operator[](size_t row) const {
    if (offsets_ == nullptr) return strings_[row];
    return {data_ + offsets_[row], static_cast<size_t>(offsets_[row + 1] - offsets_[row])};
  }

 private:
  const std::string* strings_ = nullptr;  // std::strings, unless offsets_ is set
  const int64_t* offsets_ = nullptr;      // Arrow layout: size_ + 1 offsets into data_
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// refpay::BatchMembersView is the member table as the batch functions read
// it, without owning it: each column a span (text a TextColumn) over memory
// the caller keeps alive for the call (a BatchMembers, numpy arrays, Arrow
// buffers, a mapped file). A BatchMembers converts to one implicitly, so
// columns that live elsewhere are settled where they are, without a copy:
//
//   refpay::BatchMembersView view;
//   view.inviter = absl::MakeConstSpan(inviter_rows, n);  // caller's memory
//   view.joined_at = absl::MakeConstSpan(join_micros, n);
struct BatchMembersView {
  BatchMembersView() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): a table is a view of itself
  BatchMembersView(const BatchMembers& members)
      : ids(members.ids),
        int_ids(members.int_ids),
        inviter(members.inviter),
        joined_at(members.joined_at),
        role(members.role),
        rank(members.rank),
        region(members.region),
        device(members.device),
        phone(members.phone),
        payment(members.payment) {}

  TextColumn ids;
  absl::Span<const int64_t> int_ids;
  absl::Span<const int32_t> inviter;
  absl::Span<const int64_t> joined_at;
  TextColumn role, rank, region, device, phone, payment;
};

// refpay::BatchOrdersView is the order table as read, as BatchMembersView.
struct BatchOrdersView {
  BatchOrdersView() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): a table is a view of itself
  BatchOrdersView(const BatchOrders& orders)
      : ids(orders.ids),
        int_ids(orders.int_ids),
        buyer(orders.buyer),
        amount(orders.amount),
        at(orders.at),
        category(orders.category),
        confirmed_at(orders.confirmed_at),
        refund_amount(orders.refund_amount),
        refunded_at(orders.refunded_at) {}

  TextColumn ids;
  absl::Span<const int64_t> int_ids;
  absl::Span<const int32_t> buyer;
  absl::Span<const int64_t> amount;
  absl::Span<const int64_t> at;
  TextColumn category;
  absl::Span<const int64_t> confirmed_at;
  absl::Span<const int64_t> refund_amount;
  absl::Span<const int64_t> refunded_at;
};

// refpay::BatchError is a rejected row: which table, which row, why.
struct BatchError {
  std::string table;  // "members" or "orders"
  int64_t row = 0;    // 0-based
  std::string code;
  std::string message;
};

// refpay::BatchResult is the settled engine and the rows it rejected.
struct BatchResult {
  Engine engine;
  std::vector<BatchError> errors;
};

// refpay::SettleBatch() validates column lengths (InvalidArgument naming the
// column), then applies every row. Rejected rows are reported, never
// half-applied.
absl::StatusOr<BatchResult> SettleBatch(Policy policy, const BatchMembersView& members,
                                        const BatchOrdersView& orders);

// refpay::BatchTotals is what SettleTotals computed.
struct BatchTotals {
  // Each member row's sums per status at `as_of`, indexed by member row
  // (not join order); a row that did not join has zeros.
  MemberTotals by_row;
  std::vector<BatchError> errors;
  // Why the engine settled the batch rather than the columnar kernel, ""
  // when the kernel did ("the policy has promotions", "order row 7 would be
  // rejected"). The totals are the same either way; this says what it cost.
  std::string engine_reason;
};

// refpay::SettleTotals() is SettleBatch followed by Engine::Totals(as_of),
// by member row, for callers who want only the totals (simulations, policy
// sweeps). Under a policy whose entries depend only on the order and the
// tree (levels without by_rank, tiers, fixed amounts, a nearest leader with
// include_self or max_depth, caps.order_total, hold_days, self_purchase;
// shared_identity only without identity columns; roles "leader" or none), a batch whose
// every row the engine would accept is settled by a columnar kernel: one
// pass over the orders, no ledger, no string id lookups. Anything else is
// settled by the engine, with the same results and errors as SettleBatch.
// Column errors as SettleBatch; bad_as_of if `as_of` precedes the last
// event.
absl::StatusOr<BatchTotals> SettleTotals(const Policy& policy, const BatchMembersView& members,
                                         const BatchOrdersView& orders, absl::Time as_of);

// refpay::BatchFlag is a Flag with batch rows for its member and order.
struct BatchFlag {
  std::string check;
  int32_t member = -1;  // row in BatchMembers
  int32_t order = -1;   // row in BatchOrders, -1 for none
  friend bool operator==(const BatchFlag&, const BatchFlag&) = default;
};

// refpay::BatchLedger is what SettleLedger computed.
struct BatchLedger {
  // Engine::LedgerTable(as_of) of the settled batch, row for row (entries in
  // placement order, then clawbacks in refund order; kind codes as first
  // met), except that `order` and `member` are rows of the batch's tables.
  LedgerColumns ledger;
  MemberTotals by_row;  // as in BatchTotals
  // Engine::Flags() in batch rows: check hits and cap cuts, as they happened.
  std::vector<BatchFlag> flags;
  std::vector<BatchError> errors;
  std::string engine_reason;  // as in BatchTotals
};

// refpay::SettleLedger() is SettleBatch followed by Engine::LedgerTable,
// Engine::Totals at `as_of` and Engine::Flags, in batch rows, by the
// columnar kernel under the policies and batches SettleTotals settles by
// it, else by the engine. No explanations (Engine::Explain needs the
// engine: SettleBatch). Errors as SettleTotals.
absl::StatusOr<BatchLedger> SettleLedger(const Policy& policy, const BatchMembersView& members,
                                         const BatchOrdersView& orders, absl::Time as_of);

}  // namespace refpay

#endif  // REFPAY_BATCH_H_
