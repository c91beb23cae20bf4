// AnomalyWatch: the forecaster's anomaly counters become one event per new anomaly, with the
// series' cgroup label, for the workflow engine.
#include "agent/anomaly_watch.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace augur::agent {
namespace {

using telemetry::SeriesKey;

TEST(AnomalyWatchTest, ARisingCounterIsOneEventPerStepWithItsCgroup) {
  std::vector<std::pair<std::string, std::string>> events;
  AnomalyWatch w([&](const std::string& base, const std::string& cgroup) {
    events.emplace_back(base, cgroup);
  });
  const SeriesKey shard("cgroup_memory_bytes:anomaly_events_total",
                        {{"cgroup", "/augur/augur-wf-00ff"}});
  const SeriesKey host("cpu_busy_seconds_total:rate:anomaly_events_total", {{"cpu", "all"}});
  w.Observe(shard, 3);  // restored count: not new
  w.Observe(host, 0);
  EXPECT_TRUE(events.empty());
  w.Observe(shard, 3);
  w.Observe(shard, 4);
  w.Observe(host, 1);
  w.Observe(SeriesKey("cgroup_memory_bytes:forecast_mean", {{"cgroup", "/x"}}), 99);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], std::make_pair(std::string("cgroup_memory_bytes"),
                                      std::string("/augur/augur-wf-00ff")));
  EXPECT_EQ(events[1], std::make_pair(std::string("cpu_busy_seconds_total"), std::string()));
  EXPECT_EQ(w.events(), 2u);
  w.Observe(shard, 2);  // a reset (state lost): not an event, and the new base
  w.Observe(shard, 3);
  EXPECT_EQ(events.size(), 3u);
}

}  // namespace
}  // namespace augur::agent
