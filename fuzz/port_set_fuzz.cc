// libFuzzer target: natd::testing::CheckPortSet (nat/testing/fuzz_checks.h) on each input.
#include <cstddef>
#include <cstdint>

#include "fuzz/enforce.h"
#include "nat/testing/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  natd::fuzz::Enforce("port_set_fuzz", natd::testing::CheckPortSet(data, size));
  return 0;
}
