#include "refpay/money.h"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "refpay/status.h"

namespace refpay {
namespace {

constexpr int64_t kPpmPerFen = Rate::kOne;  // fen·ppm units in one fen

absl::Status BadAmount(std::string_view text, const std::string& why) {
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_amount",
                   absl::StrCat("\"", absl::string_view(text.data(), text.size()),
                                "\" is not an amount: ", why));
}

absl::Status BadRate(std::string_view text, const std::string& why) {
  return MakeError(
      absl::StatusCode::kInvalidArgument, "bad_rate",
      absl::StrCat("\"", absl::string_view(text.data(), text.size()), "\" is not a rate: ", why));
}

absl::Status Overflow(std::string_view what) {
  return MakeError(
      absl::StatusCode::kOutOfRange, "overflow",
      absl::StrCat(absl::string_view(what.data(), what.size()), " overflows 64-bit fen"));
}

// Parses "[digits][.digits]" into an integer scaled by 10^max_decimals.
// Returns false with `why` set when the text is not of that shape.
bool ParseScaledDecimal(std::string_view text, int max_decimals, Int128* out, std::string* why) {
  if (text.empty()) {
    *why = "empty";
    return false;
  }
  Int128 whole = 0;
  size_t i = 0;
  size_t int_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (int_digits > 30) {
      *why = "too many digits";
      return false;
    }
    whole = whole * 10 + (text[i] - '0');
    ++int_digits;
  }
  int decimals = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (++decimals > max_decimals) {
        *why = absl::StrCat("more than ", max_decimals, " decimals");
        return false;
      }
      whole = whole * 10 + (text[i] - '0');
    }
    if (decimals == 0) {
      *why = "no digits after the decimal point";
      return false;
    }
  }
  if (i != text.size()) {
    *why = "only digits and one '.' are allowed";
    return false;
  }
  if (int_digits == 0) {
    *why = "no digits before the decimal point";
    return false;
  }
  for (; decimals < max_decimals; ++decimals) whole *= 10;
  *out = whole;
  return true;
}

}  // namespace

absl::StatusOr<RoundingMode> ParseRoundingMode(std::string_view text) {
  if (text == "half_up") return RoundingMode::kHalfUp;
  if (text == "half_even") return RoundingMode::kHalfEven;
  if (text == "down") return RoundingMode::kDown;
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_value",
                   absl::StrCat("unknown rounding \"", absl::string_view(text.data(), text.size()),
                                "\" (expected half_up, half_even or down)"));
}

const char* RoundingModeName(RoundingMode mode) {
  switch (mode) {
    case RoundingMode::kHalfUp:
      return "half_up";
    case RoundingMode::kHalfEven:
      return "half_even";
    case RoundingMode::kDown:
      return "down";
  }
  return "half_up";
}

absl::StatusOr<int64_t> DivideRounded(const Int128& numerator, int64_t denominator,
                                      RoundingMode mode) {
  // Round the magnitude, then restore the sign: every mode here is
  // symmetric about zero.
  const bool negative = numerator < 0;
  Int128 magnitude = negative ? Int128(-numerator) : numerator;
  if (magnitude <= std::numeric_limits<int64_t>::max()) {
    const auto q = internal::RoundNonNegative(static_cast<int64_t>(magnitude), denominator, mode);
    return negative ? -q : q;
  }
  Int128 q = internal::RoundNonNegative(magnitude, denominator, mode);
  if (negative) q = -q;
  if (q > std::numeric_limits<int64_t>::max() || q < std::numeric_limits<int64_t>::min()) {
    return Overflow("rounded amount");
  }
  return static_cast<int64_t>(q);
}

absl::StatusOr<Money> Money::FromYuan(int64_t yuan) {
  int64_t fen = 0;
  if (__builtin_mul_overflow(yuan, int64_t{100}, &fen)) {
    return Overflow(absl::StrCat(yuan, " yuan"));
  }
  return Money(fen);
}

