// Replay and scoring of timestamp,value traces through the agent's Forecaster (augur-eval
// predict / score). See docs/FORECAST.md for the definitions of every metric.
#ifndef AUGUR_BENCH_EVAL_SERIES_EVAL_H_
#define AUGUR_BENCH_EVAL_SERIES_EVAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "augur/status.h"
#include "forecast/forecaster.h"

namespace augur::eval {

struct Sample {
  double ts = 0;
  double value = 0;
};

// Reads a `timestamp,value` CSV (a header line is skipped; unparsable lines are counted
// in *bad_lines and skipped; "nan"/"inf" values are kept: the forecaster must drop them).
Result<std::vector<Sample>> ReadSeriesCsv(const std::string& path, size_t* bad_lines);

// One issued forecast.
struct ForecastRow {
  double issued = 0;   // start of the step the forecast was made at
  int horizon = 0;
  double target = 0;   // start of the target step
  double mean = 0, lo = 0, hi = 0;
  std::vector<double> cand;  // candidate forecasts (diagnostics; empty when read from CSV)
};

struct ReplayResult {
  std::vector<ForecastRow> rows;
  struct Event {
    double time;
    double score;
  };
  std::vector<Event> events;       // anomaly events raised
  forecast::ForecasterStats stats;
  double us_per_step_mean = 0;     // Observe() + Forecast() per closed step
  double us_per_step_p99 = 0;
  double us_per_step_max = 0;
  size_t state_bytes = 0;          // Forecaster::StateBytes() at the end
  size_t saved_bytes = 0;          // size of Save() at the end
};

// Replays samples through a fresh Forecaster, learning online.
Result<ReplayResult> Replay(const std::vector<Sample>& samples,
                            const forecast::ForecasterOptions& opts);

// Writes/reads augur-eval predict's output: timestamp,horizon,target_timestamp,mean,lo80,hi80.
Status WriteForecastCsv(const std::string& path, const std::vector<ForecastRow>& rows);
Result<std::vector<ForecastRow>> ReadForecastCsv(const std::string& path);

struct HorizonScore {
  int horizon = 0;
  size_t n = 0;            // scored forecasts
  double mae = 0;          // model
  double mae_persistence = 0;
  double mae_seasonal = 0; // seasonal naive with a one-day season
  double rel_mae = 0;      // mae / min(mae_persistence, mae_seasonal)
  double mase = 0;         // mae / mean |y[k] - y[k-1]| over the scored window
  double coverage = 0;     // share of targets inside [lo, hi]
  std::vector<double> cand_rel;  // each candidate's MAE relative to the best baseline
};

struct ScoreOptions {
  double step = 300;
  double warmup_days = 2;
  double season_days = 1;
};

// Scores forecast rows against the series put on the same grid the forecaster uses.
// Forecasts issued before first_ts + warmup, or whose target step had no data, are not
// scored; the baselines are scored on exactly the same targets.
std::vector<HorizonScore> ScoreForecasts(const std::vector<Sample>& samples,
                                         const std::vector<ForecastRow>& rows,
                                         const std::vector<int>& horizons,
                                         const ScoreOptions& opts);

// Anomaly injection into a real series (fixed seed) and detection scoring.
struct InjectOptions {
  uint64_t seed = 42;
  double every_steps = 288;     // mean spacing between injected anomalies
  // Sizes in units of u, the 99th percentile of the series' absolute one-step change.
  double spike_sd = 3;
  double shift_sd = 2;
  double ramp_sd = 3;           // reached at the end of the ramp
  int shift_steps = 48;
  int ramp_steps = 24;
  int flat_steps = 36;
  int tolerance = 3;            // steps after a window an alarm still counts for it
};

struct InjectedAnomaly {
  std::string kind;
  double start = 0;   // seconds
  double end = 0;     // seconds (exclusive)
  // Largest |dirty - clean| over the window's grid steps, in units of u (diagnostics: a
  // downward anomaly clipped at zero, or a flat-line on a stretch that was already flat,
  // changes the series little or not at all).
  double effect = 0;
};

struct AnomalyScore {
  size_t injected = 0;
  size_t detected = 0;
  size_t alarms = 0;           // events raised after warm-up
  size_t true_alarms = 0;
  double precision = 0;
  double recall = 0;
  double median_delay = 0;     // steps from window start to first alarm, detected windows
  std::vector<double> delays;  // the delays themselves (for pooling over seeds)
  std::vector<std::pair<std::string, std::pair<size_t, size_t>>> by_kind;  // detected/injected
  std::vector<std::pair<std::string, double>> delay_by_kind;  // median delay per kind
};

std::vector<Sample> InjectAnomalies(const std::vector<Sample>& clean, const ScoreOptions& so,
                                    const InjectOptions& io,
                                    std::vector<InjectedAnomaly>* truth);
AnomalyScore ScoreAnomalies(const std::vector<ReplayResult::Event>& events,
                            const std::vector<InjectedAnomaly>& truth, double scored_from,
                            const ScoreOptions& so, const InjectOptions& io);

}  // namespace augur::eval

#endif  // AUGUR_BENCH_EVAL_SERIES_EVAL_H_
