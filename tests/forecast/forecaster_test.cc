#include "forecast/forecaster.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace augur::forecast {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kStep = 300;
constexpr int kDay = 288;

ForecasterOptions Opts() {
  ForecasterOptions o;
  o.step_seconds = kStep;
  o.horizons = {1, 5, 15};
  return o;
}

Forecaster Make(const ForecasterOptions& o = Opts()) {
  auto f = Forecaster::Create(o);
  EXPECT_TRUE(f.has_value()) << f.error().ToString();
  return std::move(*f);
}

// Feeds y(i) at t = i*step (+ jitter) for i in [from, to); records every issued forecast
// keyed by (target step, horizon).
struct Replay {
  std::map<std::pair<long, int>, HorizonForecast> forecasts;
  std::vector<ObserveResult> results;
};

template <typename F>
void Feed(Forecaster& f, long from, long to, F y, Replay* run = nullptr) {
  for (long i = from; i < to; ++i) {
    ObserveResult r = f.Observe(i * kStep + 1, y(i));
    if (!run) continue;
    run->results.push_back(r);
    if (r.steps_closed > 0 && f.Forecast().ready) {
      for (const HorizonForecast& h : f.Forecast().horizons) {
        run->forecasts[{std::lround(h.target_time / kStep), h.horizon}] = h;
      }
    }
  }
}

TEST(ForecasterTest, OptionsAreValidated) {
  ForecasterOptions o = Opts();
  o.step_seconds = 0;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  o = Opts();
  o.horizons = {0};
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  o = Opts();
  o.interval_coverage = 1.0;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  o = Opts();
  o.history_capacity = 10;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  o = Opts();
  o.tuning.ensemble_sharpness_power = -1;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  o = Opts();
  o.tuning.seasonal_median_cycles = 17;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
  EXPECT_NE(Forecaster::Create(o).error().message().find("seasonal_median_cycles"),
            std::string::npos);
  o = Opts();
  o.tuning.seasonal_median_halfwidth = -1;
  EXPECT_TRUE(Forecaster::Create(o).error().IsInvalidArgument());
}

// The pool holds a one-day seasonal naive, a smoothed level and a seasonal median at every
// horizon. The daily naive is offered even when the detected period is the day; it then
// forecasts what seasonal naive does (up to each candidate's own median correction).
TEST(ForecasterTest, DailyNaiveLevelAndSeasonalMedianCandidates) {
  Forecaster f = Make();
  Feed(f, 0, 6 * kDay, [](long i) { return 50 + 10 * std::sin(2 * kPi * i / kDay); });
  ASSERT_EQ(f.stats().period, kDay);
  for (int h : {1, 5, 15}) {
    std::map<std::string, double> fc;
    for (const CandidateInfo& c : f.Candidates(h)) fc[c.name] = c.forecast;
    ASSERT_TRUE(fc.count("daily_naive") && fc.count("level") && fc.count("seasonal_naive") &&
                fc.count("seasonal_median"));
    EXPECT_TRUE(std::isfinite(fc["seasonal_naive"])) << h;
    EXPECT_NEAR(fc["daily_naive"], fc["seasonal_naive"], 0.05) << h;
    EXPECT_TRUE(std::isfinite(fc["level"])) << h;
    // A pure cycle: the median of the same phase in earlier days is the value due.
    const long target = 6 * kDay - 1 + h;
    EXPECT_NEAR(fc["seasonal_median"], 50 + 10 * std::sin(2 * kPi * target / kDay), 0.5) << h;
  }
}

