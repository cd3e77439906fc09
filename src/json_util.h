// Internal: reading refpay values out of parsed JSON (and TOML, which is
// converted to the same tree) with errors that name the path.
#ifndef REFPAY_SRC_JSON_UTIL_H_
#define REFPAY_SRC_JSON_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "refpay/money.h"

namespace refpay::internal {

// Key order matters ("the first listed rank wins"), so documents keep it.
using Json = nlohmann::ordered_json;

// Parses JSON text, rejecting duplicate keys and nesting deeper than 64.
// `what` names the document in error messages ("policy", "event").
absl::StatusOr<Json> ParseJsonText(std::string_view text, std::string_view what);

// A money value: a decimal string or an integer number of yuan. Floats are
// refused so that no binary fraction ever becomes money.
absl::StatusOr<Money> MoneyFromJson(const Json& value, std::string_view path);

// A rate value: a string "4%" or "0.04".
absl::StatusOr<Rate> RateFromJson(const Json& value, std::string_view path);

// Short description of a JSON value's type for messages: "a float 99.9".
std::string DescribeJson(const Json& value);

}  // namespace refpay::internal

#endif  // REFPAY_SRC_JSON_UTIL_H_
