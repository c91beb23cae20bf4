// Anomaly detection through the Forecaster (the detector's inputs come from the forecasts).
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>
#include <vector>

#include "forecast/forecaster.h"

namespace augur::forecast {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kStep = 60;
constexpr int kPeriod = 240;

struct Series {
  std::vector<double> y;
};

// A noisy periodic series (noise sd 0.5 on a swing of +-10).
Series Noisy(int n, uint64_t seed) {
  Series s;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 0.5);
  for (int i = 0; i < n; ++i) s.y.push_back(50 + 10 * std::sin(2 * kPi * i / kPeriod) + noise(rng));
  return s;
}

// Feeds the series; returns the steps (indices) at which events started.
std::vector<int> Events(const std::vector<double>& y) {
  ForecasterOptions o;
  o.step_seconds = kStep;
  auto f = Forecaster::Create(o);
  EXPECT_TRUE(f.has_value());
  std::vector<int> out;
  for (size_t i = 0; i < y.size(); ++i) {
    f->Observe(i * kStep, y[i]);
    const ObserveResult r = f->AdvanceTo((i + 1) * kStep);  // close step i now
    if (r.event) out.push_back(static_cast<int>(std::lround(r.event->time / kStep)));
  }
  return out;
}

int FirstAtOrAfter(const std::vector<int>& ev, int step) {
  for (int e : ev) {
    if (e >= step) return e;
  }
  return -1;
}

TEST(AnomalyTest, StepChangeRaisesAnEventWithinThreeSteps) {
  for (uint64_t seed : {1, 2, 3}) {
    Series s = Noisy(6 * kPeriod, seed);
    const int at = 5 * kPeriod + 17;
    for (size_t i = at; i < s.y.size(); ++i) s.y[i] += 8;  // a level shift of 16 noise sd
    const std::vector<int> ev = Events(s.y);
    const int first = FirstAtOrAfter(ev, at);
    ASSERT_GE(first, 0) << "seed " << seed;
    EXPECT_LE(first - at, 3) << "seed " << seed;
  }
}

TEST(AnomalyTest, SpikeIsDetectedAtOnce) {
  Series s = Noisy(6 * kPeriod, 4);
  const int at = 5 * kPeriod + 100;
  s.y[at] += 10;
  const std::vector<int> ev = Events(s.y);
  EXPECT_EQ(FirstAtOrAfter(ev, at), at);
}

TEST(AnomalyTest, FlatLineIsDetected) {
  Series s = Noisy(6 * kPeriod, 5);
  const int at = 5 * kPeriod + 40;
  for (int i = at; i < at + 30; ++i) s.y[i] = s.y[at];
  const std::vector<int> ev = Events(s.y);
  const int first = FirstAtOrAfter(ev, at);
  ASSERT_GE(first, 0);
  EXPECT_LE(first - at, 5);
}

TEST(AnomalyTest, FlatLineIsCaughtWithinThreeSteps) {
  // A series that never repeats a value exactly: two repeats are already improbable.
  for (uint64_t seed : {11, 12, 13}) {
    Series s = Noisy(6 * kPeriod, seed);
    const int at = 5 * kPeriod + 60;
    for (int i = at; i < at + 36; ++i) s.y[i] = s.y[at];
    const std::vector<int> ev = Events(s.y);
    const int first = FirstAtOrAfter(ev, at);
    ASSERT_GE(first, 0) << "seed " << seed;
    EXPECT_LE(first - at, 3) << "seed " << seed;
  }
}

TEST(AnomalyTest, RampIsCaughtByTheTimeItEnds) {
  // A drift of 12 noise sd over 24 steps, then back: no single step of the ramp is unusual
  // (0.5 sd per step). It must raise an event no later than 3 steps after it ends (the
  // evaluator's window). NOTE: on this seasonal series the event typically comes when the
  // value drops back, not while it ramps (see docs/FORECAST.md, caveats).
  for (uint64_t seed : {21, 22, 23}) {
    Series s = Noisy(6 * kPeriod, seed);
    const int at = 5 * kPeriod + 30;
    for (int i = at; i < at + 24; ++i) s.y[i] += 6.0 * (i - at + 1) / 24;
    const std::vector<int> ev = Events(s.y);
    const int first = FirstAtOrAfter(ev, at);
    ASSERT_GE(first, 0) << "seed " << seed;
    EXPECT_LT(first - at, 24 + 3) << "seed " << seed;
  }
}

TEST(AnomalyTest, SlowRampOnAFlatNoisySeriesIsCaughtWhileRamping) {
  // Without a cycle to confuse it, the ramp window sees the drift before it ends.
  for (uint64_t seed : {24, 25, 26}) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0, 0.5);
    std::vector<double> y;
    for (int i = 0; i < 6 * kPeriod; ++i) y.push_back(50 + noise(rng));
    const int at = 5 * kPeriod + 30;
    for (int i = at; i < at + 24; ++i) y[i] += 6.0 * (i - at + 1) / 24;
    const int first = FirstAtOrAfter(Events(y), at);
    ASSERT_GE(first, 0) << "seed " << seed;
    EXPECT_LT(first - at, 20) << "seed " << seed;
  }
}

