// Forecaster: the per-series online forecaster and anomaly detector the agent runs, one
// object per series. It is the only header of src/forecast/ the agent needs (besides
// forecaster_bank.h, which keeps many of these under a state directory).
//
//   auto f = Forecaster::Create(opts);            // Result<Forecaster>
//   f->Observe(ts, value);                          // every raw sample, any cadence
//   f->AdvanceTo(now);                              // optional: close the current step
//   ForecastSet fs = f->Forecast();                 // per horizon {mean, lo, hi}
//   f->AnomalyScore(); f->stats();                  // score of the newest step, counters
//   f->Save(os) / f->Restore(is);                   // versioned binary state
//
// How it works (docs/FORECAST.md has the long version): samples are put on a grid of
// `step_seconds` (step_grid.h; gaps interpolated, bad samples dropped and counted). On every
// closed step each horizon gets forecasts from several cheap candidates (candidates.h:
// persistence, seasonal and daily naive, damped trend, seasonal mean and median, a slow
// level; lag_regression.h: a dlib rls on lags, smoothed levels and seasonal lags, and a
// second rls stacking the others; their median and a hedge combination), blended
// by their recent absolute error (ensemble.h), with an interval calibrated online
// (intervals.h). The period is detected from the data (seasonality.h). The anomaly score
// (anomaly.h) is the largest of per-kind scores (spike: one-step error; level shift; ramp;
// flat-line; a kcentroid novelty detector), each measured against the series' own running
// 99th percentile, so spiky series do not flood alarms. Everything is bounded: StateBytes()
// is ~48 KiB with the defaults (under the 64 KiB budget).
//
// The point forecast (`mean`) is tuned for absolute error: each candidate but persistence is
// shifted by the running median of its residuals, so on a skewed series it sits nearer the conditional
// median than the conditional mean.
//
// Errors: bad samples are never errors (they are counted in stats()); Create() rejects bad
// options; Restore() reports corrupt or incompatible state and then leaves the object as it
// was. No exception escapes (dlib's are caught and turned into Status).
//
// Thread safety: none. A Forecaster is a value owned by one thread at a time; it may be
// moved between threads.
#ifndef AUGUR_FORECAST_FORECASTER_H_
#define AUGUR_FORECAST_FORECASTER_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <vector>

#include "augur/status.h"

namespace augur::forecast {

// Knobs of the models. The defaults are what the agent runs and what bench/RESULTS.md
// reports; they are exposed for the evaluation tool and tests, not for users.
struct ModelTuning {
  double rls_forget = 0.997;        // lag regression forget factor at horizon 5 (memory
                                    // ~1/(1-f) steps, scaled by sqrt(h/5) per horizon)
  double rls_c = 100.0;             // lag regression regularisation (larger = weaker)
  bool rls_huber = true;            // down-weight outliers when training the regression
  double ensemble_decay = 0.005;    // candidate error memory (~1/decay steps)
  double ensemble_sharpness = 20;   // blend sharpness at horizon 1; large = pick the best
  double ensemble_sharpness_power = 0;  // sharpness at horizon h: sharpness * h^-power
  double seasonal_decay = 0.7;      // weight ratio of successive cycles in the seasonal mean
  int seasonal_cycles = 8;          // cycles averaged by the seasonal mean
  int seasonal_halfwidth = 0;       // neighbours on each side averaged into a phase
  double seasonal_min_acf = 0.25;   // autocorrelation a period needs
  double interval_eta = 0.02;       // interval quantile tracker step (sigma units)
  bool median_correct = true;       // shift each candidate but persistence by its running
                                    // residual median
  // Combination candidates: the median of the model candidates' forecasts, and an
  // exponentiated-gradient (hedge) convex combination of them learned on absolute error,
  // from horizon hedge_min_horizon on, with learning rate hedge_eta * (5/h)^hedge_eta_power
  // on gradients in scale units.
  bool median_candidate = true;
  bool hedge_candidate = true;
  double hedge_eta = 0.1;
  double hedge_eta_power = 0.5;
  int hedge_min_horizon = 6;
  // Seasonal-median candidate: median over this many cycles (0 = off, at most 16) of the
  // target's phase and its +-halfwidth (at most 3) neighbours.
  int seasonal_median_cycles = 5;
  int seasonal_median_halfwidth = 1;
};

struct ForecasterOptions {
  // Grid step in seconds. REQUIRES: > 0. Default: 60.
  double step_seconds = 60.0;
  // Horizons to forecast, in steps. REQUIRES: 1..kMaxHorizon each; duplicates are merged.
  std::vector<int> horizons = {1, 5, 15};
  // Grid steps of history kept per series: bounds state and the longest period that can be
  // found (capacity/2). REQUIRES: 64..16384. Default 4096 (14 days at 300 s, ~3 at 60 s).
  int history_capacity = 4096;
  // Longest gap (in steps) filled by interpolation; a longer one drops short-term context.
  // 0 = history_capacity.
  int max_gap_fill = 0;
  // Central coverage of the prediction interval. REQUIRES: (0, 1). Default 0.8.
  double interval_coverage = 0.8;
  // Anomaly score at which an event starts; 8 is each series' calibrated alarm level,
  // lower is more sensitive. REQUIRES: > 0.
  double anomaly_threshold = 8.0;
  ModelTuning tuning;

