// python/src/bind_case.cc — refpay/case.h: run audit cases (SPEC §8).
#include <pybind11/stl.h>

#include <string>

#include "bind.h"
#include "refpay/case.h"

namespace refpay::python {

void BindCase(py::module_& m) {
  py::class_<CaseResult>(m, "CaseResult", "A case's outcome compared with its expectations.")
      .def_readonly("name", &CaseResult::name)
      .def_readonly("passed", &CaseResult::passed)
      .def_readonly("diff", &CaseResult::diff, "One readable line per difference.")
      .def(
          "outcome_json",
          [](const CaseResult& result, int indent) { return result.outcome.ToJson(indent); },
          py::arg("indent") = -1,
          "The computed outcome as JSON in the `expect` shape (indent -1: one line).");

  m.def(
      "check_case_file",
      [](const std::string& path) { return ValueOrThrow(CheckCaseFile(path), ErrorFamily::kCase); },
      py::arg("path"),
      "check_case_file(path) reads and runs one case file. Raises CaseError (bad_case) "
      "for a malformed case.");
  m.def(
      "run_case_text",
      [](const std::string& json, const std::string& base_dir) {
        return ValueOrThrow(RunCaseText(json, base_dir), ErrorFamily::kCase);
      },
      py::arg("json"), py::arg("base_dir"),
      "run_case_text(json, base_dir) runs a case document; base_dir resolves its "
      "policy_file. Raises CaseError (bad_case).");
}

}  // namespace refpay::python
