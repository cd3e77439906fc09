#include "refpay/event.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl_compat.h"
#include "event_json.h"
#include "json_util.h"
#include "refpay/status.h"

namespace refpay {
namespace {

using internal::Json;

constexpr size_t kMaxIdBytes = 256;

absl::Status BadEvent(std::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_event", message);
}

// The fields each type allows; `required` must all be present.
struct Shape {
  std::string_view type;
  EventType event_type;
  std::initializer_list<std::string_view> required;
  std::initializer_list<std::string_view> optional;
};

constexpr std::string_view kIdentityFields[] = {"region", "device", "phone", "payment"};

const Shape kShapes[] = {
    {"join",
     EventType::kJoin,
     {"member", "at"},
     {"inviter", "region", "device", "phone", "payment"}},
    {"rebind", EventType::kRebind, {"member", "inviter", "at"}, {}},
    {"set_role", EventType::kSetRole, {"member", "role", "at"}, {"rank"}},
    {"unset_role", EventType::kUnsetRole, {"member", "role", "at"}, {}},
    {"order", EventType::kOrder, {"id", "buyer", "amount", "at"}, {"category"}},
    {"confirm", EventType::kConfirm, {"order", "at"}, {}},
    {"refund", EventType::kRefund, {"order", "at"}, {"amount"}},
};

bool Contains(std::initializer_list<std::string_view> list, std::string_view key) {
  return std::ranges::find(list, key) != list.end();
}

// Reads a string field; `null` counts as absent (returns ""), other
// non-strings and over-long or empty ids are bad_event.
absl::StatusOr<std::string> StringField(const Json& object, std::string_view key, bool is_id) {
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return BadEvent(absl::StrCat("field \"", std::string(key), "\" must be a string, not ",
                                 internal::DescribeJson(*it)));
  }
  std::string value = it->get<std::string>();
  REFPAY_RETURN_IF_ERROR(internal::CheckEventText(key, value, is_id));
  return value;
}

// Checks a fixed-width ISO-8601 shape before handing the text to Abseil,
// whose parser is more forgiving (it skips spaces, accepts other layouts).
bool HasIsoShape(std::string_view t) {
  auto digits = [&](size_t from, size_t count) {
    if (from + count > t.size()) return false;
    for (size_t i = from; i < from + count; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(t[i]))) return false;
    }
    return true;
  };
  if (t.size() < 20 || !digits(0, 4) || t[4] != '-' || !digits(5, 2) || t[7] != '-' ||
      !digits(8, 2) || t[10] != 'T' || !digits(11, 2) || t[13] != ':' || !digits(14, 2) ||
      t[16] != ':' || !digits(17, 2)) {
    return false;
  }
  size_t i = 19;
  if (t[i] == '.') {
    size_t start = ++i;
    while (i < t.size() && absl::ascii_isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i == start || i - start > 9) return false;
  }
  if (i < t.size() && t[i] == 'Z') return i + 1 == t.size();
  return i + 6 == t.size() && (t[i] == '+' || t[i] == '-') && digits(i + 1, 2) && t[i + 3] == ':' &&
         digits(i + 4, 2);
}

}  // namespace

const char* EventTypeName(EventType type) {
  for (const Shape& shape : kShapes) {
    if (shape.event_type == type) return shape.type.data();  // a literal: NUL-terminated
  }
  return "unknown";
}

absl::StatusOr<absl::Time> ParseTimestamp(std::string_view text) {
  absl::Time t;
  std::string error;
  if (!HasIsoShape(text) ||
      !absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", std::string(text), &t, &error)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_time",
                     absl::StrCat("\"", std::string(text),
                                  "\" is not ISO-8601 with an offset, e.g. "
                                  "2026-03-08T20:00:00+08:00",
                                  error.empty() ? "" : " (", error, error.empty() ? "" : ")"));
  }
  // Every accepted time must print back as four-digit years in UTC (events
  // are compared and snapshotted in UTC): 0001-01-01 .. 9999-12-31 UTC.
  const int64_t year = absl::ToCivilYear(t, absl::UTCTimeZone()).year();
  if (year < 1 || year > 9999) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, "bad_time",
        absl::StrCat("\"", std::string(text), "\" is outside the years 0001..9999 UTC"));
  }
  // Keep microseconds: finer detail has no meaning for commerce events.
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

