// Internal: building an Event from an already parsed JSON object, so that a
// caller who needs to look at the object first (event_id) parses once.
#ifndef REFPAY_SRC_EVENT_JSON_H_
#define REFPAY_SRC_EVENT_JSON_H_

#include "absl/status/statusor.h"
#include "json_util.h"
#include "refpay/event.h"

namespace refpay::internal {

absl::StatusOr<Event> EventFromJson(const Json& object);

}  // namespace refpay::internal

#endif  // REFPAY_SRC_EVENT_JSON_H_
