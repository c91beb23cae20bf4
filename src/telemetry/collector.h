// Collector: one source of host measurements (an eBPF program set, a procfs file, ...).
//
// The agent calls Collect() once per sampling interval, from one thread; a collector emits
// each measurement as a point through the PointSink. Counters are emitted as cumulative
// values (Prometheus `_total` convention); readers derive rates.
//
// Thread safety: a collector is used by one thread at a time.
#ifndef AUGUR_TELEMETRY_COLLECTOR_H_
#define AUGUR_TELEMETRY_COLLECTOR_H_

#include <cstdint>
#include <string_view>

#include "augur/status.h"
#include "telemetry/series_key.h"

namespace augur::telemetry {

// Receives points from collectors. The agent's sink writes them into the shared-memory
// store; tests use a sink that records them.
class PointSink {
 public:
  virtual ~PointSink() = default;
  // `ts_ns` is CLOCK_REALTIME nanoseconds since the epoch.
  virtual void Emit(const SeriesKey& key, int64_t ts_ns, double value) = 0;
};

class Collector {
 public:
  virtual ~Collector() = default;
  // Short stable name, used in logs and in augur_collector_* series ("procfs_stat", "bpf_cpu").
  virtual std::string_view name() const = 0;
  // Reads the source and emits points stamped `ts_ns`. A failure is returned, not thrown;
  // the agent logs it (rate-limited) and keeps sampling the other collectors.
  virtual Status Collect(int64_t ts_ns, PointSink& sink) = 0;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_COLLECTOR_H_
