#include "forecast/candidates.h"

#include <gtest/gtest.h>

#include <cmath>

#include "forecast/history.h"

namespace augur::forecast {
namespace {

// history[i] = v(i) for i in [0, n); Back(0) is the newest, v(n-1).
template <typename F>
History Fill(int n, F v) {
  History h(1024);
  for (int i = 0; i < n; ++i) h.Push(v(i), true);
  return h;
}

TEST(CandidatesTest, SeasonalMedianIgnoresOneUnusualCycle) {
  constexpr int kP = 10;
  // Five cycles of a ramp 0..9; the third-newest cycle is 100 higher (a bad day).
  History h = Fill(5 * kP, [](int i) { return (i % kP) + (i / kP == 2 ? 100.0 : 0.0); });
  for (int ahead = 1; ahead <= kP; ++ahead) {
    const double want = (5 * kP - 1 + ahead) % kP;
    EXPECT_DOUBLE_EQ(SeasonalMedian(h, kP, ahead, 5, 3, 0), want) << ahead;
    // The seasonal mean of the same cycles is pulled up by the bad one.
    EXPECT_GT(SeasonalMean(h, kP, ahead, 5, 1.0, 0), want + 10) << ahead;
  }
  // Neighbours: on the ramp the phase +-1 values average out to the phase itself, and the
  // median over 5 cycles x 3 phases still ignores the bad cycle.
  EXPECT_DOUBLE_EQ(SeasonalMedian(h, kP, 5, 5, 3, 1), (5 * kP - 1 + 5) % kP);
}

TEST(CandidatesTest, SeasonalMedianNeedsEnoughCycles) {
  History h = Fill(25, [](int i) { return i % 10; });
  EXPECT_TRUE(std::isfinite(SeasonalMedian(h, 10, 1, 5, 2, 0)));   // two whole cycles back
  EXPECT_TRUE(std::isnan(SeasonalMedian(h, 10, 1, 5, 3, 0)));      // three needed
  EXPECT_TRUE(std::isnan(SeasonalMedian(h, 0, 1, 5, 1, 0)));       // no period
  // A target more than one period ahead reaches back whole cycles from the target.
  EXPECT_DOUBLE_EQ(SeasonalMedian(h, 10, 12, 5, 1, 0), (24 + 12) % 10);
}

}  // namespace
}  // namespace augur::forecast
