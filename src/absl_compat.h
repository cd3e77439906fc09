// Internal: Debian's Abseil (20220623) has its own absl::string_view, not an
// alias of std::string_view, so views cross the boundary explicitly here.
#ifndef REFPAY_SRC_ABSL_COMPAT_H_
#define REFPAY_SRC_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace refpay::internal {

inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view AsStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace refpay::internal

#endif  // REFPAY_SRC_ABSL_COMPAT_H_
