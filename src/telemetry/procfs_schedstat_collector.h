// SchedstatCollector: run-queue wait, the procfs fallback for the eBPF run-queue latency
// histogram.
//
// Series (source="procfs"):
//   runqueue_wait_seconds_total{cpu}   counter; time tasks spent runnable but waiting for a
//                                      CPU (sched_info run_delay). cpu is "0", "1", ... and
//                                      "all".
//   runqueue_latency_seconds{stat="mean"}
//                                      gauge; mean wait per scheduling of a task onto a CPU
//                                      over the last interval: delta(run_delay) /
//                                      delta(timeslices). Absent on the first Collect and in
//                                      intervals with no scheduling.
// procfs keeps only these sums, so it cannot give p50/p99 run-queue latency; those come
// from the eBPF collector's histogram.
//
// Two sources, chosen on the first Collect():
//   1. /proc/schedstat (kernels built with CONFIG_SCHEDSTATS, format version >= 15): per-CPU
//      run_delay and timeslice sums kept by the kernel. Exact; per-CPU series.
//   2. Otherwise, the per-task /proc/PID/task/TID/schedstat files (CONFIG_SCHED_INFO, which
//      distribution kernels without schedstats still have). Each task's run_delay and
//      pcount are summed into the collector's own cumulative counters; only cpu="all" is
//      emitted because tasks migrate between CPUs. This undercounts: the wait of a task that
//      both starts and exits between two collects, and a task's last partial interval before
//      it exits, are never seen. At most kMaxTasks tasks are read per Collect, and only
//      those in the agent's PID namespace.
// When neither exists, the first Collect() returns Unavailable and later ones emit nothing.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_SCHEDSTAT_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_SCHEDSTAT_COLLECTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class SchedstatCollector : public ProcfsCollector {
 public:
  // Bound on the per-task scan, so a host with a runaway thread count stays cheap to sample.
  static constexpr size_t kMaxTasks = 65536;

  enum class Mode { kUndecided, kKernel, kPerTask, kUnavailable };

  // Reads <root_prefix>/proc/schedstat or, failing that, <root_prefix>/proc/*/task/*/schedstat.
  explicit SchedstatCollector(std::string root_prefix = "")
      : ProcfsCollector(std::move(root_prefix)) {}

  std::string_view name() const override { return "procfs_schedstat"; }
  Status Collect(int64_t ts_ns, PointSink& sink) override;

  // Which source the collector settled on (kUndecided before the first Collect()).
  Mode mode() const { return mode_; }

 private:
  struct Totals {
    uint64_t run_delay_ns = 0;
    uint64_t timeslices = 0;
  };
  Status CollectKernel(int64_t ts_ns, PointSink& sink);
  Status CollectPerTask(int64_t ts_ns, PointSink& sink);
  // Emits the mean over the interval since `previous_` and makes `now` the new previous.
  void EmitMean(int64_t ts_ns, PointSink& sink, const Totals& now);

  Mode mode_ = Mode::kUndecided;
  std::optional<Totals> previous_;
  // Per-task mode: the last values seen per TID, and the running sums built from them.
  std::unordered_map<int, Totals> tasks_;
  Totals per_task_total_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_SCHEDSTAT_COLLECTOR_H_
