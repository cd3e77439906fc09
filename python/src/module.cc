// python/src/module.cc — refpay._core: the compiled half of the refpay package.
//
// Defines the module, registers the translator that turns a StatusError into
// the Python exception classes of refpay/_errors.py, and calls one Bind*()
// per public header.
#include <exception>
#include <string>

#include "bind.h"
#include "refpay/status.h"

namespace refpay::python {
namespace {

// The refpay._errors class a failed status becomes.
const char* ExceptionClassName(ErrorFamily family, const std::string& code) {
  if (code == "unknown_member" || code == "unknown_order") return "UnknownIdError";
  switch (family) {
    case ErrorFamily::kPolicy:
      return "PolicyError";
    case ErrorFamily::kEvent:
      return "EventError";
    case ErrorFamily::kCase:
      return "CaseError";
    case ErrorFamily::kSnapshot:
      return "SnapshotError";
  }
  return "RefpayError";
}

void TranslateStatusError(std::exception_ptr thrown) {
  try {
    if (thrown) std::rethrow_exception(thrown);
  } catch (const StatusError& error) {
    try {
      const std::string code = ErrorCodeOf(error.status());
      py::object cls =
          py::module_::import("refpay._errors").attr(ExceptionClassName(error.family(), code));
      py::object exception = cls(std::string(error.status().message()), code);
      PyErr_SetObject(cls.ptr(), exception.ptr());
    } catch (py::error_already_set& failed) {
      failed.restore();
    }
  }
}

}  // namespace
}  // namespace refpay::python

PYBIND11_MODULE(_core, m) {
  using namespace refpay::python;
  m.doc() =
      "refpay._core: bindings of the refpay C++ engine. Use the typed `refpay` "
      "package instead of this module.";
  py::register_exception_translator(&TranslateStatusError);
  BindMoney(m);
  BindPolicy(m);
  BindEngine(m);
  BindBatch(m);
  BindCase(m);
}
