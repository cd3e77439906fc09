#include "json_util.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "refpay/status.h"

namespace refpay::internal {
namespace {

constexpr int kMaxDepth = 64;

std::string View(std::string_view s) { return std::string(s); }

absl::Status WithPath(const absl::Status& status, std::string_view path) {
  return MakeError(status.code(), ErrorCodeOf(status),
                   absl::StrCat(View(path), ": ", status.message()));
}

}  // namespace

absl::StatusOr<Json> ParseJsonText(std::string_view text, std::string_view what) {
  // One set of keys per open object; a repeated key would otherwise be
  // silently overwritten, which is exactly the kind of typo refpay refuses.
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  std::string problem;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (!problem.empty()) return false;
    if (depth > kMaxDepth) {
      problem = absl::StrCat("nesting deeper than ", kMaxDepth);
      return false;
    }
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          problem = absl::StrCat("duplicate key \"", parsed.get<std::string>(), "\"");
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json parsed = Json::parse(text.begin(), text.end(), callback,
                            /*allow_exceptions=*/false);
  if (!problem.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_json",
                     absl::StrCat(View(what), ": ", problem));
  }
  if (parsed.is_discarded()) {
    // Re-parse with exceptions only to recover the parser's position text.
    try {
      (void)Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
      return MakeError(absl::StatusCode::kInvalidArgument, "bad_json",
                       absl::StrCat(View(what), ": invalid JSON: ", e.what()));
    }
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_json",
                     absl::StrCat(View(what), ": invalid JSON"));
  }
  return parsed;
}

std::string DescribeJson(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return absl::StrCat("a boolean ", value.dump());
    case Json::value_t::number_float:
      return absl::StrCat("a float ", value.dump());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return absl::StrCat("an integer ", value.dump());
    case Json::value_t::string:
      return absl::StrCat("a string ", value.dump());
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

absl::StatusOr<Money> MoneyFromJson(const Json& value, std::string_view path) {
  if (value.is_string()) {
    absl::StatusOr<Money> money = Money::Parse(value.get<std::string>());
    if (!money.ok()) return WithPath(money.status(), path);
    return money;
  }
  if (value.is_number_integer()) {
    const bool fits =
        !value.is_number_unsigned() || value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
    absl::StatusOr<Money> money =
        fits ? Money::FromYuan(value.get<int64_t>()) : absl::StatusOr<Money>();
    if (!fits || !money.ok()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "bad_amount",
                       absl::StrCat(View(path), ": ", value.dump(), " yuan is too large"));
    }
    return money;
  }
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_amount",
                   absl::StrCat(View(path),
                                ": money must be a string like \"199.00\" or an "
                                "integer number of yuan, not ",
                                DescribeJson(value)));
}

absl::StatusOr<Rate> RateFromJson(const Json& value, std::string_view path) {
  if (!value.is_string()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_rate",
                     absl::StrCat(View(path),
                                  ": a rate must be a string like \"4%\" or "
                                  "\"0.04\", not ",
                                  DescribeJson(value)));
  }
  absl::StatusOr<Rate> rate = Rate::Parse(value.get<std::string>());
  if (!rate.ok()) return WithPath(rate.status(), path);
  return rate;
}

}  // namespace refpay::internal