std::string FormatTimestamp(absl::Time t, absl::TimeZone zone) {
  // %4Y: years below 1000 keep four digits, so the text parses back.
  return absl::FormatTime("%4Y-%m-%dT%H:%M:%E*S%Ez", t, zone);
}

absl::StatusOr<Event> ParseEventJson(std::string_view json) {
  absl::StatusOr<Json> object = internal::ParseJsonText(json, "event");
  if (!object.ok()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_event",
                     internal::AsStd(object.status().message()));
  }
  return internal::EventFromJson(*object);
}

namespace internal {

absl::StatusOr<Event> EventFromJson(const Json& object) {
  if (!object.is_object()) return BadEvent("an event must be a JSON object");
  auto type_it = object.find("type");
  if (type_it == object.end() || !type_it->is_string()) {
    return BadEvent("missing string field \"type\"");
  }
  const std::string type = type_it->get<std::string>();
  const Shape* shape = nullptr;
  for (const Shape& candidate : kShapes) {
    if (candidate.type == type) shape = &candidate;
  }
  if (shape == nullptr) {
    return BadEvent(absl::StrCat("unknown event type \"", type,
                                 "\" (expected join, rebind, set_role, unset_role, "
                                 "order, confirm or refund)"));
  }
  for (const auto& [key, value] : object.items()) {
    if (key == "type" || key == "event_id") continue;
    if (!Contains(shape->required, key) && !Contains(shape->optional, key)) {
      return BadEvent(absl::StrCat("unexpected field \"", key, "\" in a ", type, " event"));
    }
  }
  for (std::string_view key : shape->required) {
    auto it = object.find(std::string(key));
    if (it == object.end() || it->is_null()) {
      return BadEvent(
          absl::StrCat("missing field \"", std::string(key), "\" in a ", type, " event"));
    }
  }

  Event event;
  event.type = shape->event_type;
  REFPAY_ASSIGN_OR_RETURN(std::string event_id, StringField(object, "event_id", true));
  if (!event_id.empty()) event.event_id = std::move(event_id);

  // Every string field is read before the time and the amount, so a shape
  // problem is always reported as bad_event first.
  auto read = [&](std::string_view key, std::string* out) -> absl::Status {
    if (!Contains(shape->required, key) && !Contains(shape->optional, key)) {
      return absl::OkStatus();
    }
    REFPAY_ASSIGN_OR_RETURN(*out, StringField(object, key, true));
    return absl::OkStatus();
  };
  std::string inviter;
  std::string rank;
  std::string category;
  REFPAY_RETURN_IF_ERROR(read("member", &event.member));
  REFPAY_RETURN_IF_ERROR(read("inviter", &inviter));
  REFPAY_RETURN_IF_ERROR(read("role", &event.role));
  REFPAY_RETURN_IF_ERROR(read("rank", &rank));
  REFPAY_RETURN_IF_ERROR(read(event.type == EventType::kOrder ? "id" : "order", &event.order));
  REFPAY_RETURN_IF_ERROR(read("buyer", &event.buyer));
  REFPAY_RETURN_IF_ERROR(read("category", &category));
  if (!inviter.empty()) event.inviter = std::move(inviter);
  if (!rank.empty()) event.rank = std::move(rank);
  if (!category.empty()) event.category = std::move(category);
  if (event.type == EventType::kJoin) {
    std::string* identity[] = {&event.identity.region, &event.identity.device,
                               &event.identity.phone, &event.identity.payment};
    for (size_t i = 0; i < 4; ++i) {
      REFPAY_ASSIGN_OR_RETURN(*identity[i], StringField(object, kIdentityFields[i], false));
    }
  }

  const Json& at = object.at("at");
  if (!at.is_string()) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, "bad_time",
        absl::StrCat("field \"at\" must be a string, not ", internal::DescribeJson(at)));
  }
  REFPAY_ASSIGN_OR_RETURN(event.at, ParseTimestamp(at.get<std::string>()));

  if (auto it = object.find("amount"); it != object.end() && !it->is_null()) {
    REFPAY_ASSIGN_OR_RETURN(event.amount, internal::MoneyFromJson(*it, "amount"));
  }
  return event;
}

