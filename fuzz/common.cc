#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "harness.h"

namespace refpay::fuzz {

void Fail(std::string_view harness, std::string_view what) {
  std::fprintf(stderr, "refpay fuzz [%.*s]: invariant broken: %.*s\n",
               static_cast<int>(harness.size()), harness.data(), static_cast<int>(what.size()),
               what.data());
  std::abort();
}

}  // namespace refpay::fuzz
