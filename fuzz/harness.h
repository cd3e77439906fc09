// Internal: the libFuzzer harnesses as plain functions, so that the same code
// runs under libFuzzer (fuzz_main.cc, clang, -fsanitize=fuzzer) and under
// the gtest runner that replays fuzz/regressions/ and fuzz/seeds/ in the
// normal build (regressions_test.cc).
//
//   refpay::fuzz::FuzzMoney(data, size);  // aborts with a message on a bug
//
// A harness returns 0 for every input; an input that breaks an invariant
// (or crashes, or trips a sanitizer) is a bug in refpay.
#ifndef REFPAY_FUZZ_HARNESS_H_
#define REFPAY_FUZZ_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace refpay::fuzz {

// refpay::fuzz::Harness is the signature of LLVMFuzzerTestOneInput.
using Harness = int (*)(const uint8_t* data, size_t size);

// refpay::fuzz::FuzzMoney() parses Money, Rate, rounding names and
// timestamps; parsed values must round-trip through ToString().
int FuzzMoney(const uint8_t* data, size_t size);

// refpay::fuzz::FuzzPolicyJson() / FuzzPolicyToml() read a policy; a valid
// one must re-read identically from its `document` and run a few events.
int FuzzPolicyJson(const uint8_t* data, size_t size);
int FuzzPolicyToml(const uint8_t* data, size_t size);

// refpay::fuzz::FuzzEvent() parses one JSON event; a valid one must
// round-trip through EventToJson(), and an engine must take it or reject it
// without changing.
int FuzzEvent(const uint8_t* data, size_t size);

// refpay::fuzz::FuzzCase() runs an audit case document.
int FuzzCase(const uint8_t* data, size_t size);

// refpay::fuzz::FuzzEngine() decodes the bytes into a stream of events
// applied under one of a few fixed policies, checking after each event that
// a rejection changed nothing and that Snapshot/Restore round-trips.
int FuzzEngine(const uint8_t* data, size_t size);

// refpay::fuzz::kHarnesses names every harness as fuzz/CMakeLists.txt,
// scripts/fuzz.sh and fuzz/regressions/<name>/ do.
struct NamedHarness {
  const char* name;
  Harness run;
};
inline constexpr NamedHarness kHarnesses[] = {
    {"money", FuzzMoney},
    {"policy_json", FuzzPolicyJson},
    {"policy_toml", FuzzPolicyToml},
    {"event", FuzzEvent},
    {"case", FuzzCase},
    {"engine", FuzzEngine},
};

// refpay::fuzz::Fail() reports a broken invariant and aborts, so libFuzzer
// saves the input as a crash.
[[noreturn]] void Fail(std::string_view harness, std::string_view what);

}  // namespace refpay::fuzz

// REFPAY_FUZZ_CHECK(cond, harness, message) aborts via Fail() unless `cond`.
#define REFPAY_FUZZ_CHECK(cond, harness, message)                                    \
  do {                                                                               \
    if (!(cond)) ::refpay::fuzz::Fail(harness, std::string(#cond ": ") + (message)); \
  } while (false)

#endif  // REFPAY_FUZZ_HARNESS_H_
