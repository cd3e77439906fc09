#include "refpay/status.h"

#include <optional>

#include "absl/strings/cord.h"

namespace refpay {
namespace {
// The payload URL under which the reason token travels.
constexpr char kReasonUrl[] = "type.refpay.dev/reason";
}  // namespace

absl::Status MakeError(absl::StatusCode code, std::string_view reason, std::string_view message) {
  absl::Status status(code, absl::string_view(message.data(), message.size()));
  status.SetPayload(kReasonUrl, absl::Cord(absl::string_view(reason.data(), reason.size())));
  return status;
}

std::string ErrorCodeOf(const absl::Status& status) {
  if (status.ok()) return "";
  std::optional<absl::Cord> payload;
  if (auto p = status.GetPayload(kReasonUrl); p.has_value()) payload = *p;
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace refpay