// The combination candidates (median of the models' forecasts; hedge, a learned convex
// combination) exist at every horizon (hedge from hedge_min_horizon on), lie within the
// range of the model candidates, and are absent when switched off.
TEST(ForecasterTest, CombinationCandidates) {
  ForecasterOptions off = Opts();
  off.tuning.median_candidate = false;
  off.tuning.hedge_candidate = false;
  Forecaster a = Make();
  Forecaster b = Make(off);
  std::mt19937_64 rng(7);
  std::student_t_distribution<double> t3(3);
  std::vector<double> ys;
  for (long i = 0; i < 4 * kDay; ++i) ys.push_back(50 + 10 * std::sin(2 * kPi * i / kDay) + 2 * t3(rng));
  Feed(a, 0, 4 * kDay, [&](long i) { return ys[i]; });
  Feed(b, 0, 4 * kDay, [&](long i) { return ys[i]; });
  for (int h : {1, 5, 15}) {
    for (const CandidateInfo& c : b.Candidates(h)) {
      const std::string name = c.name;
      if (name == "median" || name == "hedge") {
        EXPECT_TRUE(std::isnan(c.forecast)) << name;
      }
    }
  }
  for (int h : {1, 5, 15}) {
    std::map<std::string, double> fc;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const CandidateInfo& c : a.Candidates(h)) {
      fc[c.name] = c.forecast;
      const std::string name = c.name;
      if (name != "median" && name != "hedge" && std::isfinite(c.forecast)) {
        lo = std::min(lo, c.forecast);
        hi = std::max(hi, c.forecast);
      }
    }
    ASSERT_TRUE(fc.count("median") && fc.count("hedge"));
    EXPECT_TRUE(std::isfinite(fc["median"])) << h;
    EXPECT_EQ(std::isfinite(fc["hedge"]), h >= 6) << h;
    // Each is shifted by its own residual median, so allow a little outside the range.
    const double slack = 0.5 * (hi - lo) + 1;
    EXPECT_NEAR(fc["median"], 0.5 * (lo + hi), 0.5 * (hi - lo) + slack);
    if (h >= 6) {
      EXPECT_NEAR(fc["hedge"], 0.5 * (lo + hi), 0.5 * (hi - lo) + slack);
    }
  }
  ForecasterOptions bad = Opts();
  bad.tuning.hedge_eta = 0;
  EXPECT_TRUE(Forecaster::Create(bad).error().IsInvalidArgument());
  bad = Opts();
  bad.tuning.hedge_min_horizon = 1;
  EXPECT_TRUE(Forecaster::Create(bad).error().IsInvalidArgument());
}

TEST(ForecasterTest, NotReadyBeforeTheFirstStep) {
  Forecaster f = Make();
  EXPECT_FALSE(f.Forecast().ready);
  f.Observe(0, 1.0);
  EXPECT_FALSE(f.Forecast().ready);  // step 0 is still open
  f.Observe(kStep, 1.0);
  ASSERT_TRUE(f.Forecast().ready);
  ASSERT_EQ(f.Forecast().horizons.size(), 3u);
  EXPECT_EQ(f.Forecast().horizons[2].horizon, 15);
  EXPECT_DOUBLE_EQ(f.Forecast().horizons[2].target_time, 15 * kStep);
}

TEST(ForecasterTest, PureSineWithPeriod288IsLearnedToNearZeroError) {
  Forecaster f = Make();
  Replay run;
  auto y = [](long i) { return 50 + 10 * std::sin(2 * kPi * i / kDay); };
  Feed(f, 0, 10 * kDay, y, &run);
  EXPECT_EQ(f.stats().period, kDay);
  for (int h : {1, 5, 15}) {
    double err = 0;
    int n = 0;
    for (long k = 8 * kDay; k < 10 * kDay; ++k) {
      auto it = run.forecasts.find({k, h});
      ASSERT_NE(it, run.forecasts.end());
      err += std::fabs(it->second.mean - y(k));
      ++n;
    }
    // Near zero: under 0.1 % of the amplitude (persistence would be ~2-30 %).
    EXPECT_LT(err / n, 0.01) << "h=" << h;
  }
}

TEST(ForecasterTest, ConstantSeriesIsForecastExactly) {
  Forecaster f = Make();
  Feed(f, 0, 500, [](long) { return 42.0; });
  for (const HorizonForecast& h : f.Forecast().horizons) {
    EXPECT_DOUBLE_EQ(h.mean, 42.0);
    EXPECT_LE(h.lo, 42.0);
    EXPECT_GE(h.hi, 42.0);
    EXPECT_TRUE(std::isfinite(h.lo) && std::isfinite(h.hi));
  }
}

// On a random walk nothing beats persistence; the ensemble must not do worse than it by
// more than noise.
TEST(ForecasterTest, NeverMuchWorseThanPersistenceOnARandomWalk) {
  Forecaster f = Make();
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> y(6000);
  double level = 100;
  for (auto& v : y) v = level += n(rng);
  Replay run;
  Feed(f, 0, static_cast<long>(y.size()), [&](long i) { return y[i]; }, &run);
  for (int h : {1, 5, 15}) {
    double em = 0, ep = 0;
    for (long k = 1000; k + h < static_cast<long>(y.size()); ++k) {
      em += std::fabs(run.forecasts.at({k + h, h}).mean - y[k + h]);
      ep += std::fabs(y[k] - y[k + h]);
    }
    EXPECT_LT(em / ep, 1.05) << "h=" << h;
  }
}

