// ForecastRunner: augurd's forecasting of the series it collects.
//
// The daemon hands it every point it writes (Observe); the runner keeps a ForecasterBank
// over the series that match its selectors, and once per sample writes back derived series
// (Publish) so every reader of the store, /metrics included, sees them:
//
//   <base>:forecast_mean{<labels>,horizon="H"}   point forecast H steps ahead
//   <base>:forecast_lo80 / :forecast_hi80        80 % prediction interval
//   <base>:anomaly_score{<labels>}               score of the newest step (sd units)
//   <base>:anomaly_events_total{<labels>}        anomaly events raised so far
//
// where <base> is the metric name for gauges and "<name>:rate" for counters (`*_total`),
// whose per-second rate is what gets forecast. A derived point's timestamp is the start of
// the newest closed step; the forecast for horizon H is for the step starting H steps later
// (augur_forecast_step_seconds says how long a step is).
//
// Thread safety: none; the daemon's sampling thread owns it.
#ifndef AUGUR_AGENT_FORECAST_RUNNER_H_
#define AUGUR_AGENT_FORECAST_RUNNER_H_

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "augur/status.h"
#include "telemetry/collector.h"
#include "telemetry/series_key.h"

namespace augur::agent {

struct ForecastRunnerOptions {
  double step_seconds = 60;
  std::vector<int> horizons = {1, 5, 15};
  // Selectors: a metric name, optionally with labels that must match, e.g.
  // memory_bytes{kind="available"}. A series is forecast when any selector matches it.
  std::vector<std::string> series;
  std::string state_dir;           // "" = nothing saved
  double anomaly_threshold = 8.0;  // lower is more sensitive
  size_t max_series = 256;
  std::chrono::seconds save_interval{300};
};

// The name of the derived series `suffix` (e.g. "forecast_mean") of `key`.
std::string DerivedName(const telemetry::SeriesKey& key, std::string_view suffix);

class ForecastRunner {
 public:
  // Parses the selectors (InvalidArgument naming a bad one), opens the bank and restores
  // what was saved under state_dir.
  static Result<std::unique_ptr<ForecastRunner>> Create(const ForecastRunnerOptions& options);
  ~ForecastRunner();

  // Every point the agent writes. Cheap for series that no selector matches.
  void Observe(const telemetry::SeriesKey& key, int64_t ts_ns, double value);
  // Closes steps that ended by `ts_ns`, writes the derived series of every series whose
  // forecast changed to `derived` (one point per step: the daemon gives them shorter rings)
  // and the runner's own gauges to `sink`, and saves state every save_interval.
  void Publish(int64_t ts_ns, telemetry::PointSink& sink, telemetry::PointSink& derived);
  void Publish(int64_t ts_ns, telemetry::PointSink& sink) { Publish(ts_ns, sink, sink); }
  // Saves every series' state now.
  Status Save();

  size_t series_count() const;

 private:
  struct Impl;
  explicit ForecastRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_FORECAST_RUNNER_H_