TEST(AnomalyTest, LevelShiftOnASpikySeriesIsCaughtAndItsSpikesAreNot) {
  // Heavy-tailed noise (Student t, 3 dof) on the sine: large natural moves are common, so
  // the detector must calibrate to this series' own tail; a sustained shift well beyond it
  // is still caught within three steps.
  for (uint64_t seed : {31, 32, 33}) {
    std::mt19937_64 rng(seed);
    std::student_t_distribution<double> t3(3);
    std::vector<double> y;
    for (int i = 0; i < 6 * kPeriod; ++i) y.push_back(50 + 10 * std::sin(2 * kPi * i / kPeriod) + 0.5 * t3(rng));
    std::vector<double> clean = y;
    const int at = 5 * kPeriod + 80;
    for (size_t i = at; i < y.size(); ++i) y[i] += 12;
    const int first = FirstAtOrAfter(Events(y), at);
    ASSERT_GE(first, 0) << "seed " << seed;
    EXPECT_LE(first - at, 3) << "seed " << seed;
    // The clean heavy-tailed series raises few events after warm-up (a target false-alarm
    // rate, not zero: t3 noise has real outliers).
    int late = 0;
    for (int e : Events(clean)) late += e >= 2 * kPeriod;
    EXPECT_LE(late, 4) << "seed " << seed;
  }
}

TEST(AnomalyTest, QuietOnACleanSeries) {
  Series s = Noisy(8 * kPeriod, 6);
  const std::vector<int> ev = Events(s.y);
  // Gaussian noise with alarms calibrated beyond the series' own 99th percentiles.
  EXPECT_LE(ev.size(), 1u);
}

TEST(AnomalyTest, QuietOnCleanNoisySinesAcrossSeeds) {
  size_t total = 0;
  for (uint64_t seed : {41, 42, 43, 44, 45}) total += Events(Noisy(8 * kPeriod, seed).y).size();
  EXPECT_LE(total, 2u);  // 5 x 1920 steps
}

TEST(AnomalyTest, RecurringDailyJumpIsNotAnAnomaly) {
  // Every period the series jumps by 30 for 10 steps (a scheduled job): after two periods
  // that is the pattern, not an anomaly.
  Series s = Noisy(8 * kPeriod, 7);
  for (size_t i = 0; i < s.y.size(); ++i) {
    if (static_cast<int>(i % kPeriod) >= 100 && static_cast<int>(i % kPeriod) < 110) s.y[i] += 30;
  }
  const std::vector<int> ev = Events(s.y);
  int late = 0;
  for (int e : ev) late += e >= 5 * kPeriod;
  EXPECT_LE(late, 1);
}

TEST(AnomalyTest, RoutineSpikesStopAlarmingButALargerOneStillDoes) {
  // One-step spikes of +8 (16 noise sd) at irregular times, two to three a period (a job
  // that wakes when it likes, as on many idle VMs): the first ones alarm, then they are
  // routine. A spike three times their size is still an anomaly, at once.
  for (uint64_t seed : {51, 52, 53}) {
    Series s = Noisy(8 * kPeriod, seed);
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> gap(80, 120);
    const int big = 7 * kPeriod + 50;
    std::vector<int> routine;
    for (int i = 150; i < static_cast<int>(s.y.size()); i += gap(rng)) {
      if (std::abs(i - big) < 30) continue;
      s.y[i] += 8;
      routine.push_back(i);
    }
    s.y[big] += 24;
    const std::vector<int> ev = Events(s.y);
    int late_routine = 0;
    for (int e : ev) {
      for (int r : routine) late_routine += r >= 4 * kPeriod && e >= r && e <= r + 2;
    }
    EXPECT_LE(late_routine, 1) << "seed " << seed << ": routine spikes kept alarming";
    EXPECT_EQ(FirstAtOrAfter(ev, big), big) << "seed " << seed;
  }
}

TEST(AnomalyTest, EventsAreCountedAndExposed) {
  Series s = Noisy(6 * kPeriod, 8);
  s.y[5 * kPeriod + 50] += 12;
  ForecasterOptions o;
  o.step_seconds = kStep;
  auto f = Forecaster::Create(o);
  ASSERT_TRUE(f.has_value());
  for (size_t i = 0; i < s.y.size(); ++i) f->Observe(i * kStep, s.y[i]);
  EXPECT_GE(f->stats().anomaly_events, 1u);
  ASSERT_TRUE(f->last_event().has_value());
  EXPECT_GT(f->last_event()->score, o.anomaly_threshold);
}

}  // namespace
}  // namespace augur::forecast
