// refpay/status.h — error values shared by every refpay API.
//
// Every fallible refpay call returns absl::Status or absl::StatusOr<T>. The
// status carries the most specific canonical code, a message naming the
// field, line or rule path, and a stable reason token (`cycle`, `tier_gap`,
// `bad_amount`, …) that the CLI and Python report as the SPEC error code.
//
//   absl::Status s = engine.Apply(event);
//   if (!s.ok()) std::cerr << refpay::ErrorCodeOf(s) << ": " << s.message();
//
// REFPAY_RETURN_IF_ERROR and REFPAY_ASSIGN_OR_RETURN stand in for the macros
// that Debian's Abseil (20220623) does not ship.
#ifndef REFPAY_STATUS_H_
#define REFPAY_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace refpay {

// refpay::MakeError() returns a status with canonical `code`, the reason
// token `reason` (a SPEC error code such as "cycle") and `message`.
absl::Status MakeError(absl::StatusCode code, std::string_view reason, std::string_view message);

// refpay::ErrorCodeOf() returns the reason token of `status`, or "" for OK
// and for statuses refpay did not make.
std::string ErrorCodeOf(const absl::Status& status);

}  // namespace refpay

#define REFPAY_STATUS_CONCAT_INNER_(a, b) a##b
#define REFPAY_STATUS_CONCAT_(a, b) REFPAY_STATUS_CONCAT_INNER_(a, b)

// REFPAY_RETURN_IF_ERROR(expr) returns the status of `expr` if it is not OK.
#define REFPAY_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status refpay_status_ = (expr); !refpay_status_.ok()) { \
      return refpay_status_;                                          \
    }                                                                 \
  } while (false)

// REFPAY_ASSIGN_OR_RETURN(lhs, expr) evaluates the StatusOr `expr`; on error
// returns its status, otherwise assigns (moves) the value to `lhs`, which may
// be a declaration such as `auto x` or `const Policy& p`.
#define REFPAY_ASSIGN_OR_RETURN(lhs, expr) \
  REFPAY_ASSIGN_OR_RETURN_IMPL_(REFPAY_STATUS_CONCAT_(refpay_statusor_, __LINE__), lhs, expr)
// `lhs` may be a declaration and `statusor` is a name, so neither can be
// parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define REFPAY_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // REFPAY_STATUS_H_
