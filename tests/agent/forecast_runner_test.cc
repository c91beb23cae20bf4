#include "agent/forecast_runner.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "telemetry/recording_sink.h"

namespace augur::agent {
namespace {

using telemetry::RecordingSink;
using telemetry::SeriesKey;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;

ForecastRunnerOptions Options() {
  ForecastRunnerOptions o;
  o.step_seconds = 1;
  o.horizons = {1, 5};
  o.series = {"load{kind=\"a\"}", "work_seconds_total"};
  return o;
}

TEST(ForecastRunnerTest, ForecastsSelectedGaugeAndPublishesDerivedSeries) {
  auto runner = ForecastRunner::Create(Options());
  ASSERT_TRUE(runner) << runner.error().ToString();
  RecordingSink sink;
  const SeriesKey a("load", {{"kind", "a"}, {"source", "procfs"}});
  const SeriesKey b("load", {{"kind", "b"}, {"source", "procfs"}});
  for (int i = 0; i < 600; ++i) {
    const int64_t ts = kT0 + i * kSecond;
    (*runner)->Observe(a, ts, 50.0);
    (*runner)->Observe(b, ts, 50.0);
    (*runner)->Publish(ts, sink);
  }
  EXPECT_EQ((*runner)->series_count(), 1u) << "only load{kind=\"a\"} matches";
  const auto mean = sink.Get("load:forecast_mean{horizon=\"5\",kind=\"a\",source=\"procfs\"}");
  ASSERT_TRUE(mean.has_value());
  EXPECT_NEAR(*mean, 50.0, 0.5);
  const auto lo = sink.Get("load:forecast_lo80{horizon=\"5\",kind=\"a\",source=\"procfs\"}");
  const auto hi = sink.Get("load:forecast_hi80{horizon=\"5\",kind=\"a\",source=\"procfs\"}");
  ASSERT_TRUE(lo && hi);
  EXPECT_LE(*lo, *mean);
  EXPECT_GE(*hi, *mean);
  EXPECT_TRUE(sink.Has("load:anomaly_score{kind=\"a\",source=\"procfs\"}"));
  EXPECT_TRUE(sink.KeysNamed("load:forecast_mean").size() == 2u) << "horizons 1 and 5";
  for (const auto& key : sink.KeysNamed("load:forecast_mean")) {
    EXPECT_EQ(key.find("kind=\"b\""), std::string::npos) << key;
  }
  EXPECT_EQ(sink.Get("augur_forecast_series"), 1.0);
}

TEST(ForecastRunnerTest, CountersAreForecastAsRates) {
  auto runner = ForecastRunner::Create(Options());
  ASSERT_TRUE(runner);
  RecordingSink sink;
  const SeriesKey c("work_seconds_total", {{"source", "bpf"}});
  for (int i = 0; i < 600; ++i) {
    const int64_t ts = kT0 + i * kSecond;
    (*runner)->Observe(c, ts, 3.0 * i);  // 3 per second
    (*runner)->Publish(ts, sink);
  }
  const auto mean = sink.Get("work_seconds_total:rate:forecast_mean{horizon=\"1\",source=\"bpf\"}");
  ASSERT_TRUE(mean.has_value());
  EXPECT_NEAR(*mean, 3.0, 0.05);
}

TEST(ForecastRunnerTest, ALevelShiftRaisesAnAnomalyEvent) {
  auto runner = ForecastRunner::Create(Options());
  ASSERT_TRUE(runner);
  RecordingSink sink;
  const SeriesKey a("load", {{"kind", "a"}});
  for (int i = 0; i < 900; ++i) {
    const int64_t ts = kT0 + i * kSecond;
    const double noise = std::sin(i * 1.7) * 0.5;  // deterministic, small
    (*runner)->Observe(a, ts, (i < 800 ? 20.0 : 80.0) + noise);
    (*runner)->Publish(ts, sink);
  }
  const auto events = sink.Get("load:anomaly_events_total{kind=\"a\"}");
  ASSERT_TRUE(events.has_value());
  EXPECT_GE(*events, 1.0);
  EXPECT_GE(*sink.Get("augur_anomaly_events_total"), 1.0);
}

TEST(ForecastRunnerTest, BadSelectorIsRejectedWithItsText) {
  ForecastRunnerOptions o = Options();
  o.series.push_back("bad{name");
  auto runner = ForecastRunner::Create(o);
  ASSERT_FALSE(runner);
  EXPECT_NE(runner.error().message().find("forecast.series"), std::string::npos);
  EXPECT_NE(runner.error().message().find("bad{name"), std::string::npos);
}

TEST(ForecastRunnerTest, StateSurvivesARestart) {
  const std::string dir = ::testing::TempDir() + "augur-forecast-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  ForecastRunnerOptions o = Options();
  o.state_dir = dir;
  const SeriesKey a("load", {{"kind", "a"}});
  int64_t ts = kT0;
  {
    auto runner = ForecastRunner::Create(o);
    ASSERT_TRUE(runner) << runner.error().ToString();
    RecordingSink sink;
    for (int i = 0; i < 300; ++i, ts += kSecond) {
      (*runner)->Observe(a, ts, 42.0);
      (*runner)->Publish(ts, sink);
    }
  }  // saved on destruction
  EXPECT_FALSE(std::filesystem::is_empty(dir));
  auto runner = ForecastRunner::Create(o);
  ASSERT_TRUE(runner);
  RecordingSink sink;
  // One new point is enough to publish: what was learned came back from disk.
  (*runner)->Observe(a, ts, 42.0);
  (*runner)->Publish(ts, sink);
  const auto mean = sink.Get("load:forecast_mean{horizon=\"1\",kind=\"a\"}");
  ASSERT_TRUE(mean.has_value());
  EXPECT_NEAR(*mean, 42.0, 0.5);
  runner->reset();  // saves again; then the directory can go
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace augur::agent
