// python/src/bind_money.cc — refpay/money.h: Money, Rate, RoundingMode,
// apply_rate, and the exact parsing of a whole column of amounts.
#include <pybind11/native_enum.h>
#include <pybind11/operators.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bind.h"
#include "refpay/money.h"
#include "refpay/status.h"

namespace refpay::python {
namespace {

absl::Status BadAmount(const std::string& message) {
  return MakeError(absl::StatusCode::kInvalidArgument, "bad_amount", message);
}

// One cell of an amount column, read like a JSON money value (SPEC §1): a
// decimal string, or an integer number of yuan. Floats and booleans are
// refused; anything else (a decimal.Decimal) is read through str().
absl::StatusOr<Money> MoneyOfCell(py::handle cell) {
  if (cell.is_none()) return BadAmount("missing amount");
  if (py::isinstance<py::str>(cell)) return Money::Parse(cell.cast<std::string>());
  if (py::isinstance<py::bool_>(cell)) {
    return BadAmount(
        "money must be a string like \"199.00\" or an integer number of yuan, "
        "not a boolean");
  }
  if (py::isinstance<py::int_>(cell)) {
    int overflow = 0;
    const long long yuan = PyLong_AsLongLongAndOverflow(cell.ptr(), &overflow);
    if (overflow == 0) {
      absl::StatusOr<Money> money = Money::FromYuan(yuan);
      if (money.ok()) return money;
    }
    return BadAmount(absl::StrCat(std::string(py::str(cell)), " yuan is too large"));
  }
  if (py::isinstance<py::float_>(cell)) {
    return BadAmount(absl::StrCat(
        "money must be a string like \"199.00\" or an integer number of yuan, not a float ",
        std::string(py::repr(cell))));
  }
  return Money::Parse(std::string(py::str(cell)));
}

// parse_money_column(): every cell to fen, or a bad_amount error naming the
// first bad cell as `column[row]`.
py::array_t<int64_t> ParseMoneyColumn(const py::iterable& cells, const std::string& column) {
  std::vector<int64_t> fen;
  for (py::handle cell : cells) {
    absl::StatusOr<Money> money = MoneyOfCell(cell);
    if (!money.ok()) {
      throw StatusError(MakeError(money.status().code(), ErrorCodeOf(money.status()),
                                  absl::StrCat(column, "[", fen.size(),
                                               "]: ", std::string(money.status().message()))),
                        ErrorFamily::kEvent);
    }
    fen.push_back(money->fen());
  }
  return ToNumpy(std::move(fen));
}

}  // namespace

void BindMoney(py::module_& m) {
  py::native_enum<RoundingMode>(m, "RoundingMode", "enum.Enum",
                                "How an exact amount becomes whole fen (names as in "
                                "Python's decimal module).")
      .value("HALF_UP", RoundingMode::kHalfUp, "ties away from zero (四舍五入), ROUND_HALF_UP")
      .value("HALF_EVEN", RoundingMode::kHalfEven, "ties to the even fen, ROUND_HALF_EVEN")
      .value("DOWN", RoundingMode::kDown, "toward zero (truncate), ROUND_DOWN")
      .finalize();

  py::class_<Money>(m, "Money",
                    "An exact amount of money in fen (0.01 yuan).\n\n"
                    ">>> str(Money.parse('4999.99'))\n'4999.99'")
      .def_static(
          "parse",
          [](const std::string& text) {
            return ValueOrThrow(Money::Parse(text), ErrorFamily::kEvent);
          },
          py::arg("text"),
          "Money.parse(text) reads a decimal string with at most two decimals "
          "(\"199.00\", \"50\", \"-5\"). Raises EventError (code bad_amount).")
      .def_static("from_fen", &Money::FromFen, py::arg("fen"), "Money.from_fen(n) wraps n fen.")
      .def_property_readonly("fen", &Money::fen, "The amount in fen (int).")
      .def("__str__", &Money::ToString)
      .def("__repr__", [](const Money& money) { return "Money('" + money.ToString() + "')"; })
      .def("__hash__", [](const Money& money) { return py::hash(py::int_(money.fen())); })
      .def(py::self == py::self)
      .def(py::self != py::self)
      .def(py::self < py::self)
      .def(py::self <= py::self)
      .def(py::self > py::self)
      .def(py::self >= py::self);

  py::class_<Rate>(m, "Rate",
                   "An exact, non-negative rate in parts per million.\n\n"
                   ">>> Rate.parse('12.5%').ppm\n125000")
      .def_static(
          "parse",
          [](const std::string& text) {
            return ValueOrThrow(Rate::Parse(text), ErrorFamily::kPolicy);
          },
          py::arg("text"),
          "Rate.parse(text) reads \"4%\", \"12.5%\" or a fraction \"0.04\". Raises "
          "PolicyError (code bad_rate).")
      .def_static(
          "from_ppm",
          [](int64_t ppm) { return ValueOrThrow(Rate::FromPpm(ppm), ErrorFamily::kPolicy); },
          py::arg("ppm"), "Rate.from_ppm(n) wraps n parts per million (0 to 1,000,000).")
      .def_property_readonly("ppm", &Rate::ppm, "The rate in parts per million (int).")
      .def("__str__", &Rate::ToString)
      .def("__repr__", [](const Rate& rate) { return "Rate('" + rate.ToString() + "')"; })
      .def("__hash__", [](const Rate& rate) { return py::hash(py::int_(rate.ppm())); })
      .def(py::self == py::self)
      .def(py::self != py::self)
      .def(py::self < py::self)
      .def(py::self <= py::self)
      .def(py::self > py::self)
      .def(py::self >= py::self);

  m.def("apply_rate", &ApplyRate, py::arg("base"), py::arg("rate"),
        py::arg("rounding") = RoundingMode::kHalfUp,
        "apply_rate(base, rate, rounding=RoundingMode.HALF_UP) is base × rate rounded "
        "once to fen: apply_rate(Money.parse('4999.99'), Rate.parse('5%')) is 250.00.");
  m.def("parse_money_column", &ParseMoneyColumn, py::arg("cells"), py::arg("column"),
        "parse_money_column(cells, column) reads decimal strings (or integer yuan) "
        "into an int64 array of fen. Raises EventError (bad_amount) naming column[row].");
}

}  // namespace refpay::python
