#include "mesh/log_rate_limiter.h"

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(LogRateLimiter, OneLinePerKeyPerIntervalCountingTheRest) {
  LogRateLimiter lim(10 * kSec);
  uint64_t suppressed = 99;
  EXPECT_TRUE(lim.Allow(1, 0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 1; i <= 500; ++i) EXPECT_FALSE(lim.Allow(1, i * 1'000'000, &suppressed));
  // Another key has its own budget.
  EXPECT_TRUE(lim.Allow(2, 5 * kSec, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(lim.Allow(1, 10 * kSec - 1, &suppressed));
  EXPECT_TRUE(lim.Allow(1, 10 * kSec, &suppressed));
  EXPECT_EQ(suppressed, 501u);
  EXPECT_FALSE(lim.Allow(1, 11 * kSec, &suppressed));
  EXPECT_TRUE(lim.Allow(1, 25 * kSec, &suppressed));
  EXPECT_EQ(suppressed, 1u);
}

}  // namespace
}  // namespace augur::mesh
