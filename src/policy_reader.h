// Internal: turns a policy document (JSON, or TOML converted to the same
// tree) into a Policy, collecting every problem as a LintFinding so that
// lint can show them all and Policy::FromJson can fail on the first.
#ifndef REFPAY_SRC_POLICY_READER_H_
#define REFPAY_SRC_POLICY_READER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "json_util.h"
#include "refpay/lint.h"
#include "refpay/policy.h"

namespace refpay::internal {

// Reads `document` into a policy; problems are appended to `findings`. The
// returned policy is meaningful only when no error finding was added.
Policy ReadPolicy(const Json& document, std::vector<LintFinding>* findings);

// Parses TOML text into the JSON data model, keeping each table's keys in
// the order they were written.
absl::StatusOr<Json> TomlToJson(std::string_view text);

// Parses policy text of either format into the JSON data model.
absl::StatusOr<Json> ParsePolicyText(std::string_view text, PolicyFormat format);

// The format a file name implies: .toml is TOML, anything else JSON.
PolicyFormat FormatOfPath(std::string_view path);

// Reads a whole file; NotFound / reason io_error when it cannot.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace refpay::internal

#endif  // REFPAY_SRC_POLICY_READER_H_
