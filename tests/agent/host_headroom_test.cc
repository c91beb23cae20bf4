// HostHeadroom (agent/host_headroom.h): the forecast of free room per horizon that the engine
// admits shards against.
#include "agent/host_headroom.h"

#include <gtest/gtest.h>

namespace augur::agent {
namespace {

using telemetry::SeriesKey;

TEST(HostHeadroomTest, EachHorizonForecastForBothIsOneStepOfTheCurve) {
  HostHeadroom h(8, 60);
  auto mem = [&](const char* horizon, double v) {
    h.Observe(SeriesKey("memory_bytes:forecast_lo80", {{"kind", "available"}, {"horizon", horizon}}),
              v);
  };
  auto busy = [&](const char* horizon, double v) {
    h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80",
                        {{"cpu", "all"}, {"horizon", horizon}}),
              v);
  };
  EXPECT_TRUE(h.FreeByHorizon().empty()) << "nothing forecast yet";
  h.Observe(SeriesKey("memory_bytes:forecast_lo80", {{"kind", "free"}, {"horizon", "1"}}), 1);
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80", {{"cpu", "3"}, {"horizon", "1"}}),
            100);
  EXPECT_TRUE(h.FreeByHorizon().empty()) << "other kinds and single CPUs are not the host's";
  mem("15", 1e9);
  mem("1", 6e9);
  mem("bad", 1);  // not a horizon: ignored
  busy("1", 1);
  busy("15", 7);
  busy("5", 2);  // no memory forecast at 5: not on the curve
  auto curve = h.FreeByHorizon();
  ASSERT_EQ(curve.size(), 2u);
  EXPECT_DOUBLE_EQ(curve[0].ahead_s, 60);
  EXPECT_DOUBLE_EQ(curve[0].free.cpu, 7);
  EXPECT_EQ(curve[0].free.memory, 6'000'000'000u);
  EXPECT_DOUBLE_EQ(curve[1].ahead_s, 900);
  EXPECT_DOUBLE_EQ(curve[1].free.cpu, 1);
  EXPECT_EQ(curve[1].free.memory, 1'000'000'000u);
  // The optimistic edges, where forecast, make the upper end of each interval.
  h.Observe(SeriesKey("memory_bytes:forecast_hi80", {{"kind", "available"}, {"horizon", "1"}}),
            7e9);
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_lo80",
                      {{"cpu", "all"}, {"horizon", "15"}}),
            5);
  auto iv = h.IntervalsByHorizon();
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_EQ(iv[0].hi.memory, 7'000'000'000u);
  EXPECT_DOUBLE_EQ(iv[0].hi.cpu, 7) << "no optimistic CPU edge at horizon 1: the pessimistic one";
  EXPECT_EQ(iv[1].hi.memory, 1'000'000'000u);
  EXPECT_DOUBLE_EQ(iv[1].hi.cpu, 3);
  // Newer forecasts replace older ones per horizon; a busier forecast than cores is zero.
  busy("15", 9);
  EXPECT_DOUBLE_EQ(h.FreeByHorizon()[1].free.cpu, 0);
}

}  // namespace
}  // namespace augur::agent
