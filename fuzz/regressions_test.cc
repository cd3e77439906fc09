// Replays every saved fuzz input through its harness in the normal build:
// fuzz/regressions/<harness>/ (inputs that once crashed refpay, kept so the
// bug stays fixed) and fuzz/seeds/<harness>/ (the hand-written seeds). A
// broken invariant aborts the test, as it would abort libFuzzer.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"

namespace refpay::fuzz {
namespace {

std::vector<std::filesystem::path> InputsOf(const std::string& harness) {
  std::vector<std::filesystem::path> files;
  for (const char* kind : {"regressions", "seeds"}) {
    const std::filesystem::path dir = std::filesystem::path(REFPAY_FUZZ_DIR) / kind / harness;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

class FuzzRegressions : public ::testing::TestWithParam<NamedHarness> {};

TEST_P(FuzzRegressions, ReplaysSavedInputs) {
  const NamedHarness& harness = GetParam();
  const std::vector<std::filesystem::path> files = InputsOf(harness.name);
  EXPECT_FALSE(files.empty()) << "no seeds or regressions for " << harness.name;
  for (const std::filesystem::path& file : files) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    ASSERT_TRUE(in) << "cannot read " << file;
    std::ostringstream content;
    content << in.rdbuf();
    const std::string bytes = content.str();
    EXPECT_EQ(harness.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Harnesses, FuzzRegressions, ::testing::ValuesIn(kHarnesses),
                         [](const ::testing::TestParamInfo<NamedHarness>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace refpay::fuzz
