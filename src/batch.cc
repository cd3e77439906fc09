#include "refpay/batch.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "refpay/status.h"

namespace refpay {
namespace {

absl::Status CheckColumn(size_t size, size_t rows, const char* table, const char* column,
                         bool optional) {
  if (size == rows || (optional && size == 0)) return absl::OkStatus();
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_batch",
                   absl::StrCat(table, ".", column, " has ", size, " values for ", rows, " rows"));
}

// One step of the merged stream: which row of which table becomes which event.
struct Step {
  int64_t at;
  EventType type;
  int64_t row;
};

const std::string& Or(const std::vector<std::string>& column, int64_t row,
                      const std::string& fallback) {
  return column.empty() ? fallback : column[row];
}

}  // namespace

absl::StatusOr<BatchResult> SettleBatch(Policy policy, const BatchMembers& members,
                                        const BatchOrders& orders) {
  const size_t m = members.inviter.size();
  const size_t n = orders.buyer.size();
  REFPAY_RETURN_IF_ERROR(CheckColumn(members.ids.size(), m, "members", "ids", true));
  REFPAY_RETURN_IF_ERROR(CheckColumn(members.joined_at.size(), m, "members", "joined_at", false));
  for (const auto& [column, name] :
       {std::pair{&members.role, "role"}, std::pair{&members.rank, "rank"},
        std::pair{&members.region, "region"}, std::pair{&members.device, "device"},
        std::pair{&members.phone, "phone"}, std::pair{&members.payment, "payment"}}) {
    REFPAY_RETURN_IF_ERROR(CheckColumn(column->size(), m, "members", name, true));
  }
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.ids.size(), n, "orders", "ids", true));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.amount.size(), n, "orders", "amount", false));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.at.size(), n, "orders", "at", false));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.category.size(), n, "orders", "category", true));
  REFPAY_RETURN_IF_ERROR(
      CheckColumn(orders.confirmed_at.size(), n, "orders", "confirmed_at", true));
  REFPAY_RETURN_IF_ERROR(
      CheckColumn(orders.refund_amount.size(), n, "orders", "refund_amount", true));
  REFPAY_RETURN_IF_ERROR(CheckColumn(orders.refunded_at.size(), n, "orders", "refunded_at",
                                     orders.refund_amount.empty()));

  // Ids default to row numbers.
  std::vector<std::string> member_ids = members.ids;
  if (member_ids.empty()) {
    member_ids.reserve(m);
    for (size_t i = 0; i < m; ++i) member_ids.push_back(absl::StrCat(i));
  }
  std::vector<std::string> order_ids = orders.ids;
  if (order_ids.empty()) {
    order_ids.reserve(n);
    for (size_t i = 0; i < n; ++i) order_ids.push_back(absl::StrCat(i));
  }

  // Members first, then orders, confirms and refunds; a stable sort by time
  // keeps that order among equal times.
  std::vector<Step> steps;
  steps.reserve(2 * m + 3 * n);
  for (size_t i = 0; i < m; ++i) {
    const int64_t row = static_cast<int64_t>(i);
    steps.push_back({members.joined_at[i], EventType::kJoin, row});
    if (!members.role.empty() && !members.role[i].empty()) {
      steps.push_back({members.joined_at[i], EventType::kSetRole, row});
    }
  }
  for (size_t i = 0; i < n; ++i)
    steps.push_back({orders.at[i], EventType::kOrder, static_cast<int64_t>(i)});
  for (size_t i = 0; i < orders.confirmed_at.size(); ++i) {
    if (orders.confirmed_at[i] != kNoTime) {
      steps.push_back({orders.confirmed_at[i], EventType::kConfirm, static_cast<int64_t>(i)});
    }
  }
  for (size_t i = 0; i < orders.refund_amount.size(); ++i) {
    if (orders.refund_amount[i] != 0) {
      steps.push_back({orders.refunded_at[i], EventType::kRefund, static_cast<int64_t>(i)});
    }
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const Step& a, const Step& b) { return a.at < b.at; });

  BatchResult result{Engine(std::move(policy)), {}};
  const std::string none;
  Event event;
  for (const Step& step : steps) {
    const bool member_row = step.type == EventType::kJoin || step.type == EventType::kSetRole;
    const int64_t row = step.row;
    event = Event();
    event.type = step.type;
    event.at = absl::FromUnixMicros(step.at);
    if (step.type == EventType::kJoin) {
      event.member = member_ids[row];
      const int32_t inviter = members.inviter[row];
      if (inviter < -1 || inviter >= static_cast<int64_t>(m)) {
        result.errors.push_back({"members", row, "unknown_member",
                                 absl::StrCat("inviter row ", inviter, " is out of range")});
        continue;
      }
      if (inviter >= 0) event.inviter = member_ids[inviter];
      event.identity = {Or(members.region, row, none), Or(members.device, row, none),
                        Or(members.phone, row, none), Or(members.payment, row, none)};
    } else if (step.type == EventType::kSetRole) {
      event.member = member_ids[row];
      event.role = members.role[row];
      if (!members.rank.empty() && !members.rank[row].empty()) event.rank = members.rank[row];
    } else {
      event.order = order_ids[row];
      if (step.type == EventType::kOrder) {
        const int32_t buyer = orders.buyer[row];
        if (buyer < 0 || buyer >= static_cast<int64_t>(m)) {
          result.errors.push_back({"orders", row, "unknown_member",
                                   absl::StrCat("buyer row ", buyer, " is out of range")});
          continue;
        }
        event.buyer = member_ids[buyer];
        event.amount = Money::FromFen(orders.amount[row]);
        if (!orders.category.empty() && !orders.category[row].empty())
          event.category = orders.category[row];
      } else if (step.type == EventType::kRefund) {
        event.amount = Money::FromFen(orders.refund_amount[row]);
      }
    }
    absl::Status status = result.engine.Apply(event);
    if (!status.ok()) {
      result.errors.push_back({member_row ? "members" : "orders", row, ErrorCodeOf(status),
                               std::string(status.message())});
    }
  }
  return result;
}

}  // namespace refpay
