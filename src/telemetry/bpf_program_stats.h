// BpfProgramStats: what the eBPF programs themselves cost, as series.
//
// The kernel counts runs and run time per program only while run-time statistics are
// enabled (kernel.bpf_stats_enabled, or an fd from bpf_enable_stats(BPF_STATS_RUN_TIME)).
// This object holds such an fd for its lifetime, so statistics stay on exactly as long as
// a collector lives, and emits per program:
//   augur_bpf_program_runs_total{program,source="bpf"}
//   augur_bpf_program_run_seconds_total{program,source="bpf"}
//   augur_bpf_program_recursion_misses_total{program,source="bpf"} (runs skipped because
//     the program was already running on that CPU, i.e. lost events)
// Kernels before 5.8 cannot enable statistics this way; the counts then stay 0 unless an
// administrator sets the sysctl, and nothing else is affected.
//
// Thread safety: none; owned by one collector. The program fds are borrowed from the
// skeleton, which must outlive this object's last Emit().
#ifndef AUGUR_TELEMETRY_BPF_PROGRAM_STATS_H_
#define AUGUR_TELEMETRY_BPF_PROGRAM_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "telemetry/collector.h"

struct bpf_object;

namespace augur::telemetry {

class BpfProgramStats {
 public:
  BpfProgramStats();
  ~BpfProgramStats();
  BpfProgramStats(BpfProgramStats&& other) noexcept;
  BpfProgramStats& operator=(BpfProgramStats&& other) noexcept;
  BpfProgramStats(const BpfProgramStats&) = delete;
  BpfProgramStats& operator=(const BpfProgramStats&) = delete;

  // Reports every loaded program of `obj` (non-const only because libbpf 1.1's iterator is).
  void Track(struct bpf_object* obj);

  // Emits the three series for every tracked program. A program whose info cannot be read
  // (should not happen while the skeleton lives) is skipped.
  void Emit(int64_t ts_ns, PointSink& sink) const;

  // True when this object holds a statistics fd (false on kernels before 5.8).
  bool enabled() const { return stats_fd_ >= 0; }

 private:
  struct Program {
    std::string name;
    int fd;  // borrowed from the skeleton
  };
  int stats_fd_ = -1;
  std::vector<Program> programs_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BPF_PROGRAM_STATS_H_
