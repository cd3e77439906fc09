// Internal: building an Event from an already parsed JSON object, so that a
// caller who needs to look at the object first (event_id) parses once.
#ifndef REFPAY_SRC_EVENT_JSON_H_
#define REFPAY_SRC_EVENT_JSON_H_

#include "absl/status/statusor.h"
#include "json_util.h"
#include "refpay/event.h"

namespace refpay::internal {

absl::StatusOr<Event> EventFromJson(const Json& object);

// The limits ParseEventJson puts on a string field: an id (`is_id`) is not
// empty, and no field is longer than 256 bytes (docs/limits.md). Fails with
// bad_event naming the field.
absl::Status CheckEventText(std::string_view field, std::string_view value, bool is_id);

// The same limits on the strings of an Event built in code, for the fields
// its type uses.
absl::Status CheckEventStrings(const Event& event);

}  // namespace refpay::internal

#endif  // REFPAY_SRC_EVENT_JSON_H_
