// libFuzzer target: natd::testing::CheckPacketView (nat/testing/fuzz_checks.h) on each input.
#include <cstddef>
#include <cstdint>

#include "fuzz/enforce.h"
#include "nat/testing/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  natd::fuzz::Enforce("packet_view_fuzz", natd::testing::CheckPacketView(data, size));
  return 0;
}
