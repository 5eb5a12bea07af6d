#include <cstdio>
#include <ctime>

#include "nat/mapping_table.h"

namespace natd {
uint64_t RandomTableHashSeed() {
  uint64_t seed = 0;
  if (FILE* f = std::fopen("/dev/urandom", "rb")) {
    if (std::fread(&seed, sizeof seed, 1, f) != 1) seed = 0;
    std::fclose(f);
  }
  if (seed == 0) seed = uint64_t(std::time(nullptr)) * 0x9e3779b97f4a7c15ull;
  return seed;
}

}  // namespace natd
