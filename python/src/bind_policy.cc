// python/src/bind_policy.cc — refpay/policy.h and refpay/lint.h: Policy
// (parsed and validated) and LintFinding.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind.h"
#include "refpay/lint.h"
#include "refpay/money.h"
#include "refpay/policy.h"

namespace refpay::python {

void BindPolicy(py::module_& m) {
  py::class_<LintFinding>(m, "LintFinding", "One problem lint found in a policy.")
      .def_readonly("code", &LintFinding::code, "\"tier_gap\", \"paid_depth\", …")
      .def_property_readonly(
          "severity", [](const LintFinding& f) { return SeverityName(f.severity); },
          "\"warning\" or \"error\".")
      .def_readonly("path", &LintFinding::path, "The key path, \"\" for the whole policy.")
      .def_readonly("message", &LintFinding::message, "What is wrong and what to write instead.")
      .def("__repr__", [](const LintFinding& f) {
        return std::string("<LintFinding ") + SeverityName(f.severity) + " " + f.code + " " +
               f.path + ">";
      });

  py::class_<Policy>(m, "Policy", "A validated payout policy (SPEC §3).")
      .def_static(
          "from_json",
          [](const std::string& text) {
            return ValueOrThrow(Policy::FromJson(text), ErrorFamily::kPolicy);
          },
          py::arg("text"),
          "Policy.from_json(text) parses a JSON policy. Raises PolicyError naming the key path.")
      .def_static(
          "from_toml",
          [](const std::string& text) {
            return ValueOrThrow(Policy::FromToml(text), ErrorFamily::kPolicy);
          },
          py::arg("text"),
          "Policy.from_toml(text) parses a TOML policy. Raises PolicyError naming the key path.")
      .def_static(
          "from_file",
          [](const std::string& path) {
            return ValueOrThrow(Policy::FromFile(path), ErrorFamily::kPolicy);
          },
          py::arg("path"),
          "Policy.from_file(path) reads a .json or .toml file. Raises PolicyError.")
      .def_readonly("name", &Policy::name)
      .def_readonly("currency", &Policy::currency)
      .def_readonly("timezone", &Policy::timezone_name)
      .def_readonly("rounding", &Policy::rounding)
      .def_readonly("hold_days", &Policy::hold_days)
      .def("lint", &LintPolicy,
           "policy.lint() reports the SPEC §7 warnings of this (valid) policy.");

  m.def("lint_file", &LintFile, py::arg("path"),
        "lint_file(path) lints a .json or .toml policy file: every error and warning, "
        "in document order; an unreadable file is an io_error finding.");
}

}  // namespace refpay::python