// The 80 % interval covers about 80 % of targets on a series with noise.
TEST(ForecasterTest, IntervalCoverageIsCalibrated) {
  Forecaster f = Make();
  std::mt19937_64 rng(5);
  std::student_t_distribution<double> t(3);  // heavy tails, as utilisation has
  std::vector<double> y(8000);
  double ar = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    ar = 0.8 * ar + t(rng);
    y[i] = 20 + 5 * std::sin(2 * kPi * i / kDay) + ar;
  }
  Replay run;
  Feed(f, 0, static_cast<long>(y.size()), [&](long i) { return y[i]; }, &run);
  for (int h : {1, 5, 15}) {
    int in = 0, n = 0;
    for (long k = 2 * kDay; k < static_cast<long>(y.size()); ++k) {
      auto it = run.forecasts.find({k, h});
      if (it == run.forecasts.end()) continue;
      in += y[k] >= it->second.lo && y[k] <= it->second.hi;
      ++n;
    }
    const double cov = static_cast<double>(in) / n;
    EXPECT_GT(cov, 0.75) << "h=" << h;
    EXPECT_LT(cov, 0.85) << "h=" << h;
  }
}

TEST(ForecasterTest, BadSamplesAreDroppedAndCountedNeverFatal) {
  Forecaster f = Make();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  long t = 0;
  for (int i = 0; i < 400; ++i, t += kStep) {
    f.Observe(t, 10 + (i % 7));
    if (i % 50 == 10) {
      EXPECT_TRUE(f.Observe(t + 1, nan).dropped);
      EXPECT_TRUE(f.Observe(t + 2, inf).dropped);
      EXPECT_TRUE(f.Observe(t + 3, -inf).dropped);
      EXPECT_TRUE(f.Observe(nan, 1.0).dropped);
    }
    if (i % 50 == 20) {
      EXPECT_TRUE(f.Observe(t - 5 * kStep, 1.0).dropped);  // out of order
      EXPECT_TRUE(f.Observe(t, 1.0).dropped);              // same timestamp again
    }
  }
  const ForecasterStats st = f.stats();
  EXPECT_EQ(st.dropped_nonfinite, 8u * 4);
  EXPECT_EQ(st.dropped_out_of_order, 8u * 2);
  EXPECT_EQ(st.samples_accepted, 400u);
  ASSERT_TRUE(f.Forecast().ready);
  for (const HorizonForecast& h : f.Forecast().horizons) {
    EXPECT_TRUE(std::isfinite(h.mean) && std::isfinite(h.lo) && std::isfinite(h.hi));
  }
}

TEST(ForecasterTest, IrregularSamplingAndGapsStillLearnTheSine) {
  Forecaster f = Make();
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> dt(20, 200);
  auto y = [](double t) { return 50 + 10 * std::sin(2 * kPi * t / (kDay * kStep)); };
  double t = 0;
  int gaps = 0;
  std::vector<std::pair<double, HorizonForecast>> late;
  while (t < 10 * kDay * kStep) {
    // Every ~day, a gap of one to three hours.
    if (std::fmod(t, kDay * kStep) < 200 && t > kStep) {
      t += 3600 * (1 + gaps % 3);
      ++gaps;
    }
    ObserveResult r = f.Observe(t, y(t));
    if (t > 8 * kDay * kStep && r.steps_closed > 0) {
      late.push_back({t, f.Forecast().horizons[0]});
    }
    t += dt(rng);
  }
  const ForecasterStats st = f.stats();
  EXPECT_GT(st.steps_imputed, 50u);
  EXPECT_EQ(st.period, kDay);
  // One step ahead, the step mean of a sine: within 1 % of the amplitude.
  double err = 0;
  for (const auto& [ts, h] : late) {
    const double k0 = std::floor(h.target_time / kStep) * kStep;
    // The step's true mean is close to the sine at its middle.
    err += std::fabs(h.mean - y(k0 + kStep / 2));
  }
  EXPECT_LT(err / late.size(), 0.1);
}

