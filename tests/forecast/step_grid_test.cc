#include "forecast/step_grid.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace augur::forecast {
namespace {

TEST(StepGridTest, AveragesSamplesWithinAStep) {
  StepGrid g(60, 100);
  std::vector<GridPoint> out;
  EXPECT_EQ(g.Add(600, 1.0, &out), DropReason::kNone);
  EXPECT_EQ(g.Add(630, 3.0, &out), DropReason::kNone);
  EXPECT_TRUE(out.empty());  // the step is still open
  EXPECT_EQ(g.Add(660, 10.0, &out), DropReason::kNone);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].step, 10);
  EXPECT_DOUBLE_EQ(out[0].value, 2.0);
  EXPECT_TRUE(out[0].observed);
  EXPECT_EQ(g.counters().accepted, 3u);
}

TEST(StepGridTest, FillsGapsByInterpolationAndMarksThem) {
  StepGrid g(10, 100);
  std::vector<GridPoint> out;
  g.Add(0, 0.0, &out);
  g.Add(40, 4.0, &out);   // closes step 0; steps 1..3 are missing
  g.Add(50, 5.0, &out);   // closes step 4, filling 1..3
  ASSERT_EQ(out.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(out[i].step, i);
    EXPECT_DOUBLE_EQ(out[i].value, i);
    EXPECT_EQ(out[i].observed, i == 0 || i == 4);
  }
  EXPECT_EQ(g.counters().imputed_steps, 3u);
}

TEST(StepGridTest, LongGapIsABreakNotAFill) {
  StepGrid g(10, 5);
  std::vector<GridPoint> out;
  g.Add(0, 1.0, &out);
  g.Add(1000, 2.0, &out);
  g.Add(1010, 3.0, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].step, 100);
  EXPECT_TRUE(out[1].after_break);
  EXPECT_EQ(g.counters().breaks, 1u);
  EXPECT_EQ(g.counters().imputed_steps, 0u);
}

TEST(StepGridTest, DropsNonFiniteAndOutOfOrderAndCountsThem) {
  StepGrid g(10, 100);
  std::vector<GridPoint> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(g.Add(5, nan, &out), DropReason::kNonFinite);
  EXPECT_EQ(g.Add(5, inf, &out), DropReason::kNonFinite);
  EXPECT_EQ(g.Add(nan, 1.0, &out), DropReason::kNonFinite);
  EXPECT_EQ(g.Add(20, 1.0, &out), DropReason::kNone);
  EXPECT_EQ(g.Add(15, 1.0, &out), DropReason::kOutOfOrder);
  EXPECT_EQ(g.Add(20, 1.0, &out), DropReason::kOutOfOrder);  // duplicate timestamp
  EXPECT_EQ(g.counters().dropped_nonfinite, 3u);
  EXPECT_EQ(g.counters().dropped_out_of_order, 2u);
  EXPECT_EQ(g.counters().accepted, 1u);
}

TEST(StepGridTest, AdvanceToClosesTheOpenStepAndLateSamplesAreDropped) {
  StepGrid g(10, 100);
  std::vector<GridPoint> out;
  g.Add(21, 7.0, &out);
  g.AdvanceTo(29.9, &out);
  EXPECT_TRUE(out.empty());
  g.AdvanceTo(30, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].step, 2);
  EXPECT_EQ(g.Add(25, 1.0, &out), DropReason::kOutOfOrder);  // its step is closed
  EXPECT_EQ(g.Add(31, 1.0, &out), DropReason::kNone);
}

TEST(StepGridTest, SaveLoadRoundTrip) {
  StepGrid g(10, 100);
  std::vector<GridPoint> out;
  g.Add(0, 1.0, &out);
  g.Add(12, 2.0, &out);
  StateWriter w;
  g.Save(&w);
  StepGrid h(10, 100);
  StateReader r(w.data());
  h.Load(&r);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<GridPoint> a, b;
  g.Add(25, 3.0, &a);
  h.Add(25, 3.0, &b);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a[0].step, b[0].step);
  EXPECT_EQ(a[0].value, b[0].value);
}

}  // namespace
}  // namespace augur::forecast
