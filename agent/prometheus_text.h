// Prometheus text exposition (format 0.0.4) of the shared-memory store: the latest point of
// every series, as served at /metrics.
//
// Output, families sorted by metric name and series by labels:
//
//   # HELP augur_up 1 when the agent writing the store is running, 0 when its segment is stale.
//   # TYPE augur_up gauge
//   augur_up 1
//   # TYPE cpu_busy_seconds_total counter
//   cpu_busy_seconds_total{cpu="0"} 1234.5 1700000000123
//
// A family is a `counter` when its name ends in `_total` (Prometheus' naming convention for
// counters) and a `gauge` otherwise, except a histogram: series NAME_bucket with an `le`
// label, with NAME_sum and NAME_count beside them, are one family NAME of type
// `histogram` (one TYPE line; its buckets in increasing `le`, then the sum, then the count). Each sample carries its point's timestamp in
// milliseconds, so Prometheus records when the agent measured, not when it scraped.
//
// Thread safety: the functions are pure apart from reading the store; see ShmReader for
// its own contract.
#ifndef AUGUR_AGENT_PROMETHEUS_TEXT_H_
#define AUGUR_AGENT_PROMETHEUS_TEXT_H_

#include <string>
#include <vector>

#include "telemetry/series_key.h"
#include "telemetry/shm_store.h"

namespace augur::agent {

// The media type of what RenderPrometheus returns, for the Content-Type header.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// One series' latest point.
struct PrometheusSample {
  telemetry::SeriesKey key;
  telemetry::Point point;
};

// Renders the latest point of every series in `reader` (series without points are left
// out), plus augur_up: 1 while the writer is live, 0 once it closed the segment, died or
// stopped beating (ShmReader::Info). While it is not live, augur_stale_since_seconds gives
// the Unix time the data stopped being fresh. Series the store itself names augur_up or
// augur_stale_since_seconds are dropped, since a repeated family makes the whole scrape
// invalid. One pass over the directory: a few ms for thousands of series.
std::string RenderPrometheus(const telemetry::ShmReader& reader);

// The same from samples already read, in any order. `live` sets augur_up;
// `stale_since_ns` > 0 (when not live) adds augur_stale_since_seconds. Keys are taken as
// valid (the store validates them on the way in).
std::string RenderPrometheus(std::vector<PrometheusSample> samples, bool live,
                             int64_t stale_since_ns = 0);

// A sample value as Prometheus writes one: the shortest decimal that reads back as the same
// double ("0.1", "1e+21"), and NaN, +Inf, -Inf for the special values.
std::string FormatPrometheusValue(double value);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_PROMETHEUS_TEXT_H_
