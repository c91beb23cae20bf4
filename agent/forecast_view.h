// ForecastView: what `augurctl forecast SERIES` shows: a series' recent history and the
// forecast augurd published for it (mean and 80 % band per horizon), read from the store.
//
// Thread safety: pure functions of the reader's current contents.
#ifndef AUGUR_AGENT_FORECAST_VIEW_H_
#define AUGUR_AGENT_FORECAST_VIEW_H_

#include <string>
#include <vector>

#include "augur/status.h"
#include "telemetry/series_key.h"
#include "telemetry/shm_store.h"

namespace augur::agent {

struct ForecastPoint {
  int horizon = 0;         // steps ahead
  double target_ts = 0;    // seconds since the epoch, start of the forecast step
  double mean = 0, lo = 0, hi = 0;
};

struct ForecastData {
  telemetry::SeriesKey key;
  bool rate = false;                        // a counter: history and forecast are per second
  std::vector<telemetry::Point> history;    // oldest first (rates for counters)
  double step_seconds = 0;
  double issued_ts = 0;                     // seconds; 0 when there is no forecast yet
  std::vector<ForecastPoint> forecast;      // by horizon
  double anomaly_score = 0;
  double anomaly_events = 0;
};

// Gathers history (up to `max_points`) and the published forecast of `key`. NotFound when
// the series is not in the store; a series with no forecast yet has an empty `forecast`.
Result<ForecastData> ReadForecast(const telemetry::ShmReader& reader,
                                  const telemetry::SeriesKey& key, size_t max_points = 3600);

// Text plot (history as '*', forecast mean as 'o' inside a ':' band) plus a table.
std::string RenderForecast(const ForecastData& data, int width = 80, int height = 16);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_FORECAST_VIEW_H_