TEST(ForecasterTest, SaveRestoreRoundTripContinuesIdentically) {
  Forecaster a = Make();
  std::mt19937_64 rng(9);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> y(3 * kDay + 400);
  for (size_t i = 0; i < y.size(); ++i) y[i] = 30 + 8 * std::sin(2 * kPi * i / kDay) + n(rng);
  Feed(a, 0, 3 * kDay, [&](long i) { return y[i]; });
  std::stringstream state;
  ASSERT_TRUE(a.Save(state).ok());

  Forecaster b = Make();
  Feed(b, 0, 10, [](long) { return -1.0; });  // some unrelated state to be replaced
  ASSERT_TRUE(b.Restore(state).ok());
  EXPECT_EQ(b.stats().period, a.stats().period);
  EXPECT_EQ(b.stats().steps_observed, a.stats().steps_observed);
  for (long i = 3 * kDay; i < static_cast<long>(y.size()); ++i) {
    const ObserveResult ra = a.Observe(i * kStep + 1, y[i]);
    const ObserveResult rb = b.Observe(i * kStep + 1, y[i]);
    ASSERT_EQ(ra.steps_closed, rb.steps_closed);
    EXPECT_EQ(ra.anomaly_score, rb.anomaly_score);
    for (size_t h = 0; h < 3; ++h) {
      ASSERT_EQ(a.Forecast().horizons[h].mean, b.Forecast().horizons[h].mean) << "step " << i;
      ASSERT_EQ(a.Forecast().horizons[h].lo, b.Forecast().horizons[h].lo);
      ASSERT_EQ(a.Forecast().horizons[h].hi, b.Forecast().horizons[h].hi);
    }
  }
}

TEST(ForecasterTest, CorruptOrIncompatibleStateIsRejectedAndLeavesTheForecasterAsItWas) {
  Forecaster a = Make();
  Feed(a, 0, 600, [](long i) { return 10 + std::sin(i * 0.1); });
  std::stringstream ss;
  ASSERT_TRUE(a.Save(ss).ok());
  const std::string good = ss.str();
  const double before = a.Forecast().horizons[0].mean;

  auto restore = [&](const std::string& bytes) {
    std::istringstream in(bytes);
    return a.Restore(in);
  };
  // Truncated anywhere.
  for (size_t cut : {size_t{0}, size_t{5}, size_t{20}, good.size() / 2, good.size() - 1}) {
    EXPECT_TRUE(restore(good.substr(0, cut)).IsCorruption()) << "cut " << cut;
  }
  // A flipped bit in the payload fails the checksum.
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  EXPECT_TRUE(restore(flipped).IsCorruption());
  // Not a state file at all.
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_TRUE(restore(magic).IsCorruption());
  // A newer format version.
  std::string newer = good;
  newer[8] = 99;
  EXPECT_EQ(restore(newer).code(), Status::Code::kFailedPrecondition);
  // Format version 1 (before the calibrated anomaly detector) is refused cleanly, not
  // misread. (The header is not covered by the checksum, so only the version changes.)
  std::string older = good;
  older[8] = 1;
  EXPECT_EQ(restore(older).code(), Status::Code::kFailedPrecondition);
  // Format version 2 (before the daily-naive and level candidates) likewise.
  older[8] = 2;
  EXPECT_EQ(restore(older).code(), Status::Code::kFailedPrecondition);
  // Format version 3 (before the median and hedge candidates) likewise.
  older[8] = 3;
  EXPECT_EQ(restore(older).code(), Status::Code::kFailedPrecondition);
  // Format version 4 (before the seasonal-median candidate) likewise.
  older[8] = 4;
  EXPECT_EQ(restore(older).code(), Status::Code::kFailedPrecondition);
  // Format version 5 (before the routine-spike state) likewise.
  older[8] = 5;
  EXPECT_EQ(restore(older).code(), Status::Code::kFailedPrecondition);
  // State of a forecaster with another step.
  ForecasterOptions other = Opts();
  other.step_seconds = 60;
  Forecaster c = Make(other);
  std::istringstream in(good);
  EXPECT_EQ(c.Restore(in).code(), Status::Code::kFailedPrecondition);

  EXPECT_EQ(a.Forecast().horizons[0].mean, before);
  EXPECT_TRUE(restore(good).ok());
}

TEST(ForecasterTest, StateStaysWithinBudget) {
  Forecaster f = Make();
  std::mt19937_64 rng(4);
  std::normal_distribution<double> n(0, 1);
  Feed(f, 0, 20 * kDay, [&](long i) { return 5 * std::sin(2 * kPi * i / kDay) + n(rng); });
  EXPECT_LE(f.StateBytes(), 64u * 1024);
  std::stringstream ss;
  ASSERT_TRUE(f.Save(ss).ok());
  EXPECT_LE(ss.str().size(), 64u * 1024);
}

}  // namespace
}  // namespace augur::forecast