absl::StatusOr<Money> Money::Parse(std::string_view text) {
  std::string_view digits = text;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  Int128 fen = 0;
  std::string why;
  if (!ParseScaledDecimal(digits, 2, &fen, &why)) return BadAmount(text, why);
  if (negative) fen = -fen;
  if (fen > std::numeric_limits<int64_t>::max() || fen < -std::numeric_limits<int64_t>::max()) {
    return BadAmount(text, "too large (limit 92233720368547758.07)");
  }
  return Money(static_cast<int64_t>(fen));
}

std::string Money::ToString() const {
  // Work on the unsigned magnitude so INT64_MIN cannot overflow.
  const bool negative = fen_ < 0;
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(fen_) : static_cast<uint64_t>(fen_);
  const uint64_t cents = magnitude % 100;
  return absl::StrCat(negative ? "-" : "", magnitude / 100, ".", cents < 10 ? "0" : "", cents);
}

absl::StatusOr<Money> CheckedAdd(Money a, Money b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a.fen(), b.fen(), &sum)) return Overflow("sum");
  return Money::FromFen(sum);
}

absl::StatusOr<Money> CheckedSub(Money a, Money b) {
  int64_t difference = 0;
  if (__builtin_sub_overflow(a.fen(), b.fen(), &difference)) {
    return Overflow("difference");
  }
  return Money::FromFen(difference);
}

absl::StatusOr<Rate> Rate::FromPpm(int64_t ppm) {
  if (ppm < 0 || ppm > kOne) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_rate",
                     absl::StrCat(ppm, " ppm is outside 0%..100%"));
  }
  return Rate(ppm);
}

absl::StatusOr<Rate> Rate::Parse(std::string_view text) {
  std::string why;
  Int128 ppm = 0;
  if (!text.empty() && text.back() == '%') {
    // Percent with up to four decimals: scaled by 10^4 it is already ppm.
    if (!ParseScaledDecimal(text.substr(0, text.size() - 1), 4, &ppm, &why)) {
      return BadRate(text, why);
    }
  } else if (!ParseScaledDecimal(text, 6, &ppm, &why)) {
    return BadRate(text, why + R"( (write "4%" or "0.04"))");
  }
  if (ppm > kOne) return BadRate(text, "above 100%");
  return Rate(static_cast<int64_t>(ppm));
}

std::string Rate::ToString() const {
  // ppm / 10^4 is the percentage; print only the decimals it needs.
  std::string out = absl::StrCat(ppm_ / 10'000);
  int64_t fraction = ppm_ % 10'000;
  if (fraction != 0) {
    std::string digits = absl::StrCat(fraction + 10'000).substr(1);
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    absl::StrAppend(&out, ".", digits);
  }
  out.push_back('%');
  return out;
}

Money RoundProduct(const Int128& fen_ppm, RoundingMode mode) {
  // Callers pass products of a 64-bit amount and a rate of at most 100%, or
  // sums bounded by such a product, so the quotient always fits.
  absl::StatusOr<int64_t> fen = DivideRounded(fen_ppm, kPpmPerFen, mode);
  if (!fen.ok()) std::abort();  // a broken invariant must never pay 0
  return Money::FromFen(*fen);
}

Money ApplyRate(Money base, Rate rate, RoundingMode mode) {
  return RoundProduct(ExactProduct(base, rate), mode);
}

std::string FormatExact(const Int128& fen_ppm) {
  // fen·ppm is 1e-8 yuan.
  const bool negative = fen_ppm < 0;
  Int128 magnitude = negative ? Int128(-fen_ppm) : fen_ppm;
  const Int128 unit = Int128(100) * kPpmPerFen;
  std::string whole = (magnitude / unit).str();
  std::string fraction = (magnitude % unit + unit).str().substr(1);  // 8 digits
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return absl::StrCat(negative ? "-" : "", whole, ".", fraction);
}

}  // namespace refpay
