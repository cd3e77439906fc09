// gtest matchers for absl::Status / StatusOr, since Debian's Abseil
// (20220623) ships none:
//
//   EXPECT_THAT(engine.Apply(e), IsOk());
//   EXPECT_THAT(engine.Apply(e), HasReason("cycle"));
//   EXPECT_THAT(Money::Parse("1.234"), StatusIs(absl::StatusCode::kInvalidArgument));
#ifndef REFPAY_TESTS_CC_STATUS_MATCHERS_H_
#define REFPAY_TESTS_CC_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "refpay/status.h"

namespace refpay::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

MATCHER_P(HasReason, reason, "fails with reason " + std::string(reason)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString() << " with reason \"" << ErrorCodeOf(status)
                   << "\"";
  return !status.ok() && ErrorCodeOf(status) == reason;
}

MATCHER_P(MessageHas, fragment, "has a message containing \"" + std::string(fragment) + "\"") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "message is \"" << status.message() << "\"";
  return std::string(status.message()).find(fragment) != std::string::npos;
}

}  // namespace refpay::testing

#endif  // REFPAY_TESTS_CC_STATUS_MATCHERS_H_