absl::Status CheckEventText(std::string_view field, std::string_view value, bool is_id) {
  if (is_id && value.empty()) {
    return BadEvent(absl::StrCat("field \"", std::string(field), "\" is empty"));
  }
  if (value.size() > kMaxIdBytes) {
    return BadEvent(
        absl::StrCat("field \"", std::string(field), "\" is longer than ", kMaxIdBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckEventStrings(const Event& event) {
  if (event.event_id) REFPAY_RETURN_IF_ERROR(CheckEventText("event_id", *event.event_id, true));
  auto optional = [](std::string_view field, const std::optional<std::string>& value) {
    return value ? CheckEventText(field, *value, true) : absl::OkStatus();
  };
  switch (event.type) {
    case EventType::kJoin:
      REFPAY_RETURN_IF_ERROR(CheckEventText("member", event.member, true));
      REFPAY_RETURN_IF_ERROR(optional("inviter", event.inviter));
      for (const auto& [field, value] :
           {std::pair{"region", &event.identity.region},
            std::pair{"device", &event.identity.device}, std::pair{"phone", &event.identity.phone},
            std::pair{"payment", &event.identity.payment}}) {
        REFPAY_RETURN_IF_ERROR(CheckEventText(field, *value, false));
      }
      return absl::OkStatus();
    case EventType::kRebind:
      REFPAY_RETURN_IF_ERROR(CheckEventText("member", event.member, true));
      if (!event.inviter) return BadEvent("missing field \"inviter\"");
      return CheckEventText("inviter", *event.inviter, true);
    case EventType::kSetRole:
    case EventType::kUnsetRole:
      REFPAY_RETURN_IF_ERROR(CheckEventText("member", event.member, true));
      REFPAY_RETURN_IF_ERROR(CheckEventText("role", event.role, true));
      return optional("rank", event.rank);
    case EventType::kOrder:
      REFPAY_RETURN_IF_ERROR(CheckEventText("id", event.order, true));
      REFPAY_RETURN_IF_ERROR(CheckEventText("buyer", event.buyer, true));
      return optional("category", event.category);
    case EventType::kConfirm:
    case EventType::kRefund:
      return CheckEventText("order", event.order, true);
  }
  return absl::OkStatus();
}

}  // namespace internal

std::string EventToJson(const Event& event) {
  nlohmann::json out;  // std::map-backed: keys come out sorted
  out["type"] = std::string(EventTypeName(event.type));
  out["at"] = FormatTimestamp(event.at, absl::UTCTimeZone());
  if (event.event_id) out["event_id"] = *event.event_id;
  auto put = [&](const char* key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  switch (event.type) {
    case EventType::kJoin:
      put("member", event.member);
      put("inviter", event.inviter.value_or(""));
      put("region", event.identity.region);
      put("device", event.identity.device);
      put("phone", event.identity.phone);
      put("payment", event.identity.payment);
      break;
    case EventType::kRebind:
      put("member", event.member);
      put("inviter", event.inviter.value_or(""));
      break;
    case EventType::kSetRole:
    case EventType::kUnsetRole:
      put("member", event.member);
      put("role", event.role);
      put("rank", event.rank.value_or(""));
      break;
    case EventType::kOrder:
      put("id", event.order);
      put("buyer", event.buyer);
      put("category", event.category.value_or(""));
      break;
    case EventType::kConfirm:
    case EventType::kRefund:
      put("order", event.order);
      break;
  }
  if (event.amount) out["amount"] = event.amount->ToString();
  return out.dump();
}

}  // namespace refpay
