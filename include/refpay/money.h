// refpay/money.h — exact money, rates and rounding.
//
// Money is a whole number of fen (分, 0.01 yuan) in an int64. Rates are whole
// parts per million (4% = 40000 ppm). Products are formed exactly in 128-bit
// integers and rounded once, with a rounding mode passed explicitly; sums are
// checked and an overflow is an error, never a wrap. No binary floating point
// touches money anywhere in refpay.
//
//   absl::StatusOr<refpay::Money> price = refpay::Money::Parse("4999.99");
//   absl::StatusOr<refpay::Rate> rate = refpay::Rate::Parse("5%");
//   refpay::Money paid =
//       refpay::ApplyRate(*price, *rate, refpay::RoundingMode::kHalfUp);
//   paid.ToString();  // "250.00"  (exact product 249.9995)
#ifndef REFPAY_MONEY_H_
#define REFPAY_MONEY_H_

#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/multiprecision/cpp_int.hpp"

namespace refpay {

// refpay::Int128 is a checked 128-bit integer: arithmetic that would overflow
// throws std::overflow_error instead of wrapping.
using Int128 = boost::multiprecision::checked_int128_t;

// refpay::RoundingMode says how an exact amount becomes whole fen. Names
// follow Python's `decimal`. Truth table (fen, exact value → rounded):
//
//   exact     half_up  half_even  down
//    2.5        3         2        2
//    3.5        4         4        3
//   -2.5       -3        -2       -2
//    2.4999     2         2        2
//    2.51       3         3        2
enum class RoundingMode {
  kHalfUp,    // ties away from zero (四舍五入), ROUND_HALF_UP
  kHalfEven,  // ties to the even fen, ROUND_HALF_EVEN
  kDown,      // toward zero (truncate), ROUND_DOWN
};

// refpay::ParseRoundingMode() reads "half_up", "half_even" or "down".
absl::StatusOr<RoundingMode> ParseRoundingMode(std::string_view text);

// refpay::RoundingModeName() is the inverse of ParseRoundingMode(), as a
// static C string (so it drops into absl::StrCat and streams alike).
const char* RoundingModeName(RoundingMode mode);

// refpay::DivideRounded() returns numerator / denominator rounded with
// `mode`; `denominator` must be positive. Fails with OutOfRange if the
// result does not fit in int64.
absl::StatusOr<int64_t> DivideRounded(const Int128& numerator, int64_t denominator,
                                      RoundingMode mode);

// refpay::Money is an exact amount of money in fen.
class Money {
 public:
  constexpr Money() = default;

  // refpay::Money::FromFen() wraps a count of fen.
  static constexpr Money FromFen(int64_t fen) { return Money(fen); }

  // refpay::Money::FromYuan() converts whole yuan (as JSON integers are
  // read); fails with OutOfRange beyond int64 fen.
  static absl::StatusOr<Money> FromYuan(int64_t yuan);

  // refpay::Money::Parse() reads a decimal string with at most two
  // fractional digits: "199.00", "50", "-5", "0.5". Exponents, spaces, '+',
  // separators and a third decimal are rejected with a message saying why.
  static absl::StatusOr<Money> Parse(std::string_view text);

  constexpr int64_t fen() const { return fen_; }
  constexpr bool is_zero() const { return fen_ == 0; }
  constexpr bool is_positive() const { return fen_ > 0; }
  constexpr bool is_negative() const { return fen_ < 0; }

  // refpay::Money::ToString() formats with exactly two decimals: "-0.05".
  std::string ToString() const;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend constexpr auto operator<=>(Money, Money) = default;

 private:
  constexpr explicit Money(int64_t fen) : fen_(fen) {}
  int64_t fen_ = 0;
};

// refpay::CheckedAdd() and CheckedSub() fail with OutOfRange (reason
// `overflow`) instead of wrapping.
absl::StatusOr<Money> CheckedAdd(Money a, Money b);
absl::StatusOr<Money> CheckedSub(Money a, Money b);

// refpay::Rate is an exact, non-negative rate in parts per million.
class Rate {
 public:
  static constexpr int64_t kOne = 1'000'000;  // 100%

  constexpr Rate() = default;

  // refpay::Rate::FromPpm() wraps a ppm count; fails outside [0, 100%].
  static absl::StatusOr<Rate> FromPpm(int64_t ppm);

  // refpay::Rate::Parse() reads "4%", "12.5%", "3.3333%" (at most four
  // decimals of percent) or a fraction "0.04" (at most six decimals).
  static absl::StatusOr<Rate> Parse(std::string_view text);

  constexpr int64_t ppm() const { return ppm_; }

  // refpay::Rate::ToString() formats as a percentage: "12.5%".
  std::string ToString() const;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend constexpr auto operator<=>(Rate, Rate) = default;

 private:
  constexpr explicit Rate(int64_t ppm) : ppm_(ppm) {}
  int64_t ppm_ = 0;
};

// refpay::ExactProduct() is base × rate in units of fen·ppm (1e-8 yuan),
// computed exactly.
inline Int128 ExactProduct(Money base, Rate rate) { return Int128(base.fen()) * rate.ppm(); }

// refpay::ApplyRate() returns base × rate rounded to fen with `mode`. It
// cannot overflow: a rate is at most 100%.
Money ApplyRate(Money base, Rate rate, RoundingMode mode);

// refpay::RoundProduct() rounds an exact amount in fen·ppm to fen. The
// int64 overload is for products known to fit (a base below
// kMaxFenForInt64Product times a rate of at most 100%): a hardware division.
Money RoundProduct(const Int128& fen_ppm, RoundingMode mode);
inline Money RoundProduct(int64_t fen_ppm, RoundingMode mode);

// refpay::kMaxFenForInt64Product is the largest base whose product with any
// rate (at most 100%, Rate::kOne ppm) fits in int64 fen·ppm.
inline constexpr int64_t kMaxFenForInt64Product = std::numeric_limits<int64_t>::max() / Rate::kOne;

namespace internal {

// Rounds the non-negative quotient n / d. `r >= d - r` is `2r >= d`
// without overflow. Int is int64_t when n fits (the common case: a hardware
// division, by a constant once inlined) or Int128.
template <typename Int>
Int RoundNonNegative(const Int& n, int64_t d, RoundingMode mode) {
  Int q = n / d;
  const Int r = n % d;
  switch (mode) {
    case RoundingMode::kDown:
      return q;
    case RoundingMode::kHalfUp:
      return r >= d - r ? q + 1 : q;
    case RoundingMode::kHalfEven:
      if (r > d - r) return q + 1;
      if (r == d - r) return (q % 2 == 0) ? q : q + 1;
      return q;
  }
  return q;
}

}  // namespace internal

// Inline: the batch kernel rounds every entry through it.
inline Money RoundProduct(int64_t fen_ppm, RoundingMode mode) {
  const auto magnitude =
      internal::RoundNonNegative<int64_t>(fen_ppm < 0 ? -fen_ppm : fen_ppm, Rate::kOne, mode);
  return Money::FromFen(fen_ppm < 0 ? -magnitude : magnitude);
}

// refpay::FormatExact() prints an amount in fen·ppm as yuan with as many
// decimals as it needs (at least two): "249.9995".
std::string FormatExact(const Int128& fen_ppm);

}  // namespace refpay

#endif  // REFPAY_MONEY_H_
