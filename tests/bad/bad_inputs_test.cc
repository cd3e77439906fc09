// The bad-input catalogue: every malformed policy, event and audit case in
// the manifests next to this file (policies.jsonl, events.jsonl,
// cases.jsonl) must be rejected with its expected reason token and a
// message naming the field, path or line. Each manifest line is one ctest.
//
// A manifest line is a JSON object:
//   name      test name (letters, digits, _)
//   input     the document: a JSON value (written as is) or a string (the
//             raw text, for syntax errors and TOML)
//   input_latin1  instead of input: a string whose code points 0-255 are
//             the bytes (for invalid UTF-8)
//   input_gen instead of input: {"prefix", "repeat", "times", "middle",
//             "repeat_after", "suffix"}, giving prefix + repeat×times +
//             middle + repeat_after×times + suffix (deep nesting, huge
//             arrays, long ids)
//   format    policies only: "json" (default) or "toml"
//   policy    events only: a policy object replacing the default one
//   code      the expected reason token (refpay::ErrorCodeOf)
//   message   a fragment the error message must contain
// Events are applied after a fixed prelude of valid events, and the
// engine's Snapshot() must be the same before and after the rejection.
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "refpay/case.h"
#include "refpay/engine.h"
#include "refpay/policy.h"
#include "refpay/status.h"

namespace refpay {
namespace {

using Json = nlohmann::ordered_json;

struct Entry {
  std::string name;
  std::string input;
  std::string format;
  std::string code;
  std::string message;
  std::string policy;  // events only: replaces kEventPolicy when set
  int line = 0;
};

// gtest prints a parameter on failure; the name says which line it is.
void PrintTo(const Entry& entry, std::ostream* os) { *os << entry.name; }

std::string Repeat(const std::string& s, int64_t n) {
  std::string out;
  for (int64_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string InputOf(const Json& line) {
  if (auto it = line.find("input_latin1"); it != line.end()) {
    std::string bytes;
    const std::string utf8 = it->get<std::string>();
    for (size_t i = 0; i < utf8.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(utf8[i]);
      if (c < 0x80) {
        bytes.push_back(static_cast<char>(c));
      } else {  // two-byte UTF-8 for U+0080..U+00FF
        bytes.push_back(static_cast<char>(((c & 0x1F) << 6) | (utf8[++i] & 0x3F)));
      }
    }
    return bytes;
  }
  if (auto it = line.find("input_gen"); it != line.end()) {
    const Json& g = *it;
    const int64_t times = g.value("times", int64_t{1});
    return g.value("prefix", "") + Repeat(g.value("repeat", ""), times) + g.value("middle", "") +
           Repeat(g.value("repeat_after", ""), times) + g.value("suffix", "");
  }
  const Json& input = line.at("input");
  return input.is_string() ? input.get<std::string>() : input.dump();
}

std::vector<Entry> Load(const char* manifest) {
  std::vector<Entry> entries;
  std::ifstream in(std::string(REFPAY_BAD_DIR) + "/" + manifest);
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.empty() || text[0] == '#') continue;
    const Json line = Json::parse(text);
    entries.push_back({line.at("name").get<std::string>(), InputOf(line),
                       line.value("format", "json"), line.at("code").get<std::string>(),
                       line.at("message").get<std::string>(),
                       line.contains("policy") ? line.at("policy").dump() : "", number});
  }
  return entries;
}

std::string NameOf(const ::testing::TestParamInfo<Entry>& info) { return info.param.name; }

void ExpectRejected(const absl::Status& status, const Entry& entry) {
  ASSERT_FALSE(status.ok()) << "accepted: " << entry.input.substr(0, 300);
  EXPECT_EQ(ErrorCodeOf(status), entry.code) << status.message();
  EXPECT_NE(std::string(status.message()).find(entry.message), std::string::npos)
      << "message \"" << status.message() << "\" lacks \"" << entry.message << "\"";
}

// ---- Policies ---------------------------------------------------------------

class BadPolicy : public ::testing::TestWithParam<Entry> {};

TEST_P(BadPolicy, IsRejectedWithItsPath) {
  const Entry& entry = GetParam();
  SCOPED_TRACE(absl::StrCat("policies.jsonl:", entry.line));
  ASSERT_TRUE(entry.format == "json" || entry.format == "toml") << entry.format;
  ExpectRejected(
      (entry.format == "toml" ? Policy::FromToml(entry.input) : Policy::FromJson(entry.input))
          .status(),
      entry);
  // lint reports the same problem among its findings.
  bool found = false;
  for (const LintFinding& f :
       LintText(entry.input, entry.format == "toml" ? PolicyFormat::kToml : PolicyFormat::kJson)) {
    found |= f.severity == Severity::kError && f.code == entry.code;
  }
  EXPECT_TRUE(found) << "lint does not report " << entry.code;
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadPolicy, ::testing::ValuesIn(Load("policies.jsonl")), NameOf);

// ---- Events -----------------------------------------------------------------

constexpr const char* kEventPolicy =
    R"({"levels": [{"fixed": "20.00"}, {"rate": "5%"}], "leader": {"fixed": "10.00"},
        "binding": {"mode": "protected", "protection_days": 30}})";

// A, B under A, C under B; A leads; o1 by C (open), o2 by C (fully
// refunded), event_id e1 applied. Everything happens on 2026-03-01 (+08:00).
constexpr const char* kPrelude[] = {
    R"({"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"})",
    R"({"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:01:00+08:00"})",
    R"({"type": "join", "member": "C", "inviter": "B", "at": "2026-03-01T09:02:00+08:00"})",
    R"({"type": "set_role", "member": "A", "role": "leader", "at": "2026-03-01T09:03:00+08:00"})",
    R"({"type": "order", "id": "o1", "buyer": "C", "amount": "100.00", "at": "2026-03-01T10:00:00+08:00"})",
    R"({"type": "order", "id": "o2", "buyer": "C", "amount": "50", "at": "2026-03-01T10:01:00+08:00"})",
    R"({"type": "refund", "order": "o2", "at": "2026-03-01T10:02:00+08:00"})",
    R"({"type": "confirm", "order": "o1", "at": "2026-03-01T10:03:00+08:00", "event_id": "e1"})",
};

class BadEvent : public ::testing::TestWithParam<Entry> {};

TEST_P(BadEvent, IsRejectedAndChangesNothing) {
  const Entry& entry = GetParam();
  SCOPED_TRACE(absl::StrCat("events.jsonl:", entry.line));
  absl::StatusOr<Policy> policy =
      Policy::FromJson(entry.policy.empty() ? kEventPolicy : entry.policy);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Engine engine(*std::move(policy));
  for (const char* event : kPrelude) ASSERT_TRUE(engine.ApplyJson(event).ok()) << event;
  const std::string before = engine.Snapshot();
  ExpectRejected(engine.ApplyJson(entry.input), entry);
  EXPECT_TRUE(engine.Snapshot() == before) << "the rejected event changed the engine";
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadEvent, ::testing::ValuesIn(Load("events.jsonl")), NameOf);

// ---- Audit cases --------------------------------------------------------------

class BadCase : public ::testing::TestWithParam<Entry> {};

TEST_P(BadCase, IsRejected) {
  const Entry& entry = GetParam();
  SCOPED_TRACE(absl::StrCat("cases.jsonl:", entry.line));
  ExpectRejected(RunCaseText(entry.input, REFPAY_BAD_DIR).status(), entry);
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadCase, ::testing::ValuesIn(Load("cases.jsonl")), NameOf);

}  // namespace
}  // namespace refpay
