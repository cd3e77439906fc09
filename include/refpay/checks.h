// refpay/checks.h — the anti-abuse checks (风控, SPEC §6) and flag names.
//
// A check hits an entry and acts on it: `deny` (not paid), `hold` (status
// held) or `flag` (paid, reported); where several hit, the strongest wins.
// Hits and cap cuts are reported as flags named by FlagKind. The predicates
// here are pure so that tests and other tools can reuse them:
//
//   refpay::IdentityKey buyer{.device = 7}, inviter{.device = 7};
//   refpay::SharesIdentity(buyer, inviter);               // true: 自买自推
//   refpay::RefundShareExceeds(3, 10, *refpay::Rate::Parse("25%"));  // true
#ifndef REFPAY_CHECKS_H_
#define REFPAY_CHECKS_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "refpay/money.h"
#include "refpay/policy.h"

namespace refpay {

// refpay::FlagKind names every flag the engine reports.
enum class FlagKind : uint8_t {
  kSharedIdentity,
  kSplitOrders,
  kVelocity,
  kRefundRate,
  kCapOrder,
  kCapMember,
  kBudgetExhausted,
  kInvalidInvite,
};

// refpay::FlagKindName() is the SPEC name: "shared_identity", "cap_order", …
const char* FlagKindName(FlagKind kind);

// refpay::IdentityKey is a member's device, phone and payment, interned to
// integers; 0 means "not given" and never matches.
struct IdentityKey {
  int32_t device = 0;
  int32_t phone = 0;
  int32_t payment = 0;
};

// refpay::SharesIdentity() says whether two members share a non-empty
// device, phone or payment (a second account, 自买自推).
constexpr bool SharesIdentity(IdentityKey a, IdentityKey b) {
  return (a.device != 0 && a.device == b.device) || (a.phone != 0 && a.phone == b.phone) ||
         (a.payment != 0 && a.payment == b.payment);
}

// refpay::RefundShareExceeds() says whether `refunded` of `orders` is a
// share above `max_share`, compared exactly (no division).
inline bool RefundShareExceeds(int64_t refunded, int64_t orders, Rate max_share) {
  return orders > 0 && Int128(refunded) * Rate::kOne > Int128(max_share.ppm()) * orders;
}

// refpay::Strongest() combines two actions: deny > hold > flag.
constexpr Action Strongest(std::optional<Action> current, Action hit) {
  return current && *current > hit ? *current : hit;
}

}  // namespace refpay

#endif  // REFPAY_CHECKS_H_
