// HostHeadroom (agent/host_headroom.h): the worst horizon of the forecasts the engine admits
// shards against.
#include "agent/host_headroom.h"

#include <gtest/gtest.h>

namespace augur::agent {
namespace {

using telemetry::SeriesKey;

TEST(HostHeadroomTest, WorstHorizonOfMemoryAndCpu) {
  HostHeadroom h(8);
  EXPECT_FALSE(h.PredictedFree()) << "nothing forecast yet";
  h.Observe(SeriesKey("memory_bytes:forecast_lo80", {{"kind", "available"}, {"horizon", "1"}}),
            6e9);
  h.Observe(SeriesKey("memory_bytes:forecast_lo80", {{"kind", "available"}, {"horizon", "15"}}),
            4e9);
  h.Observe(SeriesKey("memory_bytes:forecast_lo80", {{"kind", "free"}, {"horizon", "1"}}), 1);
  EXPECT_FALSE(h.PredictedFree()) << "no CPU forecast yet";
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80",
                      {{"cpu", "all"}, {"horizon", "1"}}),
            2.5);
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80",
                      {{"cpu", "all"}, {"horizon", "5"}}),
            5);
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80",
                      {{"cpu", "3"}, {"horizon", "5"}}),
            100);
  auto f = h.PredictedFree();
  ASSERT_TRUE(f);
  EXPECT_DOUBLE_EQ(f->cpu, 3);
  EXPECT_EQ(f->memory, 4'000'000'000u);
  // Newer forecasts replace older ones per horizon; a busier forecast than cores is zero.
  h.Observe(SeriesKey("cpu_busy_seconds_total:rate:forecast_hi80",
                      {{"cpu", "all"}, {"horizon", "5"}}),
            9);
  EXPECT_DOUBLE_EQ(h.PredictedFree()->cpu, 0);
}

}  // namespace
}  // namespace augur::agent
