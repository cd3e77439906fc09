// The libFuzzer entry point of one harness; fuzz/CMakeLists.txt compiles
// this file once per harness with REFPAY_FUZZ_HARNESS set to its function.
#include <cstddef>
#include <cstdint>

#include "harness.h"

#ifndef REFPAY_FUZZ_HARNESS
#error "define REFPAY_FUZZ_HARNESS to one of the functions in harness.h"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return refpay::fuzz::REFPAY_FUZZ_HARNESS(data, size);
}
