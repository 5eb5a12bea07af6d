// libFuzzer target: natd::testing::CheckTranslate (nat/testing/fuzz_checks.h) on each input.
#include <cstddef>
#include <cstdint>

#include "fuzz/enforce.h"
#include "nat/testing/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  natd::fuzz::Enforce("translate_fuzz", natd::testing::CheckTranslate(data, size));
  return 0;
}
