// refpay/event.h — the events a run is made of (SPEC §2).
//
// A backend builds Event values directly or parses one JSON object per line:
//
//   absl::StatusOr<refpay::Event> e = refpay::ParseEventJson(
//       R"({"type":"order","id":"o1","buyer":"C","amount":"99.00",
//           "at":"2026-03-08T20:00:00+08:00"})");
//   if (!e.ok()) return e.status();          // reason: bad_event, bad_time, …
//   absl::Status applied = engine.Apply(*e);  // see refpay/engine.h
//
// Parsing checks the event's shape (bad_event), its time (bad_time) and the
// syntax of its amount (bad_amount); the engine checks everything that needs
// state (time order, references, binding rules).
#ifndef REFPAY_EVENT_H_
#define REFPAY_EVENT_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "refpay/money.h"

namespace refpay {

// refpay::EventType lists the SPEC §2 event types.
enum class EventType { kJoin, kRebind, kSetRole, kUnsetRole, kOrder, kConfirm, kRefund };

// refpay::EventTypeName() is the JSON `type` of an event type: "set_role".
const char* EventTypeName(EventType type);

// refpay::Identity holds the opaque identity strings of a member; an empty
// string means "not given" and never matches anything.
struct Identity {
  std::string region;
  std::string device;
  std::string phone;
  std::string payment;
};

// refpay::Event is one event. Which fields are meaningful depends on `type`:
//   join       member, inviter?, identity
//   rebind     member, inviter
//   set_role   member, role, rank?
//   unset_role member, role
//   order      order (the order id), buyer, amount, category?
//   confirm    order
//   refund     order, amount? (default: all that is left)
struct Event {
  EventType type = EventType::kJoin;
  absl::Time at;
  std::optional<std::string> event_id;
  std::string member;
  std::optional<std::string> inviter;
  std::string role;
  std::optional<std::string> rank;
  std::string order;
  std::string buyer;
  std::optional<Money> amount;
  std::optional<std::string> category;
  Identity identity;
};

// refpay::ParseTimestamp() reads ISO-8601 with an explicit offset:
// "2026-03-08T20:00:00+08:00", "2026-03-08T12:00:00.5Z". Fails with reason
// `bad_time` otherwise (no offset, a space for 'T', an impossible date).
absl::StatusOr<absl::Time> ParseTimestamp(std::string_view text);

// refpay::FormatTimestamp() writes RFC 3339 in `zone`: the inverse of
// ParseTimestamp() up to the offset chosen.
std::string FormatTimestamp(absl::Time t, absl::TimeZone zone);

// refpay::ParseEventJson() parses one JSON object in the SPEC §2 shapes.
// Unknown types and missing, extra or mistyped fields fail with reason
// `bad_event` naming the field; see also ParseTimestamp() and Money::Parse().
absl::StatusOr<Event> ParseEventJson(std::string_view json);

// refpay::EventToJson() writes `event` as a canonical JSON object (sorted
// keys, amounts as "0.00" strings, time in UTC): equal events give equal
// text, which is how a re-delivered `event_id` is compared.
std::string EventToJson(const Event& event);

}  // namespace refpay

#endif  // REFPAY_EVENT_H_
