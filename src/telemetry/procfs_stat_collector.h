// ProcStatCollector: CPU time, context switches and runnable/blocked task counts from
// /proc/stat.
//
// Series (all with source="procfs"; cpu is "0", "1", ... or "all" for the host aggregate):
//   cpu_seconds_total{cpu,mode}   counter; mode is user|nice|system|idle|iowait|irq|softirq|
//                                 steal. Guest time is already inside user and nice, so it
//                                 has no mode of its own.
//   cpu_busy_seconds_total{cpu}   counter; user+nice+system+irq+softirq+steal.
//   context_switches_total        counter ("ctxt").
//   processes_running             gauge ("procs_running").
//   processes_blocked             gauge ("procs_blocked", tasks in uninterruptible IO wait).
//
// The kernel's idle and iowait per CPU can step backwards slightly on tickless kernels
// (a documented /proc/stat quirk); readers derive rates and treat a decrease as a reset.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_STAT_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_STAT_COLLECTOR_H_

#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class ProcStatCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/stat.
  explicit ProcStatCollector(std::string root_prefix = "");

  std::string_view name() const override { return "procfs_stat"; }
  // NotFound when the file is missing; Corruption when it has no aggregate "cpu" line.
  Status Collect(int64_t ts_ns, PointSink& sink) override;

 private:
  double ticks_per_second_;  // sysconf(_SC_CLK_TCK): /proc/stat counts in USER_HZ ticks
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_STAT_COLLECTOR_H_
