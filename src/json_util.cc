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

// A SAX pass that only checks what nlohmann's parser lets through: nesting
// depth and duplicate keys (a repeated key would otherwise be silently
// overwritten, exactly the kind of typo refpay refuses). It is linear: the
// parser's callback interface, used before, rescans the enclosing array at
// the end of every object, so an array of 100,000 objects took seconds.
class Checker : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (!Open()) return false;
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (!keys_.back().insert(key).second) {
      problem_ = absl::StrCat("duplicate key \"", key, "\"");
      return false;
    }
    return true;
  }
  bool end_object() override {
    keys_.pop_back();
    --open_;
    return true;
  }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override {
    --open_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    problem_ = absl::StrCat("invalid JSON: ", e.what());
    return false;
  }
  const std::string& problem() const { return problem_; }

 private:
  bool Open() {
    if (++open_ > kMaxDepth) {
      problem_ = absl::StrCat("nesting deeper than ", kMaxDepth);
      return false;
    }
    return true;
  }
  int open_ = 0;
  std::vector<absl::flat_hash_set<std::string>> keys_;  // one per open object
  std::string problem_;
};

}  // namespace

absl::StatusOr<Json> ParseJsonText(std::string_view text, std::string_view what) {
  Checker checker;
  if (!Json::sax_parse(text.begin(), text.end(), &checker)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_json",
                     absl::StrCat(View(what), ": ",
                                  checker.problem().empty() ? "invalid JSON" : checker.problem()));
  }
  Json parsed = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {  // cannot happen after the check; never trust that
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
