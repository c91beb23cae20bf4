// PsiCollector: pressure stall information from /proc/pressure/{cpu,memory,io}.
//
// Series (source="procfs"; resource is cpu|memory|io, kind is some|full):
//   pressure_stall_seconds_total{resource,kind}   counter; the file's total= (microseconds)
//   pressure_ratio{resource,kind,window}          gauge in [0,1]; avg10/avg60/avg300 / 100,
//                                                 window is 10s|60s|300s
// "some" is the share of time at least one task stalled on the resource, "full" the share
// in which all non-idle tasks did. Kernels before 5.13 print no "full" line for cpu; it is
// then simply absent.
//
// PSI needs CONFIG_PSI and is off when the kernel boots with psi=0 (or with
// CONFIG_PSI_DEFAULT_DISABLED and no psi=1); /proc/pressure is then missing. The
// constructor detects that: available() says why, the first Collect() returns that
// Unavailable status, and later ones return OK without points, so the agent logs it once.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PSI_COLLECTOR_H_
#define AUGUR_TELEMETRY_PSI_COLLECTOR_H_

#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class PsiCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/pressure/{cpu,memory,io}.
  explicit PsiCollector(std::string root_prefix = "");

  std::string_view name() const override { return "procfs_psi"; }
  // When PSI is available: NotFound naming the first resource file that is missing (the
  // others are still read and emitted), else OK.
  Status Collect(int64_t ts_ns, PointSink& sink) override;

  // OK when /proc/pressure exists; otherwise Unavailable with the reason.
  const Status& available() const { return available_; }

 private:
  Status available_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PSI_COLLECTOR_H_
