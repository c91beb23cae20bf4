// The eBPF collectors: CPU (per CPU, per cgroup, run-queue latency), block I/O (per disk)
// and TCP (bytes per cgroup, retransmits), built from the CO-RE programs in bpf/.
//
// Each factory opens, loads and attaches its programs and returns a ready Collector, or
// Status::Unavailable saying precisely why it cannot run here ("no BTF at ...", "missing
// CAP_BPF ...", the libbpf error and the tail of the verifier log). The agent then says so
// once and falls back to the procfs collectors; these factories never fall back themselves.
//
// Series (every one carries source="bpf"; counters are cumulative and emitted on every
// Collect, latency stats describe the interval since the previous Collect and are omitted
// when nothing happened in it):
//   bpf_cpu:     cpu_busy_seconds_total{cpu}, cgroup_cpu_seconds_total{cgroup},
//                runqueue_latency_seconds{stat="p50"|"p99"|"mean"}, runqueue_wakeups_total
//   bpf_blockio: disk_ios_total{device,direction}, disk_io_bytes_total{device,direction},
//                disk_io_latency_seconds{device,stat="mean"|"p50"|"p99"}
//   bpf_tcp:     tcp_bytes_total{cgroup,direction="sent"|"received"}, tcp_retransmits_total
//   all three:   augur_bpf_program_runs_total{program}, augur_bpf_program_run_seconds_total
//                {program}, augur_bpf_program_recursion_misses_total{program}
// docs/TELEMETRY-BPF.md describes the programs, their maps and their cost.
//
// Thread safety: the factories change libbpf's process-wide print callback while they run
// (to capture its messages for the Status), so call them from one thread, not concurrently
// with other libbpf users. A returned collector is used by one thread at a time.
#ifndef AUGUR_TELEMETRY_BPF_COLLECTORS_H_
#define AUGUR_TELEMETRY_BPF_COLLECTORS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "augur/status.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/collector.h"

namespace augur::telemetry {

struct BpfOptions {
  // Cgroups deeper than this below the hierarchy root are reported as their ancestor at
  // this depth (1 = "/system.slice"). Default: 2.
  int cgroup_depth = 2;
  // Most distinct cgroup label values per collector, besides "/other". Also sizes the
  // per-cgroup kernel maps. Default: 256.
  size_t max_cgroups = 256;
  // BTF describing the running kernel, for CO-RE relocations and for looking up kernel
  // enums. Empty = the kernel's own, /sys/kernel/btf/vmlinux. tp_btf and fentry programs
  // need the kernel's own BTF regardless, so a custom file only helps CO-RE.
  std::string btf_path;
};

// OK when this process can load tracing programs here: the BTF files exist and the process
// holds CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN). Otherwise Unavailable with the reason.
// The factories check this first; it is exposed so tests and the agent can tell "cannot
// run here" from "failed although it should have worked".
Status CheckBpfPrerequisites(const BpfOptions& options);

// The collectors. `cgroups` tells which hierarchy to report cgroup ids in: the v1 hierarchy
// of the cpu (else cpuacct) controller when there is one, else the unified one. The
// collectors keep a copy; `cgroups` need not outlive them.
Result<std::unique_ptr<Collector>> MakeBpfCpuCollector(const BpfOptions& options,
                                                       const CgroupFs& cgroups);
Result<std::unique_ptr<Collector>> MakeBpfBlockIoCollector(const BpfOptions& options);
Result<std::unique_ptr<Collector>> MakeBpfTcpCollector(const BpfOptions& options,
                                                       const CgroupFs& cgroups);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BPF_COLLECTORS_H_
