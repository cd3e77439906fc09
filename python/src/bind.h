// python/src/bind.h — what the bind_<concept>.cc files of refpay._core share.
//
// Binding convention (see docs/python.md): one bind_<header>.cc per public
// header, snake_case names, read-only properties, times as int64 Unix
// microseconds, bulk results as dicts of numpy columns, and the GIL released
// around loops over many rows. A failed absl::Status is thrown as a
// StatusError; module.cc translates it into refpay.PolicyError, EventError,
// UnknownIdError or CaseError carrying the status message and `.code`.
#ifndef REFPAY_PYTHON_BIND_H_
#define REFPAY_PYTHON_BIND_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "refpay/engine.h"

namespace refpay::python {

namespace py = pybind11;

// refpay::python::ErrorFamily says which Python exception class a failed
// status becomes (unknown_member and unknown_order always become
// UnknownIdError).
enum class ErrorFamily { kPolicy, kEvent, kCase, kSnapshot };

// refpay::python::StatusError carries a failed status out of a binding. It
// holds no Python object, so it may be thrown with the GIL released.
class StatusError : public std::runtime_error {
 public:
  StatusError(absl::Status status, ErrorFamily family)
      : std::runtime_error(std::string(status.message())),
        status_(std::move(status)),
        family_(family) {}
  const absl::Status& status() const { return status_; }
  ErrorFamily family() const { return family_; }

 private:
  absl::Status status_;
  ErrorFamily family_;
};

// refpay::python::ThrowIfError() throws a StatusError unless `status` is OK.
inline void ThrowIfError(absl::Status status, ErrorFamily family) {
  if (!status.ok()) throw StatusError(std::move(status), family);
}

// refpay::python::ValueOrThrow() unwraps a StatusOr or throws a StatusError.
template <typename T>
T ValueOrThrow(absl::StatusOr<T> result, ErrorFamily family) {
  if (!result.ok()) throw StatusError(std::move(result).status(), family);
  return *std::move(result);
}

// refpay::python::ToNumpy() hands a vector to numpy without copying it: the
// array owns the vector through a capsule.
template <typename T>
py::array_t<T> ToNumpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(), owner);
}

// refpay::python::TotalsColumnsOf() is MemberTotals as a dict of numpy
// columns pending, frozen, available, held.
py::dict TotalsColumnsOf(MemberTotals totals);

// refpay::python::TableColumnsOf() is LedgerColumns as a dict of numpy
// columns order, member, kind, amount, rule_amount, status, action,
// clawback, and the list kind_names.
py::dict TableColumnsOf(LedgerColumns table);

void BindMoney(py::module_& m);
void BindPolicy(py::module_& m);
void BindEngine(py::module_& m);
void BindBatch(py::module_& m);
void BindCase(py::module_& m);

}  // namespace refpay::python

#endif  // REFPAY_PYTHON_BIND_H_
