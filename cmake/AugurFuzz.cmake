# Flags for the libFuzzer build (-DAUGUR_FUZZ=ON, `make fuzz`, docs/TESTING.md).
#
# Why clang-16 for everything, not GCC for the code under test: libFuzzer is guided by the
# coverage that clang's -fsanitize=fuzzer(-no-link) emits (inline 8-bit counters, a PC table
# and comparison tracing). GCC 12 emits only -fsanitize-coverage=trace-pc / trace-cmp, and
# libFuzzer dropped trace-pc support: GCC-built code would run but guide nothing (the
# fuzzer would then be a random byte generator). So the code under test must be built by
# clang.
#
# Why clang-16 and a __cpp_concepts override: augur::Result is std::expected, which
# libstdc++ 12's <expected> hides unless __cpp_concepts >= 202002L. Debian 12's clang 14, 15
# and 16 all define 201907L. What <expected> really needs from that check is P0848
# (conditionally trivial special member functions, i.e. several destructors told apart by
# requires-clauses), which clang implements from 16 on; clang 16 leaves the macro low only
# for other, unrelated parts of the paper set. With the macro raised, clang 16 compiles
# <expected> correctly (expected<int,int> is trivially destructible, expected<string,int>
# is not: checked when configuring, below); clang 14 rejects the same code ("attempt to use
# a deleted function"), so 14 cannot be used even with the override.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  message(FATAL_ERROR "AUGUR_FUZZ needs clang >= 16 as the C++ compiler "
          "(apt-get install clang-16 libclang-rt-16-dev; -DCMAKE_CXX_COMPILER=clang++-16), "
          "not ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
endif()
if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "AUGUR_FUZZ needs clang as the C compiler too (-DCMAKE_C_COMPILER=clang-16)")
endif()

include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-std=c++2b -U__cpp_concepts -D__cpp_concepts=202002L")
check_cxx_source_compiles([=[
#include <expected>
#include <string>
#include <type_traits>
static_assert(std::is_trivially_destructible_v<std::expected<int, int>>);
static_assert(!std::is_trivially_destructible_v<std::expected<std::string, int>>);
std::expected<std::string, int> F(int x) { if (x) return "a"; return std::unexpected(x); }
int main() { return F(1)->size() == 1 ? 0 : 1; }
]=] AUGUR_FUZZ_EXPECTED_WORKS)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT AUGUR_FUZZ_EXPECTED_WORKS)
  message(FATAL_ERROR "${CMAKE_CXX_COMPILER} cannot compile libstdc++'s <expected> even with "
          "__cpp_concepts raised; use clang >= 16")
endif()

# Everything built in this tree gets coverage for libFuzzer plus ASan and UBSan, so a
# fuzzer finds out-of-bounds reads and undefined behaviour, not only crashes. The fuzz
# targets themselves link -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt).
set(AUGUR_FUZZ_SANITIZERS address,undefined)
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-U__cpp_concepts>
                    $<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>
                    -fsanitize=fuzzer-no-link,${AUGUR_FUZZ_SANITIZERS}
                    -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_link_options(-fsanitize=${AUGUR_FUZZ_SANITIZERS})
