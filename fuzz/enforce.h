// The fuzz targets' one rule: a broken invariant is a crash, so libFuzzer
// stops and saves the input (the checks are in nat/testing/fuzz_checks.h).
#ifndef NATD_FUZZ_ENFORCE_H_
#define NATD_FUZZ_ENFORCE_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace natd::fuzz {

inline void Enforce(const char* target, const std::string& error) {
  if (error.empty()) return;
  std::fprintf(stderr, "%s: invariant broken: %s\n", target, error.c_str());
  std::abort();
}

}  // namespace natd::fuzz

#endif  // NATD_FUZZ_ENFORCE_H_
