#include "refpay/batch.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "batch_steps.h"
#include "refpay/status.h"

namespace refpay {
namespace {

absl::Status CheckColumn(size_t size, size_t rows, const char* table, const char* column,
                         bool optional) {
  if (size == rows || (optional && size == 0)) return absl::OkStatus();
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_batch",
                   absl::StrCat(table, ".", column, " has ", size, " values for ", rows, " rows"));
}

using internal::BatchStep;

// Rows of one table as steps, sorted by time; equal times keep row order.
std::vector<BatchStep> Steps(absl::Span<const int64_t> at, EventType type,
                             const absl::Span<const int64_t>* when = nullptr, int64_t skip = 0) {
  std::vector<BatchStep> steps;
  steps.reserve(at.size());
  for (size_t i = 0; i < at.size(); ++i) {
    if (when != nullptr && (*when)[i] == skip) continue;
    steps.push_back({at[i], static_cast<int32_t>(i), type});
  }
  auto by_time = [](const BatchStep& a, const BatchStep& b) { return a.at < b.at; };
  if (!std::is_sorted(steps.begin(), steps.end(), by_time))
    std::stable_sort(steps.begin(), steps.end(), by_time);
  return steps;
}

// Merges the tables' steps into one stream by time; at equal times members
// come first, then orders, confirmations and refunds.
std::vector<BatchStep> Merge(std::vector<std::vector<BatchStep>> streams) {
  size_t total = 0;
  for (const auto& stream : streams) total += stream.size();
  std::vector<BatchStep> merged;
  merged.reserve(total);
  std::vector<size_t> next(streams.size(), 0);
  while (merged.size() < total) {
    size_t best = streams.size();
    for (size_t s = 0; s < streams.size(); ++s) {
      if (next[s] == streams[s].size()) continue;
      if (best == streams.size() || streams[s][next[s]].at < streams[best][next[best]].at) best = s;
    }
    merged.push_back(streams[best][next[best]++]);
  }
  return merged;
}

// Both id forms of one table cannot be given at once.
absl::Status CheckIdForms(const TextColumn& ids, absl::Span<const int64_t> int_ids, size_t rows,
                          const char* table) {
  REFPAY_RETURN_IF_ERROR(CheckColumn(ids.size(), rows, table, "ids", true));
  REFPAY_RETURN_IF_ERROR(CheckColumn(int_ids.size(), rows, table, "int_ids", true));
  if (!ids.empty() && !int_ids.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_batch",
                     absl::StrCat(table, " has both ids and int_ids: give one"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TextColumn> TextColumn::FromOffsets(absl::Span<const int64_t> offsets,
                                                   std::string_view data) {
  auto bad = [](const std::string& why) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_batch", why);
  };
  if (offsets.empty()) return bad("offsets need at least one value");
  const size_t n = offsets.size() - 1;
  if (offsets[0] < 0 || offsets[n] > static_cast<int64_t>(data.size()))
    return bad("offsets point outside the data buffer");
  for (size_t i = 0; i < n; ++i) {
    if (offsets[i + 1] < offsets[i]) return bad(absl::StrCat("offsets decrease at row ", i));
  }
  TextColumn column;
  column.offsets_ = offsets.data();
  column.data_ = data.data();
  column.size_ = n;
  return column;
}

namespace internal {

absl::Status CheckBatchColumns(const BatchMembersView& members, const BatchOrdersView& orders) {
  const size_t m = members.inviter.size();
  const size_t n = orders.buyer.size();
  REFPAY_RETURN_IF_ERROR(CheckIdForms(members.ids, members.int_ids, m, "members"));
  REFPAY_RETURN_IF_ERROR(CheckColumn(members.joined_at.size(), m, "members", "joined_at", false));
  for (const auto& [column, name] :
       {std::pair{&members.role, "role"}, std::pair{&members.rank, "rank"},
        std::pair{&members.region, "region"}, std::pair{&members.device, "device"},
        std::pair{&members.phone, "phone"}, std::pair{&members.payment, "payment"}}) {
    REFPAY_RETURN_IF_ERROR(CheckColumn(column->size(), m, "members", name, true));
  }
  REFPAY_RETURN_IF_ERROR(CheckIdForms(orders.ids, orders.int_ids, n, "orders"));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.amount.size(), n, "orders", "amount", false));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.at.size(), n, "orders", "at", false));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.category.size(), n, "orders", "category", true));
  REFPAY_RETURN_IF_ERROR(
      CheckColumn(orders.confirmed_at.size(), n, "orders", "confirmed_at", true));
  REFPAY_RETURN_IF_ERROR(
      CheckColumn(orders.refund_amount.size(), n, "orders", "refund_amount", true));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.refunded_at.size(), n, "orders", "refunded_at",
                                     orders.refund_amount.empty()));
  if (m > std::numeric_limits<int32_t>::max() || n > std::numeric_limits<int32_t>::max()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_batch",
                     "a batch holds at most 2147483647 members and as many orders");
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchResult> SettleBatchRows(Policy policy, const BatchMembersView& members,
                                            const BatchOrdersView& orders, BatchRowMap& rows) {
  REFPAY_RETURN_IF_ERROR(CheckBatchColumns(members, orders));
  std::vector<std::vector<BatchStep>> streams;
  streams.push_back(Steps(members.joined_at, EventType::kJoin));
  streams.push_back(Steps(orders.at, EventType::kOrder));
  if (!orders.confirmed_at.empty()) {
    streams.push_back(
        Steps(orders.confirmed_at, EventType::kConfirm, &orders.confirmed_at, kNoTime));
  }
  if (!orders.refund_amount.empty()) {
    streams.push_back(Steps(orders.refunded_at, EventType::kRefund, &orders.refund_amount, 0));
  }
  const std::vector<BatchStep> steps = Merge(std::move(streams));

  BatchResult result{Engine(std::move(policy)), {}};
  ApplyBatchSteps(result.engine, steps, members, orders, result.errors, rows);
  return result;
}

}  // namespace internal

absl::StatusOr<BatchResult> SettleBatch(Policy policy, const BatchMembersView& members,
                                        const BatchOrdersView& orders) {
  internal::BatchRowMap rows;
  return internal::SettleBatchRows(std::move(policy), members, orders, rows);
}

}  // namespace refpay
