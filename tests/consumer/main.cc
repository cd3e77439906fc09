#include <iostream>

#include "refpay/money.h"

int main() {
  auto price = refpay::Money::Parse("4999.99");
  auto rate = refpay::Rate::Parse("5%");
  if (!price.ok() || !rate.ok()) return 1;
  std::cout << refpay::ApplyRate(*price, *rate, refpay::RoundingMode::kHalfUp).ToString() << "\n";
  return 0;
}