  static constexpr int kMaxHorizon = 1024;
  Status Validate() const;
};

struct HorizonForecast {
  int horizon = 0;         // steps ahead
  double target_time = 0;  // start of the forecast step (seconds, same clock as Observe)
  double mean = 0;         // point forecast
  double lo = 0, hi = 0;   // central prediction interval (interval_coverage)
};

struct ForecastSet {
  bool ready = false;        // false until the first step has closed
  double issued_time = 0;    // start of the newest closed step
  std::vector<HorizonForecast> horizons;  // in the order of options.horizons (sorted)
};

struct AnomalyEvent {
  double time = 0;      // start of the step that raised it
  double value = 0;     // the step's value
  double expected = 0;  // the one-step forecast for it
  double score = 0;     // anomaly score (sd units)
};

struct ObserveResult {
  bool dropped = false;        // the sample was dropped (see stats() for why)
  int steps_closed = 0;        // grid steps closed by this call (observed + gap-filled)
  double anomaly_score = 0;    // score of the newest observed step
  std::optional<AnomalyEvent> event;  // an anomaly event started in this call
};

struct ForecasterStats {
  uint64_t samples_accepted = 0;
  uint64_t dropped_nonfinite = 0;     // NaN/Inf value or timestamp
  uint64_t dropped_out_of_order = 0;  // not after the previous sample, or too late
  uint64_t steps_observed = 0;        // grid steps with data
  uint64_t steps_imputed = 0;         // grid steps filled by interpolation
  uint64_t breaks = 0;                // gaps too long to fill
  uint64_t anomaly_events = 0;
  uint64_t regression_resets = 0;     // lag regressions re-initialised after wind-up
  int period = 0;                     // detected period in steps (0: none)
  double period_strength = 0;         // autocorrelation at the period
};

// Per-candidate diagnostics for one horizon (for augurctl / the evaluation tool).
struct CandidateInfo {
  const char* name;
  double recent_mae;   // decayed mean |error|
  double weight;       // weight in the newest blend
  double forecast;     // its newest forecast (NaN: unavailable)
};

class Forecaster {
 public:
  static Result<Forecaster> Create(const ForecasterOptions& opts);
  Forecaster(Forecaster&&) noexcept;
  Forecaster& operator=(Forecaster&&) noexcept;
  ~Forecaster();

  // Feeds one raw sample (seconds, value). Bad samples are dropped and counted.
  ObserveResult Observe(double ts, double value);
  // Closes the open step when `now` (same clock) is past its end; lets a caller that samples
  // once per step get forecasts without waiting for the next sample.
  ObserveResult AdvanceTo(double now);

  // Forecasts made at the newest closed step. Cheap (computed when the step closed).
  const ForecastSet& Forecast() const;
  // Anomaly score of the newest observed step (sd units; 0 during warm-up).
  double AnomalyScore() const;
  std::optional<AnomalyEvent> last_event() const;
  ForecasterStats stats() const;
  std::vector<CandidateInfo> Candidates(int horizon) const;
  const ForecasterOptions& options() const;

  // Bytes of memory the series' state occupies (heap included, approximately).
  size_t StateBytes() const;

  // Versioned binary state. Restore() accepts state saved by the same or an older format
  // version with the same step and horizons: Corruption for damaged data,
  // FailedPrecondition for state from a newer build or other options. On error the
  // forecaster is unchanged.
  Status Save(std::ostream& os) const;
  Status Restore(std::istream& is);

 private:
  struct Impl;
  explicit Forecaster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_FORECASTER_H_
