// What the fuzz targets share (tests/fuzz/CMakeLists.txt): Require, which stops the run on a
// broken invariant, naming the target (AUGUR_FUZZ_TARGET, set by augur_fuzz_target) and what
// broke; libFuzzer reports the abort as a crash and keeps the input.
#ifndef AUGUR_TESTS_FUZZ_FUZZ_CHECK_H_
#define AUGUR_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace augur::fuzz {

inline void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "%s: %s\n", AUGUR_FUZZ_TARGET, what);
    std::abort();
  }
}

}  // namespace augur::fuzz

#endif  // AUGUR_TESTS_FUZZ_FUZZ_CHECK_H_
