// Internal: how SettleBatch hands its merged rows to the engine. The engine
// applies each step straight from the columns, with dense row indices and
// the same checks, messages and order as the equivalent events, but
// without building an Event or looking up string ids per row.
#ifndef REFPAY_SRC_BATCH_STEPS_H_
#define REFPAY_SRC_BATCH_STEPS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "refpay/batch.h"
#include "refpay/engine.h"
#include "refpay/event.h"

namespace refpay::internal {

// One row of a batch as an event: a join (with the member's role, if any),
// an order, a confirmation or a refund, at its time.
struct BatchStep {
  int64_t at;  // Unix microseconds
  int32_t row;
  EventType type;  // kJoin, kOrder, kConfirm or kRefund
};

// Where a batch's rows went in the engine: each member row's member index
// and each order row's order index, -1 for a row that was rejected.
struct BatchRowMap {
  std::vector<int32_t> member_of_row;
  std::vector<int32_t> order_of_row;
};

// Applies `steps` (sorted by time) to `engine`, reading the rows they name
// from `members` and `orders` (whose columns SettleBatch validated), and
// appends every rejected row to `errors` and each row's engine index to
// `rows`.
void ApplyBatchSteps(Engine& engine, const std::vector<BatchStep>& steps,
                     const BatchMembersView& members, const BatchOrdersView& orders,
                     std::vector<BatchError>& errors, BatchRowMap& rows);

// The column checks of SettleBatch: every column has one value per row
// (optional ones may be empty), and the tables fit int32 rows.
// InvalidArgument (bad_batch) naming the column.
absl::Status CheckBatchColumns(const BatchMembersView& members, const BatchOrdersView& orders);

// Engine::Flags() with the engine's member and order indices (order -1 for
// none) instead of ids.
struct IndexedFlag {
  const char* check;
  int32_t member;
  int32_t order;
};
std::vector<IndexedFlag> FlagIndices(const Engine& engine);

// SettleBatch, also giving each row's engine index.
absl::StatusOr<BatchResult> SettleBatchRows(Policy policy, const BatchMembersView& members,
                                            const BatchOrdersView& orders, BatchRowMap& rows);

}  // namespace refpay::internal

#endif  // REFPAY_SRC_BATCH_STEPS_H_
